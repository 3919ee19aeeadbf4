//! Hostile input and hostile clients.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use pwmail_tests::TestServer;
use tokio::io::AsyncWriteExt;

const SEND_PATH: &str = "/api/web/custom/namespaces/system/send_password_email";
const RESET_PATH: &str = "/api/web/custom/password/admin_reset";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Any bytes, any content type, either operation: never a panic or a 5xx,
/// always `{}` or the error shape.
#[test]
fn any_body_gets_2xx_or_4xx_in_the_error_shape() {
    let rt = runtime();
    let server = rt.block_on(async {
        let server = TestServer::start().await;
        server.add_user("hello@example.com", false).await;
        server
    });
    let http = reqwest::Client::new();
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            // Near-valid JSON, to get past the parser.
            ("[ -~]{0,64}", "[ -~]{0,64}").prop_map(|(e, n)| {
                serde_json::to_vec(&serde_json::json!({"email": e, "namespace": n})).unwrap()
            }),
        ],
        content_type in prop_oneof![
            Just(Some("application/json")),
            Just(Some("application/x-www-form-urlencoded")),
            Just(Some("text/plain")),
            Just(None),
            "[ -~]{0,40}".prop_map(|s| Some(Box::leak(s.into_boxed_str()) as &str)),
        ],
        path in prop_oneof![Just(SEND_PATH), Just(RESET_PATH)],
    )| {
        let (status, text) = rt.block_on(async {
            let mut request = http
                .post(server.endpoint(path))
                .header("Authorization", format!("APIToken {}", server.admin_token))
                .body(body.clone());
            if let Some(value) =
                content_type.and_then(|ct| reqwest::header::HeaderValue::from_str(ct).ok())
            {
                request = request.header("Content-Type", value);
            }
            let response = request.send().await.expect("the server answers");
            (response.status().as_u16(), response.text().await.unwrap())
        });
        prop_assert!(status < 500, "{status} for {body:?}: {text}");
        if (200..300).contains(&status) {
            prop_assert_eq!(text.as_str(), "{}");
        } else {
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON error body");
            prop_assert!(json["code"].is_i64() && json["message"].is_string(), "{}", text);
            prop_assert_eq!(&json["details"], &serde_json::json!([]));
        }
    });
    rt.block_on(server.stop());
}

/// 500 idle connections and 50 that trickle a request byte by byte do not
/// keep others from being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_do_not_stop_service() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    let addr = server.running.local_addr();
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"POST /api/web/custom/password/admin_reset HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    let body =
        pwmail_client::types::ResetPasswordByAdminRequest::builder().email("hello@example.com");
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        server
            .client()
            .reset_password_by_admin()
            .body(body.clone())
            .send(),
    )
    .await
    .expect("answered while 550 connections hang")
    .expect("200");
    assert_eq!(response.status(), 200);
    eprintln!(
        "served in {:?} beside 500 idle and 50 slow connections",
        started.elapsed()
    );
    for s in slow.iter_mut() {
        let _ = s.write_all(b"X-Slow: 1\r\n").await;
    }
    drop(idle);
    drop(slow);
    server.stop().await;
}

/// A client sending a 10 MB body gets its 413 after sending only the headers
/// and the first 64 KiB: the server does not wait for (or read) the rest.
/// Both operations with a body and the reset page's form, with a declared
/// length and chunked.
#[tokio::test]
async fn a_10_mb_body_is_refused_before_it_is_read() {
    use tokio::io::AsyncReadExt;
    let server = TestServer::start().await;
    let addr = server.running.local_addr();
    let announced = 10 * 1024 * 1024;
    for (path, chunked) in [
        (
            "/api/web/custom/namespaces/system/send_password_email",
            false,
        ),
        ("/api/web/custom/password/admin_reset", false),
        (
            "/api/web/custom/namespaces/system/send_password_email",
            true,
        ),
        ("/api/web/custom/password/admin_reset", true),
        // The reset page's form: its own 413 page, with the page's headers.
        ("/reset/any-token", false),
        ("/reset/any-token", true),
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {announced}")
        };
        let content_type = if path.starts_with("/reset/") {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: pwmail\r\nContent-Type: {content_type}\r\n\
             Authorization: APIToken {}\r\n{framing}\r\n\r\n",
            server.admin_token
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..16 {
            let piece = vec![b' '; 4096];
            if chunked {
                stream.write_all(b"1000\r\n").await.unwrap();
                stream.write_all(&piece).await.unwrap();
                stream.write_all(b"\r\n").await.unwrap();
            } else {
                stream.write_all(&piece).await.unwrap();
            }
        }
        // The rest of the 10 MB is never sent: a server that reads the body
        // whole before answering would leave this read waiting.
        let mut response = Vec::new();
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let n = stream.read(&mut chunk).await?;
                response.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&response);
                let done = text.trim_end().ends_with('}') || text.trim_end().ends_with("</html>");
                if n == 0 || text.contains("\r\n\r\n") && done {
                    return Ok::<_, std::io::Error>(());
                }
            }
        })
        .await;
        read.expect("answered before the body was sent")
            .expect("read the response");
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.starts_with("HTTP/1.1 413 "),
            "{path} (chunked: {chunked}): {text}"
        );
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        if path.starts_with("/reset/") {
            let head = head.to_ascii_lowercase();
            assert!(head.contains("content-type: text/html"), "{head}");
            assert!(head.contains("cache-control: no-store"), "{head}");
            assert!(head.contains("referrer-policy: no-referrer"), "{head}");
            assert!(body.contains("This form is too large"), "{body}");
            continue;
        }
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], 3, "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("exceeded maximum size of 16384 bytes"),
            "{path}: {body}"
        );
    }
    server.stop().await;
}

