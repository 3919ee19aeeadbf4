//! A downstream program that uses only `pwmail-client`'s public API: it
//! resets one user's password, asks for a password email in the `system`
//! namespace, and lists the delivery status of that user's emails, over
//! https with a private CA.
//!
//! ```text
//! PWMAIL_SERVER=https://pwmail.example.com PWMAIL_TOKEN=pwm_... \
//! PWMAIL_CA_FILE=ca.pem cargo run -p pwmail-client --example consumer -- user@example.com
//! ```

use std::process::ExitCode;
use std::time::Duration;

use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
use pwmail_client::{Builder, CallError};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::var("PWMAIL_SERVER")?;
    let token = std::env::var("PWMAIL_TOKEN")?;
    let email = std::env::args().nth(1).ok_or("usage: consumer EMAIL")?;

    let mut builder = Builder::new(&server)
        .api_token(&token)
        .timeout(Duration::from_secs(10));
    if let Ok(ca) = std::env::var("PWMAIL_CA_FILE") {
        builder = builder.ca_file(ca);
    }
    let client = builder.build()?;

    let answer = client
        .reset_password_by_admin()
        .body(ResetPasswordByAdminRequest::builder().email(email.as_str()))
        .send()
        .await?;
    println!("reset_password_by_admin: HTTP {}", answer.status().as_u16());

    let sent = client
        .send_password_email_system()
        .body(SendPasswordEmailRequest::builder().email(email.as_str()))
        .send()
        .await;
    match sent {
        Ok(answer) => println!("send_password_email: HTTP {}", answer.status().as_u16()),
        // The user was emailed a moment ago: the server says when to retry.
        Err(e @ CallError::Api { status: 429, .. }) => println!(
            "send_password_email: {e}; retry_after={}",
            e.retry_after().map_or(0, |d| d.as_secs())
        ),
        Err(e) => return Err(e.into()),
    }

    let status = client
        .get_password_email_status()
        .email(email.as_str())
        .send()
        .await?;
    for item in &status.items {
        println!(
            "email_status: {} {} {}",
            item.kind, item.state, item.recipient
        );
    }
    Ok(())
}
