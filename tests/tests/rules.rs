//! The rules' property test: random sequences of admin calls (both
//! operations, with and without an Idempotency-Key, to stored addresses,
//! other spellings of them and unknown ones), links opened, passwords set,
//! users disabled and the clock moved, run against the model
//! (`pwmail-rules`) and against the app on SQLite and on PostgreSQL. Every
//! outcome, and after every step the observable state (each link's state
//! and expiry, what was queued to whom, each user's password and disabled
//! flag, each Idempotency-Key's stored outcome), must be the model's; a
//! difference fails with the shortest sequence proptest can shrink it to.
//!
//! `PWMAIL_RULES_CASES` sets the number of sequences per engine (default
//! 500; before a release, 20000).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pwmail_rules::{self as rules, Limits, Model, Purpose, Rate, UserSpec};
use pwmail_server::app::issue::{IssueRequest, Issued};
use pwmail_server::app::reset::NewPassword;
use pwmail_server::app::{App, AppError, Parts, ResetError, users};
use pwmail_server::clock::{Clock, ManualClock};
use pwmail_server::config::{self, RateLimit, ServerConfig};
use pwmail_server::mail::Renderer;
use pwmail_server::outbox::Backlog;
use pwmail_store::testing::StoreTestExt;
use pwmail_store::{
    AuditFilter, AuditOutcome, Authenticated, LinkPurpose, LinkState, MessageKind, OutboxStatus,
    Store, UserId,
};

/// The users of every sequence: stored address, whether mail can reach it
/// (the mail builder refuses `c..d@`: two dots in a row).
const USERS: [(&str, bool); 4] = [
    ("ann@example.com", true),
    ("Bob@Example.com", true),
    ("c..d@example.com", false),
    ("dee@example.com", true),
];
/// Idempotency-Keys calls may send.
const KEYS: [&str; 2] = ["key-1", "key-2"];
/// API tokens of the admin making the calls.
const TOKENS: usize = 2;
const ADMIN: &str = "admin@example.com";
/// A password the policy accepts, and one it refuses (too short).
const STRONG: &str = "correct horse battery staple";
const WEAK: &str = "short";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

/// The server's flags, and the same limits as the model reads them.
fn server_config() -> ServerConfig {
    ServerConfig {
        // A burst of 2, one more a minute.
        token_rate: RateLimit {
            count: 2,
            per_secs: 120,
        },
        user_rate: RateLimit {
            count: 1,
            per_secs: 60,
        },
        reset_guess_rate: RateLimit {
            count: 2,
            per_secs: 60,
        },
        link_ttl: Duration::from_secs(5 * 60),
        idempotency_ttl: Duration::from_secs(2 * 60),
        public_url: config::parse_public_url("https://pwmail.test").expect("public URL"),
        ..ServerConfig::default()
    }
}

fn limits() -> Limits {
    Limits {
        caller_rate: Rate {
            burst: 2,
            period_ms: MINUTE,
        },
        cooldown: Rate {
            burst: 1,
            period_ms: MINUTE,
        },
        guess_rate: Rate {
            burst: 2,
            period_ms: 30 * SECOND,
        },
        link_ttl_ms: 5 * MINUTE,
        key_ttl_ms: 2 * MINUTE,
    }
}

/// Which address a call names.
#[derive(Clone, Copy, Debug)]
enum Address {
    /// The user's stored address, as stored.
    Stored(usize),
    /// The same address in capitals: the same user, another spelling.
    Respelled(usize),
    Unknown,
}

impl Address {
    fn text(self) -> String {
        match self {
            Address::Stored(u) => USERS[u].0.to_string(),
            Address::Respelled(u) => USERS[u].0.to_uppercase(),
            Address::Unknown => "nobody@example.com".to_string(),
        }
    }
}

/// Which link an operation uses: the n-th issued so far (modulo how many
/// there are; none issued yet reads as unknown), or one never issued.
#[derive(Clone, Copy, Debug)]
enum Target {
    Issued(usize),
    Unknown,
}

