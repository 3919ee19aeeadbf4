//! Harness for the contract tests: a real pwmail server in this process, on
//! 127.0.0.1:0, with its own temporary database and mail directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pwmail_server::app::users as admin;
use pwmail_server::clock::{ManualClock, SystemClock};
use pwmail_server::config::{self, DispatcherConfig, MailConfig, RateLimit, ServerConfig};
use pwmail_server::{Running, StartOptions};
use pwmail_store::testing::StoreTestExt;

pub const ADMIN: &str = "admin@example.com";

/// A well-formed argon2id PHC string; what [`TestServer::set_known_password`] stores.
pub const KNOWN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

/// How long a test waits for something that happens in the background
/// (delivery, a settle). Generous: it only bounds how long a failing test
/// takes, and a busy machine must not turn a pass into a failure.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub running: Running,
    /// The server's own store, with the test-only methods.
    store: Arc<dyn StoreTestExt>,
    pub url: String,
    /// An API token of the admin (the bootstrap token on a fresh database).
    pub admin_token: String,
    pub mail_dir: PathBuf,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

/// Knobs a test may turn; everything else is `ServerConfig::default()`.
pub struct Options {
    pub user_rate: (u32, u64),
    pub token_rate: (u32, u64),
    pub request_timeout: Duration,
    pub max_backlog: u64,
    pub reset_guess_rate: (u32, u64),
    /// Where mail goes; `.eml` files in the test's directory when `None`.
    pub mail: Option<MailConfig>,
    pub dispatcher: DispatcherConfig,
    /// A clock the test moves (link expiry); the system clock when `None`.
    pub clock: Option<Arc<ManualClock>>,
    /// Another database (PostgreSQL); a fresh SQLite file when `None`.
    pub database_url: Option<String>,
    pub db_acquire_timeout: Duration,
    /// (hash slots, submissions allowed to wait for one).
    pub hashing: (usize, usize),
    /// Serve HTTPS with this pair; `url` is then `https://127.0.0.1:PORT`.
    pub tls: Option<pwmail_server::tls::TlsFiles>,
    /// `--client-timeout-secs`.
    pub client_timeout: Duration,
    /// `--max-connections`; derived from the open-file limit when `None`.
    pub max_connections: Option<usize>,
    /// `--link-ttl-secs`.
    pub link_ttl: Duration,
    /// `--idempotency-ttl-secs`.
    pub idempotency_ttl: Duration,
    /// `--return-to-origin`, `--default-return-to`.
    pub return_to: config::ReturnTo,
    /// `--link-ttl-min-secs`, `--link-ttl-max-secs`.
    pub link_ttl_range: config::LinkTtlRange,
    /// `--template-dir`.
    pub template_dir: Option<std::path::PathBuf>,
    /// `--page-css`.
    pub page_css: Option<std::path::PathBuf>,
    /// `--default-locale`.
    pub default_locale: &'static str,
    /// `--dkim-key` and the rest, loaded.
    pub dkim: Option<Arc<pwmail_server::dkim::DkimSigner>>,
    /// `--events-url` and the rest.
    pub events: Option<config::EventsConfig>,
}

