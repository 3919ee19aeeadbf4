//! A database with no space left: calls are refused with 503 code 14 and a
//! `Retry-After`, never a 500, and served again once space is back. In a
//! binary of its own: it reads the process's metrics.

use pwmail_tests::{Options, TestServer};

const RESET_PATH: &str = "/api/web/custom/password/admin_reset";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_answers_503_with_retry_after_and_recovers() {
    let server = TestServer::start_with(Options {
        user_rate: (1000, 1),
        ..Options::default()
    })
    .await;
    for i in 0..400 {
        server.add_user(&format!("u{i}@example.com"), false).await;
    }
    server.store().hold_size(true).await.unwrap();
    let client = reqwest::Client::new();
    let call = |i: usize| {
        client
            .post(server.endpoint(RESET_PATH))
            .header("Authorization", format!("APIToken {}", server.admin_token))
            .json(&serde_json::json!({ "email": format!("u{i}@example.com") }))
            .send()
    };
    let mut refused = 0;
    for i in 0..400 {
        let response = call(i).await.unwrap();
        let status = response.status().as_u16();
        assert!(
            status == 200 || status == 503,
            "call {i}: {status} {:?}",
            response.text().await
        );
        if status == 503 {
            assert_eq!(
                response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap()),
                Some("30")
            );
            let error: serde_json::Value = response.json().await.unwrap();
            assert_eq!(error["code"], 14, "{error}");
            assert!(
                error["message"].as_str().unwrap().contains("no space left"),
                "{error}"
            );
            refused += 1;
        }
    }
    assert!(refused > 0, "the held database never filled up");
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("pwmail_store_out_of_space_total ")),
        "{metrics}"
    );

    server.store().hold_size(false).await.unwrap();
    let response = call(399).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    server.stop().await;
}