#[derive(Clone, Debug)]
enum Op {
    Issue {
        token: usize,
        purpose: Purpose,
        address: Address,
        key: Option<usize>,
    },
    Open(Target),
    SetPassword {
        link: Target,
        acceptable: bool,
    },
    Disable(usize),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let address = prop_oneof![
        3 => user.clone().prop_map(Address::Stored),
        1 => user.clone().prop_map(Address::Respelled),
        1 => Just(Address::Unknown),
    ];
    let purpose = prop_oneof![
        Just(Purpose::SendPasswordEmail),
        Just(Purpose::ResetPasswordByAdmin)
    ];
    let key = prop_oneof![2 => Just(None), 1 => (0..KEYS.len()).prop_map(Some)];
    let target = prop_oneof![
        5 => (0..8usize).prop_map(Target::Issued),
        1 => Just(Target::Unknown),
    ];
    // Around each limit's edges: a period, a burst's slack, the lifetimes.
    let step = prop_oneof![
        Just(1),
        Just(999),
        Just(SECOND),
        Just(30 * SECOND - 1),
        Just(30 * SECOND),
        Just(MINUTE - 1),
        Just(MINUTE),
        Just(2 * MINUTE),
        Just(5 * MINUTE),
    ];
    prop_oneof![
        8 => (0..TOKENS, purpose, address, key).prop_map(|(token, purpose, address, key)| {
            Op::Issue { token, purpose, address, key }
        }),
        2 => target.clone().prop_map(Op::Open),
        2 => (target, prop::bool::weighted(0.8))
            .prop_map(|(link, acceptable)| Op::SetPassword { link, acceptable }),
        1 => user.prop_map(Op::Disable),
        5 => step.prop_map(Op::Advance),
    ]
}

/// What an outcome says, for comparing the model's with the app's:
/// refusals with their wait in whole seconds (as `Retry-After` says it).
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Issued,
    Replayed,
    KeyReused,
    CallerThrottled {
        secs: u64,
    },
    NoSuchUser,
    Undeliverable,
    Disabled,
    CoolingDown {
        secs: u64,
    },
    Open {
        user: usize,
    },
    Used,
    Revoked,
    Invalid,
    GuessThrottled {
        secs: u64,
    },
    Set {
        user: usize,
    },
    Rejected,
    Disabling,
    Moved,
    /// An outcome the model has no word for: always a difference.
    Unexpected(String),
}

impl Seen {
    /// The outcomes every run must reach: a generator that stopped reaching
    /// one would leave its rule unchecked without failing.
    const ALL: [&'static str; 15] = [
        "Issued",
        "Replayed",
        "KeyReused",
        "CallerThrottled",
        "NoSuchUser",
        "Undeliverable",
        "Disabled",
        "CoolingDown",
        "Open",
        "Used",
        "Revoked",
        "Invalid",
        "GuessThrottled",
        "Set",
        "Rejected",
    ];

    fn name(&self) -> &'static str {
        match self {
            Seen::Issued => "Issued",
            Seen::Replayed => "Replayed",
            Seen::KeyReused => "KeyReused",
            Seen::CallerThrottled { .. } => "CallerThrottled",
            Seen::NoSuchUser => "NoSuchUser",
            Seen::Undeliverable => "Undeliverable",
            Seen::Disabled => "Disabled",
            Seen::CoolingDown { .. } => "CoolingDown",
            Seen::Open { .. } => "Open",
            Seen::Used => "Used",
            Seen::Revoked => "Revoked",
            Seen::Invalid => "Invalid",
            Seen::GuessThrottled { .. } => "GuessThrottled",
            Seen::Set { .. } => "Set",
            Seen::Rejected => "Rejected",
            Seen::Disabling => "Disabling",
            Seen::Moved => "Moved",
            Seen::Unexpected(_) => "Unexpected",
        }
    }
}

fn secs(ms: i64) -> u64 {
    Duration::from_millis(ms as u64).as_secs_f64().ceil() as u64
}