/// Answers dropshot gives before any handler (no route, wrong method) are
/// in pwmail's shapes: the API's error body under `/api/`, the reset page's
/// problem page with its security headers under `/reset/`.
#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_in_the_services_own_shapes() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let api_cases = [
        (reqwest::Method::GET, "/api/web/custom/nothing/here", 404, 5),
        (reqwest::Method::POST, "/api/", 404, 5),
        (
            reqwest::Method::GET,
            "/api/web/custom/password/admin_reset",
            405,
            12,
        ),
        (
            reqwest::Method::DELETE,
            "/api/web/custom/password/email_status",
            405,
            12,
        ),
    ];
    for (method, path, status, code) in api_cases {
        let response = client
            .request(method.clone(), server.endpoint(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        assert!(
            response.headers().contains_key("x-request-id"),
            "{method} {path}"
        );
        if status == 405 {
            let allow = response.headers()["allow"].to_str().unwrap().to_string();
            assert!(
                allow == "POST" || allow == "GET",
                "{method} {path}: {allow}"
            );
        }
        let body: serde_json::Value = response.json().await.unwrap();
        let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            ["code", "details", "message"],
            "{method} {path}: {body}"
        );
        assert_eq!(body["code"], code, "{method} {path}: {body}");
        assert_eq!(body["details"], serde_json::json!([]));
    }
    let page_cases = [
        (reqwest::Method::GET, "/reset/abc/def", 404),
        (reqwest::Method::PUT, "/reset/sometoken", 405),
        (reqwest::Method::DELETE, "/reset/sometoken", 405),
    ];
    for (method, path, status) in page_cases {
        let response = client
            .request(method.clone(), server.endpoint(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let headers = response.headers().clone();
        if status == 405 {
            assert_eq!(headers["allow"], "GET, POST", "{method} {path}");
        }
        for name in [
            "content-security-policy",
            "x-frame-options",
            "referrer-policy",
            "x-content-type-options",
            "cache-control",
        ] {
            assert!(headers.contains_key(name), "{method} {path}: {name}");
        }
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{method} {path}"
        );
        let text = response.text().await.unwrap();
        assert!(!text.contains("request_id"), "{method} {path}: {text}");
    }
}

/// A body the document does not allow is refused with 400 code 3 naming
/// what was wrong, before anything is looked up: JSON followed by more
/// than whitespace, a media type other than `application/json`, a charset
/// other than UTF-8; and two Idempotency-Key headers (the first would be
/// silently dropped, so a retry with it would email the user again).
#[tokio::test]
async fn what_the_document_does_not_allow_is_refused_naming_why() {
    let server = TestServer::start().await;
    server.add_user("hello@example.com", false).await;
    let client = reqwest::Client::new();
    let auth = format!("APIToken {}", server.admin_token);
    let good = r#"{"email":"hello@example.com"}"#;
    for (content_type, body, says) in [
        (
            "application/json",
            format!("{good}xyz"),
            "trailing characters",
        ),
        (
            "application/json",
            format!("{good} {good}"),
            "trailing characters",
        ),
        (
            "application/merge-patch+json",
            good.to_string(),
            "application/merge-patch+json",
        ),
        (
            "application/json; charset=latin1",
            good.to_string(),
            "charset=latin1",
        ),
        ("text/plain", good.to_string(), "text/plain"),
    ] {
        let response = client
            .post(server.endpoint(RESET_PATH))
            .header("Authorization", &auth)
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{content_type} {body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["code"], 3, "{error}");
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{content_type} {body}: {error}"
        );
    }
    let response = client
        .post(server.endpoint(RESET_PATH))
        .header("Authorization", &auth)
        .header("Idempotency-Key", "first")
        .header("Idempotency-Key", "second")
        .json(&serde_json::json!({"email": "hello@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["code"], 3, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{error}"
    );
    // Whitespace after the value, UTF-8 named in any case, one key: fine.
    let response = client
        .post(server.endpoint(RESET_PATH))
        .header("Authorization", &auth)
        .header("Content-Type", "application/json; charset=UTF-8")
        .header("Idempotency-Key", "only")
        .body(format!("{good}\n "))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        server
            .wait_for_emails(1, pwmail_tests::DEADLINE)
            .await
            .len(),
        1,
        "the accepted call emailed; the refused ones did not"
    );
    server.stop().await;
}