impl Default for Options {
    fn default() -> Self {
        let d = ServerConfig::default();
        let pair = |r: RateLimit| (r.count, r.per_secs);
        Options {
            user_rate: pair(d.user_rate),
            token_rate: pair(d.token_rate),
            request_timeout: d.request_timeout,
            max_backlog: d.max_backlog,
            reset_guess_rate: pair(d.reset_guess_rate),
            mail: None,
            dispatcher: DispatcherConfig {
                poll_interval: Duration::from_millis(200),
                ..d.dispatcher
            },
            clock: None,
            database_url: None,
            db_acquire_timeout: d.db_acquire_timeout,
            // Two hash slots: enough to show concurrency on two cores.
            hashing: (2, d.hash_queue),
            tls: None,
            client_timeout: d.client_timeout,
            max_connections: d.max_connections,
            link_ttl: d.link_ttl,
            idempotency_ttl: d.idempotency_ttl,
            return_to: d.return_to,
            link_ttl_range: d.link_ttl_range,
            template_dir: d.template_dir,
            page_css: d.page_css,
            default_locale: config::DEFAULT_LOCALE,
            dkim: None,
            events: None,
        }
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mail_dir = dir.path().join("mail");
        let database_url = options
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("pwmail.db").display()));
        let rate = |(count, per_secs): (u32, u64)| RateLimit { count, per_secs };
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: options.tls.clone(),
            database_url: database_url.clone(),
            db_acquire_timeout: options.db_acquire_timeout,
            public_url: config::parse_public_url("https://pwmail.test").unwrap(),
            mail: options
                .mail
                .clone()
                .unwrap_or_else(|| MailConfig::Directory(mail_dir.clone())),
            user_rate: rate(options.user_rate),
            token_rate: rate(options.token_rate),
            request_timeout: options.request_timeout,
            max_backlog: options.max_backlog,
            reset_guess_rate: rate(options.reset_guess_rate),
            hash_concurrency: options.hashing.0,
            hash_queue: options.hashing.1,
            mail_from: "pwmail <no-reply@pwmail.test>".into(),
            bootstrap_admin_email: ADMIN.into(),
            dispatcher: options.dispatcher.clone(),
            client_timeout: options.client_timeout,
            max_connections: options.max_connections,
            link_ttl: options.link_ttl,
            idempotency_ttl: options.idempotency_ttl,
            return_to: options.return_to.clone(),
            link_ttl_range: options.link_ttl_range,
            template_dir: options.template_dir.clone(),
            page_css: options.page_css.clone(),
            catalogs: config::catalogs(options.default_locale).expect("a shipped locale"),
            dkim: options.dkim.clone(),
            events: options.events.clone(),
            ..ServerConfig::default()
        };
        let store = pwmail_store::testing::open(&database_url)
            .await
            .expect("database opens");
        let (running, bootstrap) = pwmail_server::start(StartOptions {
            config,
            store: Arc::clone(&store) as Arc<dyn pwmail_store::Store>,
            clock: match &options.clock {
                Some(clock) => Arc::clone(clock) as Arc<dyn pwmail_server::clock::Clock>,
                None => Arc::new(SystemClock),
            },
            log: pwmail_server::dropshot_logger(),
        })
        .await
        .expect("server starts");
        // A database a previous server used already has its admin.
        let admin_token = match bootstrap {
            Some(bootstrap) => bootstrap.token.expose().to_string(),
            None => admin::create_token(&*store, ADMIN, "test", false, now())
                .await
                .expect("the admin of a reused database")
                .expose()
                .to_string(),
        };
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://{}", running.local_addr());
        TestServer {
            running,
            store,
            url,
            admin_token,
            mail_dir,
            database_url,
            _dir: dir,
        }
    }

    pub fn store(&self) -> &dyn StoreTestExt {
        &*self.store
    }

    pub fn client(&self) -> pwmail_client::Client {
        self.client_with(&self.admin_token)
    }

    pub fn client_with(&self, token: &str) -> pwmail_client::Client {
        pwmail_client::with_api_token(&self.url, token).expect("client")
    }

    /// A client that sends no Authorization header.
    pub fn anonymous_client(&self) -> pwmail_client::Client {
        pwmail_client::Client::new(&self.url)
    }

    pub async fn add_user(&self, email: &str, is_admin: bool) -> pwmail_store::User {
        admin::add_user(&*self.store, email, is_admin, None, now())
            .await
            .expect("add user")
    }

    /// Gives `user` a password (the hash [`KNOWN_HASH`]) as if they had set
    /// one, so a test can check that a refused call left it alone.
    /// A user with a language of their own (`user add --locale`).
    pub async fn add_user_in(&self, email: &str, locale: &str) -> pwmail_store::User {
        let draft = admin::UserDraft {
            email: email.to_string(),
            name: None,
            locale: Some(locale.to_string()),
        };
        admin::add(&*self.store, &draft, false, now())
            .await
            .expect("user added")
    }

    pub async fn set_known_password(&self, user: pwmail_store::UserId) {
        self.store()
            .set_password_hash(user, KNOWN_HASH, now())
            .await
            .expect("set password hash");
    }

    /// An API token of `email` that may also receive links in answers
    /// (`token create --reveal-links`).
    pub async fn revealing_token_for(&self, email: &str) -> String {
        self.new_token(email, true).await
    }

    pub async fn token_for(&self, email: &str) -> String {
        self.new_token(email, false).await
    }

    async fn new_token(&self, email: &str, reveal_links: bool) -> String {
        admin::create_token(&*self.store, email, "test", reveal_links, now())
            .await
            .expect("create token")
            .expose()
            .to_string()
    }

    /// Every audit row, oldest first.
    pub async fn audit(&self) -> Vec<pwmail_store::AuditRecord> {
        let mut rows = self
            .store()
            .list_audit(&pwmail_store::AuditFilter {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .expect("audit rows");
        rows.reverse();
        rows
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET /metrics` over plain HTTP: the Prometheus text.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.endpoint("/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Waits up to `timeout` for `count` `.eml` files; returns their contents.
    pub async fn wait_for_emails(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let emails = read_emails(&self.mail_dir);
            if emails.len() >= count || Instant::now() >= deadline {
                return emails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits up to [`DEADLINE`] until at least `count` outbox rows are in
    /// `state`; returns them. The dispatcher writes a message before it
    /// settles its row, so a test that saw the `.eml` must wait for the row.
    pub async fn wait_for_outbox(
        &self,
        state: pwmail_store::OutboxState,
        count: usize,
    ) -> Vec<pwmail_store::OutboxStatus> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let rows = self
                .store()
                .list_outbox(Some(state), 10_000)
                .await
                .expect("outbox");
            if rows.len() >= count || Instant::now() >= deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Both F5 operations, each answered 200: SendPasswordEmail for
    /// `send_to`, ResetPasswordByAdmin for `reset_to`.
    pub async fn call_both_f5_operations(&self, send_to: &str, reset_to: &str) {
        use pwmail_client::types::{ResetPasswordByAdminRequest, SendPasswordEmailRequest};
        self.client()
            .send_password_email_system()
            .body(
                SendPasswordEmailRequest::builder()
                    .email(send_to)
                    .namespace(Some("system".try_into().expect("the namespace"))),
            )
            .send()
            .await
            .expect("SendPasswordEmail answers 200");
        self.client()
            .reset_password_by_admin()
            .body(ResetPasswordByAdminRequest::builder().email(reset_to))
            .send()
            .await
            .expect("ResetPasswordByAdmin answers 200");
    }

    /// As [`Self::wait_for_outbox`], and fails the test if fewer than
    /// `count` rows got there.
    pub async fn expect_outbox(
        &self,
        state: pwmail_store::OutboxState,
        count: usize,
    ) -> Vec<pwmail_store::OutboxStatus> {
        let rows = self.wait_for_outbox(state, count).await;
        assert!(
            rows.len() >= count,
            "only {} of {count} messages reached {state}",
            rows.len()
        );
        rows
    }

    /// Waits until no message is queued, retrying or being sent: every row
    /// is sent or dead, so nothing more can reach the relay (a row is
    /// settled only after the relay accepted it). Panics after [`DEADLINE`].
    pub async fn wait_until_quiet(&self) {
        pwmail_store::testing::wait_until_quiet(self.store(), DEADLINE).await;
    }

    /// Every outbox row, newest first.
    pub async fn read_all_outbox(&self) -> Vec<pwmail_store::OutboxStatus> {
        self.store()
            .list_outbox(None, 10_000)
            .await
            .expect("outbox")
    }

    pub async fn stop(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }

    /// Stops the server cleanly, then reads every outbox row as it left them.
    pub async fn stop_and_read_outbox(self) -> Vec<pwmail_store::OutboxStatus> {
        self.running.shutdown().await.expect("clean shutdown");
        self.store.list_outbox(None, 10_000).await.expect("outbox")
    }
}

pub fn now() -> i64 {
    use pwmail_server::clock::Clock;
    SystemClock.now()
}

/// Complete `.eml` files in `dir`, oldest name first.
pub fn read_emails(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// The value of a header of a raw message.
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let head = message.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// A message as its reader sees it: headers and parts decoded (RFC 2047
/// words, quoted-printable, base64) by an independent MIME parser.
#[derive(Debug)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn read_letter(raw: &str) -> Letter {
    let message = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a MIME message");
    Letter {
        subject: message.subject().unwrap_or_default().to_string(),
        text: message.body_text(0).unwrap_or_default().into_owned(),
        html: message.body_html(0).unwrap_or_default().into_owned(),
    }
}

/// The reset-link token from the text part: what the user would click.
pub fn link_token(message: &str) -> Option<String> {
    let start = message.find("https://pwmail.test/reset/")? + "https://pwmail.test/reset/".len();
    let token: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Some(token)
}

/// Quick retries, so scripted failures resolve within a test.
pub fn fast_retries() -> DispatcherConfig {
    DispatcherConfig {
        send_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        poll_interval: Duration::from_millis(50),
        ..DispatcherConfig::default()
    }
}

/// A server sending through `mail` as the "receiver down while a backlog
/// is queued" tests want it: 16 at once, quick capped retries, attempts
/// enough to outlast the outage; `n` users, each with one
/// ResetPasswordByAdmin queued. Returns once all are queued.
pub async fn backlog(mail: MailConfig, n: usize) -> TestServer {
    let server = TestServer::start_with(Options {
        mail: Some(mail),
        user_rate: (1, 60),
        token_rate: (100_000, 60),
        dispatcher: DispatcherConfig {
            concurrency: 16,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            poll_interval: Duration::from_millis(50),
            max_attempts: 1_000,
            send_timeout: Duration::from_secs(10),
            ..DispatcherConfig::default()
        },
        ..Options::default()
    })
    .await;
    for i in 0..n {
        server
            .add_user(&format!("user{i}@example.com"), false)
            .await;
    }
    for i in 0..n {
        server
            .client()
            .reset_password_by_admin()
            .body(
                pwmail_client::types::ResetPasswordByAdminRequest::builder()
                    .email(format!("user{i}@example.com")),
            )
            .send()
            .await
            .expect("queued");
    }
    server
}