impl From<rules::IssueOutcome> for Seen {
    fn from(o: rules::IssueOutcome) -> Self {
        use rules::IssueOutcome as O;
        match o {
            O::Issued { .. } => Seen::Issued,
            O::Replayed { .. } => Seen::Replayed,
            O::KeyReused => Seen::KeyReused,
            O::CallerThrottled { retry_after_ms } => Seen::CallerThrottled {
                secs: secs(retry_after_ms),
            },
            O::NoSuchUser => Seen::NoSuchUser,
            O::Undeliverable => Seen::Undeliverable,
            O::Disabled => Seen::Disabled,
            O::CoolingDown { retry_after_ms } => Seen::CoolingDown {
                secs: secs(retry_after_ms),
            },
        }
    }
}

impl From<rules::OpenOutcome> for Seen {
    fn from(o: rules::OpenOutcome) -> Self {
        use rules::OpenOutcome as O;
        match o {
            O::Open { user } => Seen::Open { user },
            O::Used => Seen::Used,
            O::Revoked => Seen::Revoked,
            O::Invalid => Seen::Invalid,
            O::Throttled { retry_after_ms } => Seen::GuessThrottled {
                secs: secs(retry_after_ms),
            },
        }
    }
}

impl From<rules::SetOutcome> for Seen {
    fn from(o: rules::SetOutcome) -> Self {
        match o {
            rules::SetOutcome::Set { user } => Seen::Set { user },
            rules::SetOutcome::Refused(open) => open.into(),
            rules::SetOutcome::Rejected => Seen::Rejected,
        }
    }
}

fn store_purpose(p: Purpose) -> LinkPurpose {
    match p {
        Purpose::SendPasswordEmail => LinkPurpose::SendPasswordEmail,
        Purpose::ResetPasswordByAdmin => LinkPurpose::ResetPasswordByAdmin,
    }
}

/// The app on one engine, and what a sequence set up on it.
struct Engine {
    app: Arc<App>,
    store: Arc<dyn StoreTestExt>,
    clock: Arc<ManualClock>,
}

/// One sequence's view of the engine: ids behind the model's indexes.
struct Case<'a> {
    engine: &'a Engine,
    callers: Vec<Authenticated>,
    users: Vec<UserId>,
    /// Each issued link's token, in the model's order.
    tokens: Vec<String>,
}

impl Engine {
    async fn new(url: &str) -> Engine {
        let store = pwmail_store::testing::open(url).await.expect("store");
        let config = server_config();
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let app = Arc::new(App::new(Parts {
            store: Arc::clone(&store) as Arc<dyn Store>,
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            mailer: Arc::new(pwmail_server::mail::Mailer::new(
                Arc::new(Renderer::for_config(&config).expect("templates")),
                &config,
            )),
            outbox_wakeup: Default::default(),
            backlog: Arc::new(Backlog::default()),
            hasher: pwmail_server::secrets::password::Hasher::new(1, 4),
            space: Default::default(),
            config,
        }));
        Engine { app, store, clock }
    }

    /// An empty database with the admin, its tokens and the users.
    async fn start(&self) -> Case<'_> {
        self.store.clear().await.expect("clear");
        let now = self.clock.now();
        let store: &dyn Store = &*self.store;
        users::add_user(store, ADMIN, true, None, now)
            .await
            .expect("admin");
        let mut callers = Vec::new();
        for n in 0..TOKENS {
            let secret = users::create_token(store, ADMIN, &format!("t{n}"), false, now)
                .await
                .expect("token");
            callers.push(
                store
                    .authenticate(&secret.hash())
                    .await
                    .expect("authenticate")
                    .expect("a live token"),
            );
        }
        let mut ids = Vec::new();
        for (address, _) in USERS {
            // Written as a version that did not check addresses stored
            // them; checked below, as the service does before it issues.
            let user = store
                .create_user(
                    &pwmail_store::NewUser {
                        email: address.to_string(),
                        name: None,
                        is_admin: false,
                        deliverable: true,
                        locale: None,
                    },
                    now,
                )
                .await
                .expect("user");
            self.store
                .set_password_hash(user.id, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", now)
                .await
                .expect("password");
            ids.push(user.id);
        }
        self.store.forget_address_checks().await.expect("unchecked");
        users::check_addresses(store)
            .await
            .expect("check addresses");
        Case {
            engine: self,
            callers,
            users: ids,
            tokens: Vec::new(),
        }
    }
}

