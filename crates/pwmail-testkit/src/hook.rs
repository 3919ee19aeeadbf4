//! A delivery-hook receiver: a real HTTP server (hyper) on 127.0.0.1 that
//! checks each request's Standard Webhooks signature and keeps what it
//! was sent. Its answers can be scripted, and it can be "down" (503).
//!
//! The signature is checked here from the specification's own words
//! (HMAC-SHA256 over `id.timestamp.body`, base64, `v1,` prefix), with the
//! `hmac` crate: not with the `standardwebhooks` crate pwmail signs with.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;

/// The secret every test hook signs with (`whsec_` and 32 bytes).
pub const SECRET: &str = "whsec_cHdtYWlsLXRlc3QtaG9vay1zZWNyZXQtMzItYnl0ZXM=";

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
    /// Whether the signature is right for the body, id and timestamp.
    pub verified: bool,
    /// What this receiver answered.
    pub status: u16,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("the hook's body is JSON")
    }
}

/// A scripted answer: status, an optional `Retry-After`, a body. In the
/// body, `{link}` stands for the reset link of the message received (as a
/// receiver that echoes what it got would answer).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            retry_after: None,
            body: String::new(),
        }
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Answer>,
    down: bool,
}

pub struct HookReceiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl HookReceiver {
    /// Listening on 127.0.0.1 (a free port); answers 202 unless told
    /// otherwise.
    pub async fn start() -> HookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state: Arc<Mutex<State>> = Arc::default();
        let key = B64
            .decode(SECRET.trim_start_matches("whsec_"))
            .expect("the test secret is base64");
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, key) = (Arc::clone(&shared), key.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (state, key) = (Arc::clone(&state), key.clone());
                        async move { Ok::<_, hyper::Error>(answer(request, &state, &key).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HookReceiver { addr, state, task }
    }

    /// The `--mail-webhook-url` that reaches it.
    pub fn url(&self) -> String {
        format!("http://{}/mail", self.addr)
    }

    /// Answers 503 (with `Retry-After: 1`) to everything while down.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// The next requests get these answers, in order; then 202 again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.lock().script.extend(answers);
    }

    /// Everything that arrived, in order, whatever it was answered.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The requests answered 2xx: what was delivered.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits until at least `count` were delivered, or `timeout` passed.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= count || Instant::now() >= deadline {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for HookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    request: Request<Incoming>,
    state: &Mutex<State>,
    key: &[u8],
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    let verified = verify(key, &id, &timestamp, &body, &signature);
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    let answer = if state.down {
        Answer {
            status: 503,
            retry_after: Some("1".into()),
            body: "down for a test".into(),
        }
    } else if !verified {
        Answer {
            status: 401,
            retry_after: None,
            body: "bad signature".into(),
        }
    } else {
        state.script.pop_front().unwrap_or(Answer::status(202))
    };
    let mut answer = answer;
    if answer.body.contains("{link}") {
        let text: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let link = text["data"]["text"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .find(|word| word.contains("/reset/"))
            .unwrap_or_default()
            .to_string();
        answer.body = answer.body.replace("{link}", &link);
    }
    state.received.push(Received {
        id,
        timestamp: timestamp.parse().unwrap_or_default(),
        signature,
        body,
        verified,
        status: answer.status,
        at: Instant::now(),
    });
    let mut response = Response::builder().status(answer.status);
    if let Some(wait) = &answer.retry_after {
        response = response.header("retry-after", wait);
    }
    response
        .body(Full::new(Bytes::from(answer.body)))
        .expect("a response")
}

/// The Standard Webhooks check: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under the key, among the space-separated
/// signatures.
fn verify(key: &[u8], id: &str, timestamp: &str, body: &str, signatures: &str) -> bool {
    use hmac::{KeyInit, Mac};
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    !id.is_empty() && signatures.split(' ').any(|s| s == expected)
}
