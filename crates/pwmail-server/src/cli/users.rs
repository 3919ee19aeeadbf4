//! `pwmail user …` and `pwmail token …`: print what `app::users` did.

use std::path::PathBuf;

use clap::Subcommand;

use crate::app::users;
use crate::cli::args::DbArgs;
use crate::cli::{Failed, emails_csv};
use crate::clock::format_utc;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user (no password yet: they set one through an emailed link).
    Add {
        email: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        name: Option<String>,
    },
    /// Add every address in the `email` column of a CSV file (header row
    /// required); addresses already present are left as they are.
    Import { file: PathBuf },
    /// List users.
    List,
    /// Read a password from stdin; exit 0 if it is the user's, 1 if not (2 on errors).
    CheckPassword { email: String },
    /// Disable a user: their tokens and open links are revoked.
    Disable { email: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for a user; prints only the token.
    Create {
        email: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List a user's API tokens (ids, labels, state; never the tokens).
    List { email: String },
    /// Revoke an API token by id (see `pwmail token list`).
    Revoke { id: i64 },
}

pub async fn user(cmd: &UserCommand, db: &DbArgs, now: i64) -> anyhow::Result<()> {
    // A CSV that does not read fails before the database is opened.
    let emails = match cmd {
        UserCommand::Import { file } => emails_csv::read(file)?,
        _ => Vec::new(),
    };
    let store = db.open().await?;
    match cmd {
        UserCommand::Add { email, admin, name } => {
            let user = users::add_user(&*store, email, *admin, name.as_deref(), now).await?;
            println!(
                "added user {} (id {}{})",
                user.email,
                user.id,
                if user.is_admin { ", admin" } else { "" }
            );
        }
        UserCommand::Import { .. } => {
            let started = std::time::Instant::now();
            let imported = users::import_users(&*store, &emails, now).await?;
            println!(
                "imported {} user(s), {} already present, in {:.1} s",
                imported.added,
                imported.present,
                started.elapsed().as_secs_f64()
            );
        }
        UserCommand::List => {
            println!(
                "{:>6}  {:<40} {:<6} {:<9} {:<8} created",
                "id", "email", "admin", "state", "password"
            );
            for u in store.list_users().await? {
                println!(
                    "{:>6}  {:<40} {:<6} {:<9} {:<8} {}",
                    u.id,
                    u.email,
                    if u.is_admin { "yes" } else { "no" },
                    if u.disabled { "disabled" } else { "active" },
                    if u.has_password { "set" } else { "none" },
                    format_utc(u.created_at)
                );
            }
        }
        UserCommand::CheckPassword { email } => {
            let user = users::find(&*store, email).await?;
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if !users::check_password(&*store, &user, password).await? {
                return Err(Failed::Answer("the password does not match".into()).into());
            }
            println!("the password matches");
        }
        UserCommand::Disable { email } => {
            let user = users::disable_user(&*store, email, now).await?;
            println!(
                "disabled user {}; their API tokens and open links are revoked",
                user.email
            );
        }
    }
    Ok(())
}

pub async fn token(cmd: &TokenCommand, db: &DbArgs, now: i64) -> anyhow::Result<()> {
    let store = db.open().await?;
    match cmd {
        TokenCommand::Create { email, label } => {
            let secret = users::create_token(&*store, email, label, now).await?;
            println!("{}", secret.expose());
        }
        TokenCommand::List { email } => {
            println!("{:>6}  {:<20} {:<8} created", "id", "label", "state");
            for t in users::list_tokens(&*store, email).await? {
                println!(
                    "{:>6}  {:<20} {:<8} {}",
                    t.id,
                    t.label,
                    if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "live"
                    },
                    format_utc(t.created_at)
                );
            }
        }
        TokenCommand::Revoke { id } => {
            users::revoke_token(&*store, *id, now).await?;
            println!("revoked API token {id}");
        }
    }
    Ok(())
}