fn model_at(now: i64) -> Model {
    let specs: Vec<UserSpec> = USERS
        .iter()
        .map(|&(address, deliverable)| UserSpec {
            address: address.into(),
            deliverable,
            has_password: true,
        })
        .collect();
    Model::new(limits(), now, &specs)
}

impl Case<'_> {
    fn user_ix(&self, id: UserId) -> usize {
        self.users
            .iter()
            .position(|&u| u == id)
            .unwrap_or(usize::MAX)
    }

    /// The link a target names, and its token (`None`: a token never issued).
    fn link(&self, target: Target) -> (Option<usize>, String) {
        match target {
            Target::Issued(n) if !self.tokens.is_empty() => {
                let ix = n % self.tokens.len();
                (Some(ix), self.tokens[ix].clone())
            }
            // Shaped as a link token, so it is looked up.
            _ => (
                None,
                "A".repeat(self.tokens.first().map_or(43, String::len)),
            ),
        }
    }

    async fn run(
        &mut self,
        model: &mut Model,
        step: usize,
        op: &Op,
    ) -> Result<(Seen, Seen), String> {
        let app = &self.engine.app;
        let now = self.engine.clock.now();
        let request_id = format!("req-{step}");
        Ok(match *op {
            Op::Issue {
                token,
                purpose,
                address,
                key,
            } => {
                let email = address.text();
                let key = key.map(|k| KEYS[k]);
                let expected = model.issue(token, purpose, &email, key);
                let got = app
                    .issue(IssueRequest {
                        caller: &self.callers[token],
                        email: &email,
                        purpose: store_purpose(purpose),
                        request_id: &request_id,
                        idempotency_key: key,
                        options: Default::default(),
                        lifetime: None,
                        reveal: false,
                        trace: None,
                    })
                    .await;
                let seen = match got {
                    Ok(Issued::New { .. }) => {
                        self.learn_newest_token().await?;
                        Seen::Issued
                    }
                    Ok(Issued::Replayed { .. }) => Seen::Replayed,
                    Err(AppError::KeyReused) => Seen::KeyReused,
                    Err(AppError::TokenRate { retry_after, .. }) => Seen::CallerThrottled {
                        secs: retry_after.as_secs(),
                    },
                    Err(AppError::NoSuchUser(_)) => Seen::NoSuchUser,
                    Err(AppError::Undeliverable { .. }) => Seen::Undeliverable,
                    Err(AppError::Disabled(_)) => Seen::Disabled,
                    Err(AppError::UserCooldown { retry_after, .. }) => Seen::CoolingDown {
                        secs: retry_after.as_secs(),
                    },
                    Err(e) => Seen::Unexpected(format!("{e:?}")),
                };
                (expected.into(), seen)
            }
            Op::Open(target) => {
                let (ix, token) = self.link(target);
                let expected = model.open(ix);
                let seen = match app.open_link(CLIENT, &token).await {
                    Ok(open) => Seen::Open {
                        user: self.user_ix(open.user.id),
                    },
                    Err(e) => self.reset_refusal(e),
                };
                (expected.into(), seen)
            }
            Op::SetPassword { link, acceptable } => {
                let (ix, token) = self.link(link);
                let expected = model.set_password(ix, acceptable);
                let password = if acceptable { STRONG } else { WEAK };
                let new = NewPassword {
                    password: password.into(),
                    confirm: password.into(),
                };
                let seen = match app.complete_reset(CLIENT, &token, new, &request_id).await {
                    Ok(user) => Seen::Set {
                        user: self.user_ix(user.user.id),
                    },
                    Err(e) => self.reset_refusal(e),
                };
                (expected.into(), seen)
            }
            Op::Disable(user) => {
                model.disable(user);
                let seen = match users::disable_user(&*self.engine.store, USERS[user].0, now).await
                {
                    Ok(_) => Seen::Disabling,
                    Err(e) => Seen::Unexpected(format!("{e:?}")),
                };
                (Seen::Disabling, seen)
            }
            Op::Advance(ms) => {
                model.advance(ms);
                self.engine.clock.advance_ms(ms);
                (Seen::Moved, Seen::Moved)
            }
        })
    }

    fn reset_refusal(&self, e: ResetError) -> Seen {
        match e {
            ResetError::Used => Seen::Used,
            ResetError::Revoked => Seen::Revoked,
            ResetError::Invalid => Seen::Invalid,
            ResetError::Throttled { retry_after } => Seen::GuessThrottled {
                secs: retry_after.as_secs(),
            },
            ResetError::Rejected { .. } => Seen::Rejected,
            e => Seen::Unexpected(format!("{e:?}")),
        }
    }

    /// The token of the link just issued, from its email (the newest
    /// outbox row holds the whole link).
    async fn learn_newest_token(&mut self) -> Result<(), String> {
        let store = &self.engine.store;
        let newest = outbox(&**store)
            .await?
            .pop()
            .ok_or("issued, but nothing queued")?;
        let link = store
            .outbox_held(newest.id)
            .await
            .map_err(|e| e.to_string())?;
        let token = link
            .strip_prefix("https://pwmail.test/reset/")
            .ok_or("the newest email holds no link")?;
        self.tokens.push(token.to_string());
        Ok(())
    }

    /// The engine's state, as the model's: differences are named.
    async fn compare(&self, model: &Model) -> Result<(), String> {
        let store = &*self.engine.store;
        let now = self.engine.clock.now();
        // Links: each one's user, operation, state and expiry, in order;
        // and the link each token opens is the one the model issued.
        let links = store.links().await.map_err(|e| e.to_string())?;
        let have: Vec<_> = links
            .iter()
            .map(|l| (self.user_ix(l.user_id), l.purpose, l.state, l.expires_at))
            .collect();
        let want: Vec<_> = model
            .links
            .iter()
            .map(|l| {
                let state = match l.state {
                    rules::LinkState::Open => LinkState::Open,
                    rules::LinkState::Used => LinkState::Used,
                    rules::LinkState::Revoked => LinkState::Revoked,
                };
                (l.user, store_purpose(l.purpose), state, l.expires_at)
            })
            .collect();
        if have != want {
            return Err(format!("links: engine {have:?}, model {want:?}"));
        }
        for (ix, token) in self.tokens.iter().enumerate() {
            let found = store
                .find_link(&pwmail_server::secrets::hash(token))
                .await
                .map_err(|e| e.to_string())?;
            if found.map(|l| l.id) != Some(links[ix].id) {
                return Err(format!("the token of link {ix} finds another link"));
            }
        }
        // Emails: to whom, of which kind, in order; a link email holds its
        // own link.
        let queued = outbox(store).await?;
        let have: Vec<_> = queued
            .iter()
            .map(|m| (m.recipient.clone(), m.kind))
            .collect();
        let want: Vec<_> = model
            .emails
            .iter()
            .map(|e| {
                let kind = match e.kind {
                    rules::EmailKind::Link { purpose, .. } => store_purpose(purpose).into(),
                    rules::EmailKind::PasswordChanged => MessageKind::PasswordChanged,
                };
                (e.to.clone(), kind)
            })
            .collect();
        if have != want {
            return Err(format!("emails: engine {have:?}, model {want:?}"));
        }
        for (message, email) in queued.iter().zip(&model.emails) {
            if let rules::EmailKind::Link { link, .. } = email.kind {
                let held = store
                    .outbox_held(message.id)
                    .await
                    .map_err(|e| e.to_string())?;
                if !held.ends_with(&format!("/reset/{}", self.tokens[link])) {
                    return Err(format!("email {} does not hold link {link}", message.id));
                }
            }
        }
        // Users: disabled, and whether a password works.
        for (ix, &id) in self.users.iter().enumerate() {
            let user = store
                .user_by_id(id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("a user vanished")?;
            let want = &model.users[ix];
            if (user.disabled, user.has_password) != (want.disabled, want.has_password) {
                return Err(format!(
                    "user {ix}: engine disabled={} password={}, model disabled={} password={}",
                    user.disabled, user.has_password, want.disabled, want.has_password
                ));
            }
        }
        // Audit rows of the admin calls: by whom, which operation, for which
        // user, with which outcome, in order (the reset page's rows aside).
        let mut rows = store
            .list_audit(&AuditFilter {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        rows.reverse();
        let have: Vec<_> = rows
            .iter()
            .filter(|r| r.operation != "password_changed")
            .map(|r| {
                let token = self
                    .callers
                    .iter()
                    .position(|c| Some(c.token_id) == r.actor_token);
                let user = r.target_user.map(|id| self.user_ix(id));
                (token, r.operation.clone(), user, r.outcome)
            })
            .collect();
        let want: Vec<_> = model
            .audit
            .iter()
            .map(|row| {
                let outcome = match row.outcome {
                    rules::Audited::Issued => AuditOutcome::Ok,
                    rules::Audited::KeyReused => AuditOutcome::KeyReused,
                    rules::Audited::NoSuchUser => AuditOutcome::NoSuchUser,
                    rules::Audited::Undeliverable => AuditOutcome::Undeliverable,
                    rules::Audited::Disabled => AuditOutcome::Disabled,
                };
                let operation = store_purpose(row.purpose).as_str().to_string();
                (Some(row.token), operation, row.user, outcome)
            })
            .collect();
        if have != want {
            return Err(format!("audit: engine {have:?}, model {want:?}"));
        }
        // Idempotency-Keys: the email each live one answers with.
        let email_ix: BTreeMap<i64, usize> = queued
            .iter()
            .enumerate()
            .map(|(ix, m)| (m.id, ix))
            .collect();
        for (token, caller) in self.callers.iter().enumerate() {
            for purpose in [Purpose::SendPasswordEmail, Purpose::ResetPasswordByAdmin] {
                for key in KEYS {
                    let have = store
                        .find_idempotency(caller.token_id, store_purpose(purpose), key, now)
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|s| s.outbox_id.and_then(|id| email_ix.get(&id).copied()));
                    let want = model.live_key(token, purpose, key).map(|k| Some(k.email));
                    if have != want {
                        return Err(format!(
                            "key {key:?} of token {token} ({purpose:?}): engine {have:?}, model {want:?}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every outbox row, oldest first.
async fn outbox(store: &dyn StoreTestExt) -> Result<Vec<OutboxStatus>, String> {
    let mut all = store
        .list_outbox(None, 10_000)
        .await
        .map_err(|e| e.to_string())?;
    all.sort_by_key(|m| m.id);
    Ok(all)
}

/// Runs one sequence; `reached` collects the outcomes it agreed on.
async fn run_sequence(
    engine: &Engine,
    ops: &[Op],
    reached: &Mutex<BTreeSet<&'static str>>,
) -> Result<(), String> {
    let mut case = engine.start().await;
    let mut model = model_at(engine.clock.now());
    for (step, op) in ops.iter().enumerate() {
        let (expected, seen) = case.run(&mut model, step, op).await?;
        if expected != seen {
            return Err(format!(
                "step {step} {op:?}: the model says {expected:?}, the engine {seen:?}"
            ));
        }
        reached.lock().expect("reached").insert(seen.name());
        case.compare(&model)
            .await
            .map_err(|e| format!("after step {step} {op:?}: {e}"))?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PWMAIL_RULES_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

/// Runs `cases()` random sequences against the engine at `url`.
fn check(url: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let engine = rt.block_on(Engine::new(url));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let reached = Mutex::new(BTreeSet::new());
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        rt.block_on(run_sequence(&engine, &ops, &reached))
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("the engine and the model disagree: {e}");
    }
    let reached = reached.into_inner().expect("reached");
    let missed: Vec<_> = Seen::ALL
        .into_iter()
        .filter(|name| !reached.contains(name))
        .collect();
    assert!(
        missed.is_empty(),
        "{} sequences never reached {missed:?}: more sequences, or a generator that reaches them",
        cases()
    );
}

#[test]
fn sqlite_follows_the_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    check(&format!(
        "sqlite://{}",
        dir.path().join("pwmail.db").display()
    ));
}

#[test]
fn postgres_follows_the_rules() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let schema = rt.block_on(pwmail_testkit::pg::PgSchema::create());
    // Commits need not reach the disk for the rules to hold.
    check(&format!(
        "{}&options[synchronous_commit]=off",
        schema.url(None)
    ));
    rt.block_on(schema.drop_schema());
}
