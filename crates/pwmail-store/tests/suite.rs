//! One behaviour suite for every `Store` implementation.

use pwmail_store::testing::StoreTestExt;
use pwmail_store::*;

const T0: UnixMillis = 1_700_000_000_000;

/// A fresh database for one test, and how to clean it up.
struct Db {
    store: Box<dyn StoreTestExt>,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema(pwmail_testkit::pg::PgSchema),
}

impl Db {
    async fn finish(self) {
        if let Cleanup::Schema(schema) = self.cleanup {
            drop(self.store);
            schema.drop_schema().await;
        }
    }
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    Db {
        store: Box::new(store),
        cleanup: Cleanup::Dir(dir),
    }
}

/// The machine's PostgreSQL, in a schema of this test's own, so concurrent
/// tests and runs never collide.
async fn postgres() -> Db {
    let schema = pwmail_testkit::pg::PgSchema::create().await;
    let store = PgStore::open(&schema.url(None), pool(5)).await.unwrap();
    Db {
        store: Box::new(store),
        cleanup: Cleanup::Schema(schema),
    }
}

fn new_user(email: &str, is_admin: bool) -> NewUser {
    NewUser {
        email: email.into(),
        name: None,
        is_admin,
        deliverable: true,
        locale: None,
    }
}

/// An admin `a@example.com` with an API token, as the actor of issued links.
async fn admin_actor(store: &dyn StoreTestExt) -> Actor {
    let admin = store
        .create_user(&new_user("a@example.com", true), T0)
        .await
        .unwrap();
    let token = store
        .create_api_token(admin.id, &hash(9), "t", false, T0)
        .await
        .unwrap();
    Actor {
        user: admin.id,
        token_id: token.id,
    }
}

fn pool(acquire_secs: u64) -> PoolOptions {
    PoolOptions {
        acquire_timeout: std::time::Duration::from_secs(acquire_secs),
        ..PoolOptions::default()
    }
}

fn hash(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

fn issue(
    target: UserId,
    actor: Actor,
    purpose: LinkPurpose,
    link: u8,
    now: UnixMillis,
) -> IssueLink {
    IssueLink {
        actor,
        target,
        purpose,
        link_hash: hash(link),
        expires_at: now + 3_600_000,
        caller: CallerCharge::Pending(Rate {
            period_ms: 1,
            burst: 1_000_000,
        }),
        cooldown: Rate {
            period_ms: 60_000,
            burst: 1,
        },
        message: NewMessage {
            message_id: format!("m{link}@test"),
            kind: purpose.into(),
            recipient: "u@example.com".into(),
            content: link_content(link, now),
        },
        reveal: false,
        request_id: format!("req-{link}"),
        idempotency: None,
        now,
    }
}

/// Options that say where they were set, to see them travel. Built from
/// the defaults, so a field added to `LinkOptions` changes nothing here.
#[allow(clippy::field_reassign_with_default)]
fn tagged(tag: String) -> LinkOptions {
    let mut options = LinkOptions::default();
    options.tag = Some(tag);
    options
}

/// What the link email of [`issue`]'s link `link` holds, as the app queues it.
fn link_content(link: u8, now: UnixMillis) -> Content {
    Content::Link {
        link: format!("https://pwmail.test/reset/{link}"),
        name: Some(format!("User {link}")),
        expires_at: now + 3_600_000,
        options: tagged(format!("options of {link}")),
    }
}

/// What a claimed message queued by [`issue`] at `now` must say (its
/// Message-ID names its link).
fn issued_content(m: &OutboxMessage, now: UnixMillis) -> Content {
    let link = m.message.message_id[1..].split('@').next().unwrap();
    link_content(link.parse().unwrap(), now)
}

/// A claim of worker "w" with a minute's lease.
fn claim_as_w(now: UnixMillis, limit: u32) -> Claim {
    Claim {
        owner: "w".into(),
        now,
        lease_ms: 60_000,
        limit,
    }
}

/// A new user with a SendPasswordEmail link issued and its email queued.
async fn queued_user(store: &dyn StoreTestExt, actor: Actor, email: &str, link: u8) -> User {
    let user = store
        .create_user(&new_user(email, false), T0)
        .await
        .unwrap();
    let outcome = store
        .issue_link(&issue(
            user.id,
            actor,
            LinkPurpose::SendPasswordEmail,
            link,
            T0,
        ))
        .await
        .unwrap();
    assert!(
        matches!(outcome, IssueOutcome::Issued { .. }),
        "{outcome:?}"
    );
    user
}

fn keyed(mut issue: IssueLink, key: &str, fingerprint: &str) -> IssueLink {
    issue.idempotency = Some(IdempotencyKey {
        key: key.into(),
        fingerprint: fingerprint.into(),
        expires_at: issue.now + 600_000,
    });
    issue
}

async fn users_and_tokens(store: &dyn StoreTestExt) {
    let admin = store
        .create_user(&new_user("Admin@Example.com", true), T0)
        .await
        .unwrap();
    assert!(admin.is_admin && !admin.disabled && !admin.has_password);
    let dup = store
        .create_user(&new_user("admin@example.COM", false), T0)
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
    let found = store
        .find_user_by_email("ADMIN@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.email, "Admin@Example.com");
    assert_eq!(store.count_admins().await.unwrap(), 1);

    let token = store
        .create_api_token(admin.id, &hash(1), "ci", false, T0)
        .await
        .unwrap();
    let auth = store.authenticate(&hash(1)).await.unwrap().unwrap();
    assert_eq!((auth.user.id, auth.token_id), (admin.id, token.id));
    assert!(store.authenticate(&hash(2)).await.unwrap().is_none());
    assert!(store.revoke_api_token(token.id, T0).await.unwrap());
    assert!(
        !store.revoke_api_token(token.id, T0).await.unwrap(),
        "already revoked"
    );
    assert!(store.authenticate(&hash(1)).await.unwrap().is_none());

    // Disabling revokes tokens and open links.
    let user = store
        .create_user(&new_user("u@example.com", false), T0)
        .await
        .unwrap();
    store
        .create_api_token(user.id, &hash(3), "x", false, T0)
        .await
        .unwrap();
    let actor = Actor {
        user: admin.id,
        token_id: token.id,
    };
    store
        .issue_link(&issue(
            user.id,
            actor,
            LinkPurpose::SendPasswordEmail,
            4,
            T0,
        ))
        .await
        .unwrap();
    let disabled = store.disable_user("U@example.com", T0).await.unwrap();
    assert!(disabled.disabled);
    assert!(store.authenticate(&hash(3)).await.unwrap().is_none());
    assert_eq!(
        store.find_link(&hash(4)).await.unwrap().unwrap().state,
        LinkState::Revoked
    );
    let refused = store
        .issue_link(&issue(
            user.id,
            actor,
            LinkPurpose::SendPasswordEmail,
            5,
            T0 + 120_000,
        ))
        .await
        .unwrap();
    assert_eq!(
        refused,
        IssueOutcome::Disabled,
        "a disabled user gets no link"
    );
    assert!(
        store.find_link(&hash(5)).await.unwrap().is_none(),
        "nothing was written"
    );
    assert!(matches!(
        store.disable_user("nobody@example.com", T0).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn gcra(store: &dyn StoreTestExt) {
    let rate = Rate {
        period_ms: 500,
        burst: 2,
    };
    assert_eq!(
        store
            .rate_limit(&RateKey::ApiToken(1), &rate, T0)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        store
            .rate_limit(&RateKey::ApiToken(1), &rate, T0)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        store
            .rate_limit(&RateKey::ApiToken(1), &rate, T0)
            .await
            .unwrap(),
        Admission::Refused {
            retry_after_ms: 500
        }
    );
    assert_eq!(
        store
            .rate_limit(&RateKey::ApiToken(1), &rate, T0 + 499)
            .await
            .unwrap(),
        Admission::Refused { retry_after_ms: 1 }
    );
    assert_eq!(
        store
            .rate_limit(&RateKey::ApiToken(1), &rate, T0 + 500)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        store
            .rate_limit(&RateKey::ApiToken(2), &rate, T0)
            .await
            .unwrap(),
        Admission::Admitted
    );
}

/// Every rate limit's step, on the engine, is the model's
/// (`pwmail_rules::gcra`): calls at times around each rate's period, for
/// bursts of 1 to 4 and degenerate rates, each answer compared.
async fn gcra_follows_the_model(store: &dyn StoreTestExt) {
    use pwmail_rules::gcra as model;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for (n, (burst, period_ms)) in [(1, 1), (1, 500), (2, 500), (3, 7), (4, 60_000), (0, 0)]
        .into_iter()
        .enumerate()
    {
        let key = RateKey::ApiToken(100 + n as i64);
        let rate = Rate { period_ms, burst };
        let model_rate = model::Rate { burst, period_ms };
        let (mut tat, mut now) = (None, T0);
        for call in 0..60 {
            // xorshift: the same calls every run.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let gaps = [0, 1, period_ms / 2, period_ms - 1, period_ms, 3 * period_ms];
            now += gaps[(seed % gaps.len() as u64) as usize].max(0);
            let (want, next) = model::step(tat, &model_rate, now);
            tat = next;
            let want = match want {
                model::Admission::Admitted => Admission::Admitted,
                model::Admission::Refused { retry_after_ms } => {
                    Admission::Refused { retry_after_ms }
                }
            };
            assert_eq!(
                store.rate_limit(&key, &rate, now).await.unwrap(),
                want,
                "{burst} per {period_ms} ms, call {call} at +{} ms",
                now - T0
            );
        }
    }
}

/// State left by a slower rate is cut to a faster one's ceiling (a burst
/// just spent): the refusal then waits one period of the faster rate. Keys
/// of other kinds, and state the faster rate could have left, are kept.
async fn rate_state_fits_a_faster_rate(store: &dyn StoreTestExt) {
    let hourly = Rate {
        period_ms: 3_600_000,
        burst: 1,
    };
    let minutely = Rate {
        period_ms: 60_000,
        burst: 1,
    };
    for key in [RateKey::User(UserId(1)), RateKey::ApiToken(1)] {
        assert_eq!(
            store.rate_limit(&key, &hourly, T0).await.unwrap(),
            Admission::Admitted
        );
    }
    // A user admitted under the faster rate: nothing to cut.
    assert_eq!(
        store
            .rate_limit(&RateKey::User(UserId(2)), &minutely, T0 + 30_000)
            .await
            .unwrap(),
        Admission::Admitted
    );
    let cut = store
        .fit_rate_state(RateKind::User, &minutely, T0 + 31_000)
        .await
        .unwrap();
    assert_eq!(cut, 1, "only user 1's hour");
    assert_eq!(
        store
            .rate_limit(&RateKey::User(UserId(1)), &minutely, T0 + 31_000)
            .await
            .unwrap(),
        Admission::Refused {
            retry_after_ms: 60_000
        }
    );
    assert_eq!(
        store
            .rate_limit(&RateKey::User(UserId(2)), &minutely, T0 + 31_000)
            .await
            .unwrap(),
        Admission::Refused {
            retry_after_ms: 59_000
        },
        "state the faster rate left is kept"
    );
    assert_eq!(
        store
            .rate_limit(&RateKey::ApiToken(1), &minutely, T0 + 31_000)
            .await
            .unwrap(),
        Admission::Refused {
            retry_after_ms: 3_569_000
        },
        "another kind's key is not cut"
    );
    assert_eq!(
        store
            .fit_rate_state(RateKind::User, &minutely, T0 + 31_000)
            .await
            .unwrap(),
        0
    );

    // A burst the rate allows is not cut: two calls at once under 2 per
    // 2 minutes leave the key two periods ahead, its ceiling.
    let two_per_two_minutes = Rate {
        period_ms: 60_000,
        burst: 2,
    };
    let key = RateKey::User(UserId(3));
    for _ in 0..2 {
        assert_eq!(
            store
                .rate_limit(&key, &two_per_two_minutes, T0)
                .await
                .unwrap(),
            Admission::Admitted
        );
    }
    assert_eq!(
        store
            .fit_rate_state(RateKind::User, &two_per_two_minutes, T0)
            .await
            .unwrap(),
        0,
        "a spent burst is within the rate"
    );
    assert_eq!(
        store
            .rate_limit(&key, &two_per_two_minutes, T0)
            .await
            .unwrap(),
        Admission::Refused {
            retry_after_ms: 60_000
        }
    );
}

async fn complete_reset(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let user = store
        .create_user(&new_user("u@example.com", false), T0)
        .await
        .unwrap();
    store
        .issue_link(&issue(
            user.id,
            actor,
            LinkPurpose::ResetPasswordByAdmin,
            30,
            T0,
        ))
        .await
        .unwrap();
    let reset = |now| CompleteReset {
        link_hash: hash(30),
        password_phc: "$argon2id$new".into(),
        notice: NewMessage {
            message_id: format!("changed-{now}@test"),
            kind: MessageKind::PasswordChanged,
            recipient: "u@example.com".into(),
            content: pwmail_store::Content::Rendered {
                subject: "changed".into(),
                text: "t".into(),
                html: "h".into(),
            },
        },
        request_id: "req-reset".into(),
        now,
    };
    // Expired at T0 + 1 h: nothing happens.
    assert_eq!(
        store.complete_reset(&reset(T0 + 3_600_000)).await.unwrap(),
        ResetOutcome::LinkUnusable
    );
    assert_eq!(
        store.find_link(&hash(30)).await.unwrap().unwrap().state,
        LinkState::Open
    );
    assert_eq!(store.password_hash(user.id).await.unwrap(), None);

    let done = store.complete_reset(&reset(T0 + 1_000)).await.unwrap();
    assert!(
        matches!(done, ResetOutcome::Changed { user: u, .. } if u == user.id),
        "{done:?}"
    );
    assert_eq!(
        store.password_hash(user.id).await.unwrap().as_deref(),
        Some("$argon2id$new")
    );
    assert_eq!(
        store.find_link(&hash(30)).await.unwrap().unwrap().state,
        LinkState::Used
    );
    let kinds: Vec<&str> = store
        .outbox_for(Some(user.id), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.kind.as_str())
        .collect();
    assert_eq!(kinds, ["password_changed", "reset_password_by_admin"]);
    let ops: Vec<String> = store
        .audit_entries(user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.operation)
        .collect();
    assert_eq!(ops, ["reset_password_by_admin", "password_changed"]);

    assert_eq!(
        store.complete_reset(&reset(T0 + 2_000)).await.unwrap(),
        ResetOutcome::LinkUnusable,
        "single use"
    );
    assert_eq!(
        store
            .outbox_for(Some(user.id), None, 10)
            .await
            .unwrap()
            .len(),
        2,
        "no second notice"
    );
}

async fn rate_limit_state_expires(store: &dyn StoreTestExt) {
    let rate = Rate {
        period_ms: 1000,
        burst: 1,
    };
    let (done, live) = (RateKey::ApiToken(10), RateKey::ApiToken(11));
    store.rate_limit(&done, &rate, T0).await.unwrap();
    store.rate_limit(&live, &rate, T0 + 900).await.unwrap();
    // At T0 + 1000 `done` is full again (its state says nothing), `live` is not.
    assert_eq!(store.purge_rate_limits(T0 + 1000).await.unwrap(), 1);
    assert_eq!(store.purge_rate_limits(T0 + 1000).await.unwrap(), 0);
    assert!(matches!(
        store.rate_limit(&live, &rate, T0 + 1000).await.unwrap(),
        Admission::Refused { .. }
    ));
    assert_eq!(
        store.rate_limit(&done, &rate, T0 + 1000).await.unwrap(),
        Admission::Admitted
    );
}

/// A link email given up leaves no live link: the link is revoked and the
/// bodies cleared when the row goes dead; a notice keeps its body.
async fn dead_link_emails_revoke_their_link(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let user = store
        .create_user(&new_user("dead@example.com", false), T0)
        .await
        .unwrap();
    store
        .issue_link(&issue(
            user.id,
            actor,
            LinkPurpose::SendPasswordEmail,
            40,
            T0,
        ))
        .await
        .unwrap();
    let claim = Claim {
        owner: "w".into(),
        now: T0,
        lease_ms: 10_000,
        limit: 10,
    };
    let claimed = store.claim_outbox(&claim).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        store.find_link(&hash(40)).await.unwrap().unwrap().state,
        LinkState::Open
    );
    let dead = Settlement::Dead {
        error: "550 no such user".into(),
        at: T0 + 5,
        suppress: false,
    };
    assert!(
        store
            .settle_outbox(claimed[0].id, "w", &dead)
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_link(&hash(40)).await.unwrap().unwrap().state,
        LinkState::Revoked,
        "the dead email's link no longer works"
    );
    // Its bodies are gone: requeued by hand, it would carry nothing.
    assert!(store.requeue_dead(claimed[0].id, T0 + 10).await.unwrap());
    let again = store
        .claim_outbox(&Claim {
            now: T0 + 10,
            ..claim.clone()
        })
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].message.content,
        Content::Rendered {
            subject: String::new(),
            text: String::new(),
            html: String::new()
        },
        "its link and name are gone with it"
    );
    assert_eq!(store.outbox_held(claimed[0].id).await.unwrap(), "");
}

async fn issue_links(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let user = store
        .create_user(&new_user("u@example.com", false), T0)
        .await
        .unwrap();
    store
        .set_password_hash(user.id, "$argon2id$stub", T0)
        .await
        .unwrap();

    let first = store
        .issue_link(&issue(
            user.id,
            actor,
            LinkPurpose::SendPasswordEmail,
            10,
            T0,
        ))
        .await
        .unwrap();
    assert!(matches!(first, IssueOutcome::Issued { .. }));
    assert!(
        store.password_hash(user.id).await.unwrap().is_some(),
        "send keeps the password"
    );

    let refused = store
        .issue_link(&issue(
            user.id,
            actor,
            LinkPurpose::ResetPasswordByAdmin,
            11,
            T0 + 1_000,
        ))
        .await
        .unwrap();
    assert_eq!(
        refused,
        IssueOutcome::CoolingDown {
            retry_after_ms: 59_000
        }
    );
    assert!(
        store.find_link(&hash(11)).await.unwrap().is_none(),
        "nothing written"
    );
    assert!(
        store.password_hash(user.id).await.unwrap().is_some(),
        "nothing written"
    );
    assert_eq!(store.list_outbox(None, 100).await.unwrap().len(), 1);
    assert_eq!(store.audit_entries(user.id).await.unwrap().len(), 1);

    let second = store
        .issue_link(&issue(
            user.id,
            actor,
            LinkPurpose::ResetPasswordByAdmin,
            12,
            T0 + 60_000,
        ))
        .await
        .unwrap();
    assert!(matches!(second, IssueOutcome::Issued { .. }));
    assert_eq!(
        store.password_hash(user.id).await.unwrap(),
        None,
        "reset invalidates it"
    );
    assert_eq!(
        store.find_link(&hash(10)).await.unwrap().unwrap().state,
        LinkState::Revoked
    );
    let link = store.find_link(&hash(12)).await.unwrap().unwrap();
    assert_eq!(
        (link.state, link.purpose),
        (LinkState::Open, LinkPurpose::ResetPasswordByAdmin)
    );
    assert_eq!(link.expires_at, T0 + 60_000 + 3_600_000);
    let audit = store.audit_entries(user.id).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].request_id, "req-12");
    assert_eq!(audit[1].actor_token, Some(actor.token_id));
}

/// The calling token's rate is charged inside the issue: a refusal writes
/// nothing, and the charge stands when the user's cooldown refuses.
async fn caller_rate(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let mut users = Vec::new();
    for i in 0..3 {
        let email = format!("c{i}@example.com");
        users.push(
            store
                .create_user(&new_user(&email, false), T0)
                .await
                .unwrap(),
        );
    }
    let two_a_minute = |mut issue: IssueLink| {
        issue.caller = CallerCharge::Pending(Rate {
            period_ms: 30_000,
            burst: 2,
        });
        issue
    };
    let purpose = LinkPurpose::SendPasswordEmail;
    let first = store
        .issue_link(&two_a_minute(issue(users[0].id, actor, purpose, 30, T0)))
        .await
        .unwrap();
    assert!(matches!(first, IssueOutcome::Issued { .. }), "{first:?}");
    // The user's cooldown refuses the second call; the token is charged.
    let cooling = store
        .issue_link(&two_a_minute(issue(
            users[0].id,
            actor,
            purpose,
            31,
            T0 + 1,
        )))
        .await
        .unwrap();
    assert!(
        matches!(cooling, IssueOutcome::CoolingDown { .. }),
        "{cooling:?}"
    );
    let throttled = store
        .issue_link(&two_a_minute(issue(
            users[1].id,
            actor,
            purpose,
            32,
            T0 + 2,
        )))
        .await
        .unwrap();
    assert_eq!(
        throttled,
        IssueOutcome::Throttled {
            retry_after_ms: 30_000 - 2
        }
    );
    assert!(
        store.find_link(&hash(32)).await.unwrap().is_none(),
        "nothing written"
    );
    assert!(store.audit_entries(users[1].id).await.unwrap().is_empty());
    assert_eq!(store.list_outbox(None, 100).await.unwrap().len(), 1);
    // Another token has a rate of its own.
    let other_token = store
        .create_api_token(actor.user, &hash(33), "other", false, T0)
        .await
        .unwrap();
    let other = Actor {
        user: actor.user,
        token_id: other_token.id,
    };
    let fresh = store
        .issue_link(&two_a_minute(issue(
            users[2].id,
            other,
            purpose,
            34,
            T0 + 3,
        )))
        .await
        .unwrap();
    assert!(matches!(fresh, IssueOutcome::Issued { .. }), "{fresh:?}");
    // Once the period passes, the first token is admitted again.
    let later = store
        .issue_link(&two_a_minute(issue(
            users[1].id,
            actor,
            purpose,
            35,
            T0 + 30_000,
        )))
        .await
        .unwrap();
    assert!(matches!(later, IssueOutcome::Issued { .. }), "{later:?}");
}

/// An admin call's lookup and its issue charge the caller once between
/// them, whichever of the two the engine charges in; a missing user is
/// charged too, and a refusal says when the rate admits again.
async fn issue_target_charges_once(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let user = store
        .create_user(&new_user("target@example.com", false), T0)
        .await
        .unwrap();
    let key = RateKey::ApiToken(actor.token_id);
    let rate = Rate {
        period_ms: 30_000,
        burst: 3,
    };
    let purpose = LinkPurpose::SendPasswordEmail;
    // Two calls that issue, then one whose user is missing: three steps.
    for (n, now) in [(40u8, T0), (41, T0 + 1)] {
        let target = store
            .find_addressee(" Target@Example.com ", &key, &rate, now)
            .await
            .unwrap();
        let Addressee::Found {
            user: found,
            charge,
        } = target
        else {
            panic!("{target:?}");
        };
        assert_eq!(found, user, "found by the address's key");
        let mut call = issue(user.id, actor, purpose, n, now);
        call.caller = charge;
        call.cooldown = rate;
        let outcome = store.issue_link(&call).await.unwrap();
        assert!(
            matches!(outcome, IssueOutcome::Issued { .. }),
            "{outcome:?}"
        );
    }
    let missing = store
        .find_addressee("nobody@example.com", &key, &rate, T0 + 2)
        .await
        .unwrap();
    let Addressee::Missing { charge } = missing else {
        panic!("{missing:?}");
    };
    if let CallerCharge::Pending(rate) = charge {
        let step = store.rate_limit(&key, &rate, T0 + 2).await.unwrap();
        assert_eq!(step, Admission::Admitted);
    }
    // The fourth call is refused by the lookup or by the issue.
    let refused = match store
        .find_addressee("target@example.com", &key, &rate, T0 + 3)
        .await
        .unwrap()
    {
        Addressee::Throttled { retry_after_ms } => retry_after_ms,
        Addressee::Found { charge, .. } => {
            let mut call = issue(user.id, actor, purpose, 43, T0 + 3);
            call.caller = charge;
            call.cooldown = rate;
            match store.issue_link(&call).await.unwrap() {
                IssueOutcome::Throttled { retry_after_ms } => retry_after_ms,
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(refused, 30_000 - 3);
    assert!(store.find_link(&hash(43)).await.unwrap().is_none());
    assert_eq!(store.audit_entries(user.id).await.unwrap().len(), 2);
}

/// An admin call by address, whole: where mail can reach the user's stored
/// address, the store takes it to the issue (the email to the stored
/// address, however the call spelt it, with the user's name); otherwise it
/// ends undeliverable or without a user, having written nothing but the
/// caller's step. The caller is charged once a call, whichever way it ends.
async fn issue_call(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let user = store
        .create_user(
            &NewUser {
                email: "Target@example.com".into(),
                name: Some("Tia".into()),
                is_admin: false,
                deliverable: true,
                locale: None,
            },
            T0,
        )
        .await
        .unwrap();
    let caller_rate = Rate {
        period_ms: 30_000,
        burst: 5,
    };
    // Stored before addresses were checked, as `check_addresses` marks it.
    let unreachable_user = store
        .create_user(
            &NewUser {
                email: "c..d@example.com".into(),
                name: None,
                is_admin: false,
                deliverable: false,
                locale: None,
            },
            T0,
        )
        .await
        .unwrap();
    let call = |email: &str, link: u8, now: UnixMillis| {
        let issue = issue(user.id, actor, LinkPurpose::ResetPasswordByAdmin, link, now);
        let Content::Link { link, .. } = issue.message.content else {
            unreachable!()
        };
        IssueCall {
            email: email.into(),
            caller_rate,
            link: LinkDraft {
                actor,
                purpose: issue.purpose,
                link_hash: issue.link_hash,
                expires_at: issue.expires_at,
                cooldown: issue.cooldown,
                message_id: issue.message.message_id,
                link,
                options: tagged(format!("by address {email}")),
                reveal: false,
                request_id: issue.request_id,
                idempotency: None,
                now,
            },
        }
    };
    // 1. The stored address itself: issued in one call.
    let done = store
        .issue_call(&call("Target@example.com", 50, T0))
        .await
        .unwrap();
    let CallOutcome::Issued {
        user: to,
        outcome: IssueOutcome::Issued { link_id, outbox_id },
    } = done
    else {
        panic!("{done:?}");
    };
    assert_eq!(to, user.id);
    let link = store.find_link(&hash(50)).await.unwrap().unwrap();
    assert_eq!((link.id, link.user_id), (link_id, user.id));
    assert_eq!(link.purpose, LinkPurpose::ResetPasswordByAdmin);
    assert_eq!(
        link.options.tag.as_deref(),
        Some("by address Target@example.com"),
        "the call's options are kept with its link"
    );
    assert_eq!(store.password_hash(user.id).await.unwrap(), None);
    let claimed = store
        .claim_outbox(&Claim {
            owner: "w".into(),
            now: T0,
            lease_ms: 10_000,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, outbox_id);
    assert_eq!(claimed[0].message.recipient, "Target@example.com");
    assert_eq!(claimed[0].message.message_id, "m50@test");
    assert_eq!(claimed[0].message.kind, MessageKind::ResetPasswordByAdmin);
    assert_eq!(
        claimed[0].message.content,
        Content::Link {
            link: "https://pwmail.test/reset/50".into(),
            name: Some("Tia".into()),
            expires_at: T0 + 3_600_000,
            options: tagged("by address Target@example.com".into()),
        }
    );
    let audit = store.audit_entries(user.id).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor_token, audit[0].operation.as_str()),
        (Some(actor.token_id), "reset_password_by_admin")
    );
    assert_eq!(audit[0].request_id, "req-50");

    // 2. Another spelling of it: the same user, within the cooldown.
    let respelled = store
        .issue_call(&call("target@EXAMPLE.com", 51, T0 + 1))
        .await
        .unwrap();
    assert!(
        matches!(
            respelled,
            CallOutcome::Issued {
                user: to,
                outcome: IssueOutcome::CoolingDown { .. },
            } if to == user.id
        ),
        "{respelled:?}"
    );

    // 3. A user whose stored address mail cannot reach: undeliverable,
    // nothing written but the caller's step.
    let unreachable = store
        .issue_call(&call("C..D@example.com", 52, T0 + 2))
        .await
        .unwrap();
    assert_eq!(
        unreachable,
        CallOutcome::Undeliverable {
            user: unreachable_user.id
        }
    );
    assert!(store.find_link(&hash(52)).await.unwrap().is_none());
    assert!(
        store
            .audit_entries(unreachable_user.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.audit_entries(user.id).await.unwrap().len(), 1);
    assert_eq!(store.list_outbox(None, 100).await.unwrap().len(), 1);

    // 4. The user again, within the cooldown: the issue refuses it.
    let again = store
        .issue_call(&call("Target@example.com", 53, T0 + 3))
        .await
        .unwrap();
    assert!(
        matches!(
            again,
            CallOutcome::Issued {
                outcome: IssueOutcome::CoolingDown { .. },
                ..
            }
        ),
        "{again:?}"
    );

    // 5. No such user.
    let missing = store
        .issue_call(&call("nobody@example.com", 54, T0 + 4))
        .await
        .unwrap();
    assert_eq!(missing, CallOutcome::NoSuchUser);

    // 6. Five calls took the caller's five steps: the sixth is refused,
    // with the wait its rate gives, and writes nothing.
    let refused = match store
        .issue_call(&call("Target@example.com", 55, T0 + 5))
        .await
        .unwrap()
    {
        CallOutcome::Throttled { retry_after_ms }
        | CallOutcome::Issued {
            outcome: IssueOutcome::Throttled { retry_after_ms },
            ..
        } => retry_after_ms,
        other => panic!("{other:?}"),
    };
    assert_eq!(refused, 30_000 - 5);
    assert!(store.find_link(&hash(55)).await.unwrap().is_none());
    assert_eq!(store.audit_entries(user.id).await.unwrap().len(), 1);
}

/// `check_addresses` records what the mail builder's check (here: no
/// "..") says of each stored address, and changes only rows that differ.
async fn addresses_are_checked(store: &dyn StoreTestExt) {
    let fine = store
        .create_user(&new_user("fine@example.com", false), T0)
        .await
        .unwrap();
    let legacy = store
        .create_user(&new_user("a..b@example.com", false), T0)
        .await
        .unwrap();
    // As a database written before the check holds them: unchecked, and
    // read as deliverable until checked.
    store.forget_address_checks().await.unwrap();
    assert!(
        store
            .user_by_id(legacy.id)
            .await
            .unwrap()
            .unwrap()
            .deliverable
    );
    assert_eq!(store.unchecked_addresses().await.unwrap().len(), 2);
    let check = |email: &str| !email.contains("..");
    assert_eq!(store.check_addresses(&check).await.unwrap(), 1);
    assert!(store.unchecked_addresses().await.unwrap().is_empty());
    assert!(
        !store
            .user_by_id(legacy.id)
            .await
            .unwrap()
            .unwrap()
            .deliverable
    );
    assert!(
        store
            .user_by_id(fine.id)
            .await
            .unwrap()
            .unwrap()
            .deliverable
    );
    assert_eq!(store.check_addresses(&check).await.unwrap(), 0);
}

/// Many admin calls from one token at the same moment (gathered into one
/// group on PostgreSQL) take one step each of its rate: exactly the burst is
/// admitted, and every refusal says when the next call may come.
async fn concurrent_callers_share_one_rate(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let key = RateKey::ApiToken(actor.token_id);
    let rate = Rate {
        period_ms: 60_000,
        burst: 5,
    };
    let addresses: Vec<String> = (0..20).map(|i| format!("nobody{i}@example.com")).collect();
    let steps = futures::future::join_all(addresses.iter().map(|address| async {
        match store
            .find_addressee(address, &key, &rate, T0)
            .await
            .unwrap()
        {
            Addressee::Missing {
                charge: CallerCharge::Charged,
            } => Admission::Admitted,
            Addressee::Missing {
                charge: CallerCharge::Pending(rate),
            } => store.rate_limit(&key, &rate, T0).await.unwrap(),
            Addressee::Throttled { retry_after_ms } => Admission::Refused { retry_after_ms },
            other => panic!("{other:?}"),
        }
    }))
    .await;
    let admitted = steps.iter().filter(|s| **s == Admission::Admitted).count();
    assert_eq!(admitted, 5, "{steps:?}");
    for step in steps.iter().filter(|s| **s != Admission::Admitted) {
        assert_eq!(
            *step,
            Admission::Refused {
                retry_after_ms: 60_000
            }
        );
    }
    // The state stored is the same as five calls one by one: the next call
    // a period later is admitted, the one after it refused.
    let later = store.rate_limit(&key, &rate, T0 + 60_000).await.unwrap();
    assert_eq!(later, Admission::Admitted);
    let again = store.rate_limit(&key, &rate, T0 + 60_000).await.unwrap();
    assert_eq!(
        again,
        Admission::Refused {
            retry_after_ms: 60_000
        }
    );
}

async fn outbox(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    for i in 0..3u8 {
        let user = store
            .create_user(&new_user(&format!("u{i}@example.com"), false), T0)
            .await
            .unwrap();
        store
            .issue_link(&issue(
                user.id,
                actor,
                LinkPurpose::SendPasswordEmail,
                20 + i,
                T0,
            ))
            .await
            .unwrap();
    }
    assert_eq!(store.next_outbox_due().await.unwrap(), Some(T0));
    let claim = |owner: &str, now, limit| Claim {
        owner: owner.into(),
        now,
        lease_ms: 10_000,
        limit,
    };

    let a = store.claim_outbox(&claim("a", T0, 2)).await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(
        a.iter()
            .all(|m| m.attempts == 1 && m.message.content == issued_content(m, T0))
    );
    let b = store.claim_outbox(&claim("b", T0, 10)).await.unwrap();
    assert_eq!(b.len(), 1, "leased rows are not claimed twice");
    assert!(
        store
            .claim_outbox(&claim("c", T0 + 1, 10))
            .await
            .unwrap()
            .is_empty()
    );

    // a[0] sent; b's row retries; a[1]'s lease runs out and is taken over.
    let sent = Settlement::Sent {
        reply: "250 ok".into(),
        at: T0 + 5,
    };
    assert!(
        !store.settle_outbox(a[0].id, "b", &sent).await.unwrap(),
        "wrong owner"
    );
    assert!(store.settle_outbox(a[0].id, "a", &sent).await.unwrap());
    assert_eq!(
        store.outbox_held(a[0].id).await.unwrap(),
        "",
        "a sent email's row lets go of its link"
    );
    let retry = Settlement::Retry {
        error: "451".into(),
        at: T0 + 5,
        next_attempt_at: T0 + 20_000,
    };
    assert!(store.settle_outbox(b[0].id, "b", &retry).await.unwrap());
    assert!(
        store
            .outbox_held(b[0].id)
            .await
            .unwrap()
            .starts_with("https://pwmail.test/reset/"),
        "one to retry keeps it"
    );

    let over = store
        .claim_outbox(&claim("c", T0 + 10_000, 10))
        .await
        .unwrap();
    assert_eq!(
        over.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
        vec![(a[1].id, 2)]
    );
    assert!(
        !store.settle_outbox(a[1].id, "a", &sent).await.unwrap(),
        "lease was lost"
    );
    let dead = Settlement::Dead {
        error: "550 no".into(),
        at: T0 + 10_001,
        suppress: false,
    };
    assert!(store.settle_outbox(a[1].id, "c", &dead).await.unwrap());

    let retried = store
        .claim_outbox(&claim("d", T0 + 20_000, 10))
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (b[0].id, 2));

    let status = store.outbox_message(a[0].id).await.unwrap().unwrap();
    assert_eq!(status.state, OutboxState::Sent);
    assert_eq!(status.last_reply.as_deref(), Some("250 ok"));
    assert_eq!(status.sent_at, Some(T0 + 5));
    let dead_status = store.outbox_message(a[1].id).await.unwrap().unwrap();
    assert_eq!(
        (dead_status.state, dead_status.attempts),
        (OutboxState::Dead, 2)
    );
    assert_eq!(dead_status.last_error.as_deref(), Some("550 no"));
    let depth = store.outbox_depth().await.unwrap();
    let count = |s| depth.iter().find(|(st, _)| *st == s).unwrap().1;
    assert_eq!(
        (
            count(OutboxState::Sent),
            count(OutboxState::Dead),
            count(OutboxState::Sending)
        ),
        (1, 1, 1)
    );
    // The frequent count: the same, without the sent ones.
    let unsent = store.outbox_unsent_depth().await.unwrap();
    let mut expected = depth.clone();
    expected.retain(|(state, _)| *state != OutboxState::Sent);
    assert_eq!(unsent, expected);
    assert_eq!(
        store
            .list_outbox(Some(OutboxState::Dead), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A lease moved by its owner only; ended leases (SQLite only: one process
/// holds its database) make the rows claimable at once; a space probe
/// leaves nothing behind; a held size fails writes with `Full` and the
/// probe with them.
async fn leases_and_space(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    queued_user(store, actor, "lease@example.com", 40).await;
    let claim = |owner: &str, now| Claim {
        owner: owner.into(),
        now,
        lease_ms: 10_000,
        limit: 10,
    };
    let a = store.claim_outbox(&claim("a", T0)).await.unwrap();
    assert_eq!(a.len(), 1);
    let id = a[0].id;
    assert!(
        !store.extend_lease(id, "b", T0 + 50_000).await.unwrap(),
        "not b's lease"
    );
    assert!(store.extend_lease(id, "a", T0 + 50_000).await.unwrap());
    // Past the first lease's end, the row is still a's.
    assert!(
        store
            .claim_outbox(&claim("c", T0 + 20_000))
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store.claim_outbox(&claim("c", T0 + 50_000)).await.unwrap();
    assert_eq!(taken.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);
    assert!(
        !store.extend_lease(id, "a", T0 + 90_000).await.unwrap(),
        "lost to c"
    );

    match store.end_leases(T0 + 50_001).await {
        Ok(ended) => {
            assert_eq!(ended, 1, "c's lease ended");
            let again = store.claim_outbox(&claim("d", T0 + 50_001)).await.unwrap();
            assert_eq!(
                again.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(),
                [(id, 3)]
            );
            assert_eq!(store.end_leases(T0 + 50_001).await.unwrap(), 1, "d's lease");
            assert_eq!(
                store.end_leases(T0 + 50_001).await.unwrap(),
                0,
                "none left open"
            );
        }
        Err(StoreError::Unsupported(_)) => {} // PostgreSQL: leases of other replicas
        Err(e) => panic!("{e}"),
    }

    store.probe_space(T0).await.unwrap();
    store.hold_size(true).await.unwrap();
    // Enough new users and links to need new pages.
    let mut full = None;
    // Link hashes other than the first user's (40).
    for i in 41..=255u8 {
        let email = format!("fill{i}-{}@example.com", "x".repeat(200));
        let written = match store.create_user(&new_user(&email, false), T0).await {
            Ok(user) => store
                .issue_link(&issue(
                    user.id,
                    actor,
                    LinkPurpose::SendPasswordEmail,
                    i,
                    T0,
                ))
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            full = Some(e);
            break;
        }
    }
    match full {
        Some(StoreError::Full(_)) => {}
        other => panic!("a held size did not fail a write with Full: {other:?}"),
    }
    assert!(matches!(
        store.probe_space(T0).await,
        Err(StoreError::Full(_))
    ));
    store.hold_size(false).await.unwrap();
    store.probe_space(T0).await.unwrap();
}

/// Many writes in flight at once (on SQLite they share commits): each one
/// succeeds or fails on its own, and only the successful ones leave rows.
/// Settles in flight together (PostgreSQL runs them as one statement):
/// each is answered for its own message, a lost lease changes nothing, and
/// each message ends in its own state with its own reply.
async fn concurrent_settles(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    for i in 0..30u8 {
        queued_user(store, actor, &format!("s{i}@example.com"), 200 + i).await;
    }
    let claimed = store.claim_outbox(&claim_as_w(T0, 100)).await.unwrap();
    assert_eq!(claimed.len(), 30);
    // Every third under a lease it does not hold; every fifth of the rest
    // as a retry, settled one by one alongside.
    let settles: Vec<(i64, &str, Settlement)> = claimed
        .iter()
        .enumerate()
        .map(|(n, m)| {
            let owner = if n % 3 == 0 { "other" } else { "w" };
            let outcome = if n % 5 == 0 {
                Settlement::Retry {
                    error: format!("busy {}", m.id),
                    at: T0 + 1,
                    next_attempt_at: T0 + 60_000,
                }
            } else {
                Settlement::Sent {
                    reply: format!("250 ok {}", m.id),
                    at: T0 + 1,
                }
            };
            (m.id, owner, outcome)
        })
        .collect();
    let answers = futures::future::join_all(
        settles
            .iter()
            .map(|(id, owner, outcome)| store.settle_outbox(*id, owner, outcome)),
    )
    .await;
    for ((id, owner, outcome), answer) in settles.iter().zip(answers) {
        assert_eq!(answer.unwrap(), *owner == "w", "message {id}");
        let status = store.outbox_message(*id).await.unwrap().unwrap();
        let expected = match (owner, outcome) {
            (&"other", _) => (OutboxState::Sending, None, None),
            (_, Settlement::Sent { .. }) => (OutboxState::Sent, Some(format!("250 ok {id}")), None),
            _ => (OutboxState::Retrying, None, Some(format!("busy {id}"))),
        };
        assert_eq!(
            (status.state, status.last_reply, status.last_error),
            expected,
            "message {id}"
        );
    }
}

async fn concurrent_writes(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let mut users = Vec::new();
    for i in 0..50 {
        let user = store
            .create_user(&new_user(&format!("u{i}@example.com"), false), T0)
            .await
            .unwrap();
        users.push(user.id);
    }
    let mut calls = Vec::new();
    for (i, user) in users.iter().enumerate() {
        calls.push(issue(
            *user,
            actor,
            LinkPurpose::SendPasswordEmail,
            100 + i as u8,
            T0,
        ));
    }
    // Ten more for the first user (its cooldown admits one call in all) and
    // ten for a user that does not exist.
    for i in 0..10u8 {
        calls.push(issue(
            users[0],
            actor,
            LinkPurpose::SendPasswordEmail,
            150 + i,
            T0,
        ));
        calls.push(issue(
            UserId(999_999),
            actor,
            LinkPurpose::SendPasswordEmail,
            160 + i,
            T0,
        ));
    }
    let results = futures::future::join_all(calls.iter().map(|call| store.issue_link(call))).await;
    let (mut issued, mut cooling, mut missing) = (Vec::new(), 0, 0);
    for (call, result) in calls.iter().zip(&results) {
        match result {
            Ok(IssueOutcome::Issued { .. }) => issued.push(call),
            Ok(IssueOutcome::CoolingDown { .. }) => cooling += 1,
            Err(StoreError::NotFound(_)) => missing += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((issued.len(), cooling, missing), (50, 10, 10));
    for user in &users {
        assert_eq!(
            issued.iter().filter(|c| c.target == *user).count(),
            1,
            "{user}"
        );
    }
    for call in &calls {
        let link = store.find_link(&call.link_hash).await.unwrap();
        let was_issued = issued.iter().any(|c| c.link_hash == call.link_hash);
        assert_eq!(link.is_some(), was_issued, "{}", call.request_id);
    }
    let queued = store.claim_outbox(&claim_as_w(T0, 1000)).await.unwrap();
    let mut queued: Vec<_> = queued.iter().filter_map(|m| m.request_id.clone()).collect();
    let mut expected: Vec<_> = issued.iter().map(|c| c.request_id.clone()).collect();
    queued.sort();
    expected.sort();
    assert_eq!(queued, expected);

    // A failing one-statement write (duplicate email) among others in flight
    // fails alone.
    let emails: Vec<String> = (0..20)
        .map(|i| format!("d{}@example.com", i % 15))
        .collect();
    let new_users: Vec<NewUser> = emails.iter().map(|e| new_user(e, false)).collect();
    let created =
        futures::future::join_all(new_users.iter().map(|u| store.create_user(u, T0))).await;
    let ok = created.iter().filter(|r| r.is_ok()).count();
    let conflicts = created
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
        .count();
    assert_eq!((ok, conflicts), (15, 5));
    for i in 0..15 {
        let email = format!("d{i}@example.com");
        assert!(store.find_user_by_email(&email).await.unwrap().is_some());
    }
}

async fn idempotency_keys(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let user = store
        .create_user(&new_user("k@example.com", false), T0)
        .await
        .unwrap();
    let op = LinkPurpose::ResetPasswordByAdmin;
    let first = store
        .issue_link(&keyed(issue(user.id, actor, op, 20, T0), "K", "F"))
        .await
        .unwrap();
    let IssueOutcome::Issued { outbox_id, .. } = first else {
        panic!("{first:?}")
    };
    let audit = store.audit_entries(user.id).await.unwrap();
    assert_eq!(audit[0].idempotency_key.as_deref(), Some("K"));

    // Within the cooldown, the same key and request: the stored outcome, and
    // no new link, row or cooldown charge.
    let again = store
        .issue_link(&keyed(issue(user.id, actor, op, 21, T0 + 1_000), "K", "F"))
        .await
        .unwrap();
    assert_eq!(
        again,
        IssueOutcome::Replayed(StoredOutcome {
            fingerprint: "F".into(),
            outbox_id: Some(outbox_id),
            request_id: "req-20".into(),
        })
    );
    assert!(store.find_link(&hash(21)).await.unwrap().is_none());
    assert_eq!(store.list_outbox(None, 100).await.unwrap().len(), 1);
    // The same key for another request.
    let reused = store
        .issue_link(&keyed(issue(user.id, actor, op, 22, T0 + 2_000), "K", "G"))
        .await
        .unwrap();
    assert_eq!(reused, IssueOutcome::KeyReused);
    // The key is scoped to the operation: the other operation is a new call
    // (refused here by the cooldown, so its key is not stored).
    let other_op = store
        .issue_link(&keyed(
            issue(
                user.id,
                actor,
                LinkPurpose::SendPasswordEmail,
                23,
                T0 + 3_000,
            ),
            "K",
            "F",
        ))
        .await
        .unwrap();
    assert!(
        matches!(other_op, IssueOutcome::CoolingDown { .. }),
        "{other_op:?}"
    );
    assert_eq!(
        store
            .find_idempotency(
                actor.token_id,
                LinkPurpose::SendPasswordEmail,
                "K",
                T0 + 3_000
            )
            .await
            .unwrap(),
        None,
        "a refusal stores no key"
    );
    assert!(
        store
            .find_idempotency(actor.token_id, op, "K", T0 + 3_000)
            .await
            .unwrap()
            .is_some()
    );

    // Expired: forgotten by lookups, taken over by a new call, purged.
    let later = T0 + 600_000;
    assert_eq!(
        store
            .find_idempotency(actor.token_id, op, "K", later)
            .await
            .unwrap(),
        None
    );
    let fresh = store
        .issue_link(&keyed(issue(user.id, actor, op, 24, later), "K", "G"))
        .await
        .unwrap();
    assert!(matches!(fresh, IssueOutcome::Issued { .. }), "{fresh:?}");
    assert_eq!(
        store.purge_idempotency_keys(later + 600_000).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .find_idempotency(actor.token_id, op, "K", later + 1)
            .await
            .unwrap(),
        None
    );
}

/// The audit log as an operator lists it: newest first, with the users'
/// emails, by user (actor or target), request id, time window and limit.
async fn audit_list(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let a = queued_user(store, actor, "first@example.com", 41).await;
    let b = store
        .create_user(&new_user("second@example.com", false), T0)
        .await
        .unwrap();
    let later = T0 + 5_000;
    let outcome = store
        .issue_link(&issue(
            b.id,
            actor,
            LinkPurpose::ResetPasswordByAdmin,
            42,
            later,
        ))
        .await
        .unwrap();
    assert!(
        matches!(outcome, IssueOutcome::Issued { .. }),
        "{outcome:?}"
    );
    let list = |filter: AuditFilter| async move {
        store
            .list_audit(&AuditFilter {
                limit: filter.limit.max(1),
                ..filter
            })
            .await
            .unwrap()
    };
    let all = list(AuditFilter {
        limit: 10,
        ..Default::default()
    })
    .await;
    let seen: Vec<(Option<&str>, &str, UnixMillis)> = all
        .iter()
        .map(|r| (r.target_email.as_deref(), r.operation.as_str(), r.at))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("second@example.com"), "reset_password_by_admin", later),
            (Some("first@example.com"), "send_password_email", T0),
        ]
    );
    let admin = store.user_by_id(actor.user).await.unwrap().unwrap();
    assert_eq!(all[0].actor_email.as_deref(), Some(admin.email.as_str()));
    assert_eq!(all[0].actor_token, Some(actor.token_id));
    assert_eq!(all[0].target_user, Some(b.id));
    assert!(all[0].outbox_id.is_some() && !all[0].link_revealed);
    assert_eq!(all[0].outcome, AuditOutcome::Ok);

    let targets = |rows: Vec<AuditRecord>| -> Vec<UserId> {
        rows.iter().map(|r| r.target_user.unwrap()).collect()
    };
    let only = |user| AuditFilter {
        user: Some(user),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(targets(list(only(a.id)).await), [a.id]);
    assert_eq!(
        targets(list(only(actor.user)).await),
        [b.id, a.id],
        "as actor"
    );
    let by_request = AuditFilter {
        request_id: Some(all[1].request_id.clone()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(targets(list(by_request).await), [a.id]);
    let window = |since, until| AuditFilter {
        since,
        until,
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        targets(list(window(Some(later), None)).await),
        [b.id],
        "since is inclusive"
    );
    assert_eq!(
        targets(list(window(None, Some(later))).await),
        [a.id],
        "until is not"
    );
    assert_eq!(targets(list(window(Some(T0 + 1), Some(later))).await), []);
    let one = AuditFilter {
        limit: 1,
        ..Default::default()
    };
    assert_eq!(targets(list(one).await), [b.id], "the newest");

    // Refusals: a row each, the only write; one for an address no user
    // has keeps the address, one for a user names them.
    let refusal = |target, address: &str, outcome, at| Refusal {
        at,
        actor,
        target,
        address: address.to_string(),
        operation: "reset_password_by_admin",
        request_id: format!("refused-{at}"),
        idempotency_key: Some("k-1".into()),
        outcome,
    };
    let ghost = refusal(
        None,
        "ghost@example.com",
        AuditOutcome::NoSuchUser,
        later + 1,
    );
    store.record_refusal(&ghost).await.unwrap();
    let mut reused = refusal(
        Some(b.id),
        "second@example.com",
        AuditOutcome::KeyReused,
        later + 2,
    );
    reused.operation = "send_password_email";
    store.record_refusal(&reused).await.unwrap();
    let outcomes = |filter: Option<OutcomeFilter>| AuditFilter {
        outcome: filter,
        limit: 10,
        ..Default::default()
    };
    let refused = list(outcomes(Some(OutcomeFilter::Refused))).await;
    let seen: Vec<_> = refused
        .iter()
        .map(|r| {
            (
                r.target_user,
                r.target_email.as_deref(),
                r.outcome,
                r.request_id.as_str(),
                r.idempotency_key.as_deref(),
                r.outbox_id,
                r.actor_token,
                r.operation.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                Some(b.id),
                Some("second@example.com"),
                AuditOutcome::KeyReused,
                reused.request_id.as_str(),
                Some("k-1"),
                None,
                Some(actor.token_id),
                "send_password_email",
            ),
            (
                None,
                Some("ghost@example.com"),
                AuditOutcome::NoSuchUser,
                ghost.request_id.as_str(),
                Some("k-1"),
                None,
                Some(actor.token_id),
                "reset_password_by_admin",
            ),
        ]
    );
    let ok = list(outcomes(Some(OutcomeFilter::Is(AuditOutcome::Ok)))).await;
    assert_eq!(targets(ok), [b.id, a.id]);
    let one_kind = list(outcomes(Some(OutcomeFilter::Is(AuditOutcome::NoSuchUser)))).await;
    assert_eq!(one_kind.len(), 1);
    assert_eq!(one_kind[0].request_id, ghost.request_id);
    let by_address = list(AuditFilter {
        address: Some("ghost@example.com".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(by_address.len(), 1);
    assert_eq!(by_address[0].outcome, AuditOutcome::NoSuchUser);
    let user_or_address = list(AuditFilter {
        user: Some(a.id),
        address: Some("ghost@example.com".into()),
        limit: 10,
        ..Default::default()
    })
    .await;
    let ids: Vec<_> = user_or_address.iter().map(|r| r.target_user).collect();
    assert_eq!(ids, [None, Some(a.id)], "either matches");
    // The users' own rows are unchanged by the refusals beside them.
    let b_rows = store.audit_entries(b.id).await.unwrap();
    let b_outcomes: Vec<_> = b_rows.iter().map(|e| e.outcome).collect();
    assert_eq!(b_outcomes, [AuditOutcome::Ok, AuditOutcome::KeyReused]);
}

/// Deletes what is due in windows of two, as the app's purge walks a
/// table; returns the rows deleted.
async fn purge_all(
    store: &dyn StoreTestExt,
    table: Aging,
    cutoff: UnixMillis,
    now: UnixMillis,
) -> u64 {
    let (mut after, mut deleted) = (0, 0);
    loop {
        let window = store
            .purge_window(table, after, 2, cutoff, now)
            .await
            .unwrap()
            .expect("no other purge");
        deleted += window.deleted;
        match window.last_id {
            Some(last) if window.scanned == 2 => after = last,
            _ => return deleted,
        }
    }
}

/// Retention: sent and dead emails no live key points to, finished links
/// and audit rows past their cutoff go; queued and retrying emails, a live
/// key's email and young rows stay; the dry-run count is what goes.
async fn retention(store: &dyn StoreTestExt) {
    const DAY: i64 = 86_400_000;
    let actor = admin_actor(store).await;
    let mut users = Vec::new();
    for n in 1..=4 {
        let user = store
            .create_user(&new_user(&format!("u{n}@example.com"), false), T0)
            .await
            .unwrap();
        users.push(user.id);
    }
    let send = LinkPurpose::SendPasswordEmail;
    let mut live = keyed(issue(users[0], actor, send, 1, T0), "live", "f1");
    live.idempotency.as_mut().unwrap().expires_at = T0 + 100 * DAY;
    for call in [
        live,
        keyed(issue(users[1], actor, send, 2, T0), "expired", "f2"),
        issue(users[2], actor, send, 3, T0),
        issue(users[3], actor, send, 4, T0),
    ] {
        let outcome = store.issue_link(&call).await.unwrap();
        assert!(
            matches!(outcome, IssueOutcome::Issued { .. }),
            "{outcome:?}"
        );
    }
    let claimed = store.claim_outbox(&claim_as_w(T0, 10)).await.unwrap();
    let id_of = |link: u8| {
        claimed
            .iter()
            .find(|m| m.message.message_id == format!("m{link}@test"))
            .unwrap()
            .id
    };
    let settle = |link, outcome| async move {
        assert!(
            store
                .settle_outbox(id_of(link), "w", &outcome)
                .await
                .unwrap()
        );
    };
    let sent = || Settlement::Sent {
        reply: "250 ok".into(),
        at: T0 + 1,
    };
    settle(1, sent()).await;
    settle(2, sent()).await;
    // Given up: its link is revoked with it.
    settle(
        3,
        Settlement::Dead {
            error: "550 no".into(),
            at: T0 + 1,
            suppress: false,
        },
    )
    .await;
    settle(
        4,
        Settlement::Retry {
            error: "451 later".into(),
            at: T0 + 1,
            next_attempt_at: T0 + 50 * DAY,
        },
    )
    .await;
    // A newer link revokes user 2's; it expires unused.
    store
        .issue_link(&issue(users[1], actor, send, 6, T0 + 120_000))
        .await
        .unwrap();
    // User 4's link is used (its notice queued).
    let used = store
        .complete_reset(&CompleteReset {
            link_hash: hash(4),
            password_phc: "$argon2id$new".into(),
            notice: NewMessage {
                message_id: "changed@test".into(),
                kind: MessageKind::PasswordChanged,
                recipient: "u4@example.com".into(),
                content: pwmail_store::Content::Rendered {
                    subject: "changed".into(),
                    text: "t".into(),
                    html: "h".into(),
                },
            },
            request_id: "req-reset".into(),
            now: T0 + 5,
        })
        .await
        .unwrap();
    assert!(matches!(used, ResetOutcome::Changed { .. }), "{used:?}");
    // Forty days on, a fresh link for user 3.
    let now = T0 + 40 * DAY;
    store
        .issue_link(&issue(users[2], actor, send, 7, now))
        .await
        .unwrap();
    let cutoff = now - 30 * DAY;

    // The keys expired at `now` go first (the app's purge does it).
    assert_eq!(store.purge_idempotency_keys(now).await.unwrap(), 1);
    let due = |table| async move { store.count_due(table, cutoff, now).await.unwrap() };
    assert_eq!(
        (
            due(Aging::Emails).await,
            due(Aging::Links).await,
            due(Aging::Audit).await
        ),
        (2, 5, 6),
        "emails 2 and 3; links 1, 2, 3, 4 and 6; every audit row but link 7's"
    );
    assert_eq!(purge_all(store, Aging::Emails, cutoff, now).await, 2);
    assert_eq!(purge_all(store, Aging::Links, cutoff, now).await, 5);
    assert_eq!(purge_all(store, Aging::Audit, cutoff, now).await, 6);
    for table in Aging::ALL {
        assert_eq!(due(table).await, 0, "{table:?}: nothing left due");
    }
    // What stays: the live key's email (a replay answers from it), the
    // retrying one, the queued notice and user 2's queued second email,
    // link 7 and its email and audit row.
    assert_eq!(
        store
            .find_idempotency(actor.token_id, send, "live", now)
            .await
            .unwrap()
            .and_then(|k| k.outbox_id),
        Some(id_of(1))
    );
    assert!(store.outbox_message(id_of(1)).await.unwrap().is_some());
    assert!(store.outbox_message(id_of(2)).await.unwrap().is_none());
    let mut left: Vec<String> = store
        .list_outbox(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["changed@test", "m1@test", "m4@test", "m6@test", "m7@test"]
    );
    let links = store.links().await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].expires_at, now + 3_600_000);
    let audit = store
        .list_audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].request_id, "req-7");
}

/// A user's locale is stored as given and read back with the user, and a
/// claimed message carries its recipient's locale as the user row holds
/// it (the dispatcher writes link emails in it).
async fn user_locales(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let german = store
        .create_user(
            &NewUser {
                locale: Some("de-AT".into()),
                name: Some("Anna".into()),
                ..new_user("de@example.com", false)
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(german.locale.as_deref(), Some("de-AT"));
    let found = store.find_user_by_email("DE@example.com").await.unwrap();
    assert_eq!(found.unwrap().locale.as_deref(), Some("de-AT"));
    let by_id = store.user_by_id(german.id).await.unwrap().unwrap();
    assert_eq!(by_id.locale.as_deref(), Some("de-AT"));
    let plain = store
        .create_user(&new_user("plain@example.com", false), T0)
        .await
        .unwrap();
    assert_eq!(plain.locale, None);
    for (user, link) in [(german.id, 1), (plain.id, 2)] {
        let outcome = store
            .issue_link(&issue(
                user,
                actor,
                LinkPurpose::SendPasswordEmail,
                link,
                T0,
            ))
            .await
            .unwrap();
        assert!(
            matches!(outcome, IssueOutcome::Issued { .. }),
            "{outcome:?}"
        );
    }
    let mut claimed = store.claim_outbox(&claim_as_w(T0, 10)).await.unwrap();
    claimed.sort_by_key(|m| m.id);
    let locales: Vec<Option<&str>> = claimed.iter().map(|m| m.user_locale.as_deref()).collect();
    assert_eq!(locales, [Some("de-AT"), None]);
    // Whom each is for, as the user's row says now (a delivery hook tells).
    let users: Vec<_> = claimed
        .iter()
        .map(|m| (m.user_id, m.user_name.clone()))
        .collect();
    assert_eq!(
        users,
        [
            (Some(german.id), Some("Anna".to_string())),
            (Some(plain.id), None)
        ]
    );
}

/// A dead email whose failure was its recipient's address suppresses the
/// user in the same transaction (undeliverable, with when and why, and an
/// audit row); a settle that lost its lease suppresses nothing; lifting it
/// makes the user deliverable again, audited.
async fn suppression(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let user = queued_user(store, actor, "gone@example.com", 1).await;
    let other = queued_user(store, actor, "fine@example.com", 2).await;
    let claimed = store.claim_outbox(&claim_as_w(T0, 10)).await.unwrap();
    let id_of = |u: UserId| claimed.iter().find(|m| m.user_id == Some(u)).unwrap().id;
    let dead = |suppress| Settlement::Dead {
        error: "permanent failure: 550 5.1.1 no such mailbox".into(),
        at: T0 + 5,
        suppress,
    };
    // Not the lease holder: nothing happens, not even the suppression.
    assert!(
        !store
            .settle_outbox(id_of(user.id), "x", &dead(true))
            .await
            .unwrap()
    );
    assert!(
        store
            .user_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .suppressed
            .is_none()
    );
    assert!(
        store
            .settle_outbox(id_of(user.id), "w", &dead(true))
            .await
            .unwrap()
    );
    assert!(
        store
            .settle_outbox(id_of(other.id), "w", &dead(false))
            .await
            .unwrap()
    );
    let gone = store.user_by_id(user.id).await.unwrap().unwrap();
    assert!(!gone.deliverable);
    assert_eq!(
        gone.suppressed,
        Some(Suppression {
            at: T0 + 5,
            reason: "permanent failure: 550 5.1.1 no such mailbox".into()
        })
    );
    let fine = store.user_by_id(other.id).await.unwrap().unwrap();
    assert!(fine.deliverable && fine.suppressed.is_none(), "{fine:?}");
    let audit = store.audit_entries(user.id).await.unwrap();
    let row = audit
        .iter()
        .find(|r| r.operation == "suppressed")
        .expect("audited");
    assert_eq!((row.at, row.outbox_id), (T0 + 5, Some(id_of(user.id))));
    assert!(
        store
            .audit_entries(other.id)
            .await
            .unwrap()
            .iter()
            .all(|r| r.operation != "suppressed")
    );

    let lifted = store
        .unsuppress_user("GONE@example.com", T0 + 9, "cli-1")
        .await
        .unwrap();
    assert!(lifted.deliverable && lifted.suppressed.is_none());
    let audit = store.audit_entries(user.id).await.unwrap();
    let row = audit
        .iter()
        .find(|r| r.operation == "unsuppressed")
        .expect("audited");
    assert_eq!((row.at, row.request_id.as_str()), (T0 + 9, "cli-1"));
    // Only a suppressed user can be lifted.
    let again = store
        .unsuppress_user("gone@example.com", T0 + 10, "cli-2")
        .await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");

    // A new address lifts a suppression too, with its event.
    store
        .set_event_kinds(&[EventKind::UserUnsuppressed])
        .await
        .unwrap();
    suppress_through_a_dead_email(store, actor, other.id).await;
    let change = UserChange {
        email: Some(("new@example.com".into(), true)),
        ..UserChange::default()
    };
    let (_, moved) = store
        .update_user("fine@example.com", &change, T0 + 20, "cli-3")
        .await
        .unwrap();
    assert!(moved.deliverable && moved.suppressed.is_none(), "{moved:?}");
    let events = store.list_events(None, 10).await.unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.kind, e.user_id, e.at, e.email.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [(
            EventKind::UserUnsuppressed,
            Some(other.id),
            T0 + 20,
            Some("new@example.com")
        )]
    );
}

/// `user` suppressed through a dead email of their own, as the dispatcher
/// does it.
async fn suppress_through_a_dead_email(store: &dyn StoreTestExt, actor: Actor, user: UserId) {
    let mut call = issue(user, actor, LinkPurpose::SendPasswordEmail, 7, T0 + 120_000);
    call.message.recipient = "fine@example.com".into();
    store.issue_link(&call).await.unwrap();
    let claimed = store
        .claim_outbox(&claim_as_w(T0 + 120_000, 10))
        .await
        .unwrap();
    let mine = claimed.iter().find(|m| m.user_id == Some(user)).unwrap();
    let dead = Settlement::Dead {
        error: "permanent failure: 550 5.1.1 no such mailbox".into(),
        at: T0 + 15,
        suppress: true,
    };
    assert!(store.settle_outbox(mine.id, "w", &dead).await.unwrap());
    assert!(
        store
            .user_by_id(user)
            .await
            .unwrap()
            .unwrap()
            .suppressed
            .is_some()
    );
}

/// A user changed field by field, each change audited once; a new
/// address revokes their open links and lifts a suppression; disabling
/// revokes tokens and links, enabling lets them back; a taken address is a
/// conflict that changes nothing.
async fn user_updates(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let user = queued_user(store, actor, "old@example.com", 1).await;
    store
        .create_user(&new_user("taken@example.com", false), T0)
        .await
        .unwrap();
    let change = UserChange {
        name: Some(Some("Ada".into())),
        locale: Some(Some("de".into())),
        admin: Some(true),
        ..UserChange::default()
    };
    let (before, after) = store
        .update_user("OLD@example.com", &change, T0 + 1, "req-1")
        .await
        .unwrap();
    assert_eq!((before.name, before.is_admin), (None, false));
    assert_eq!(
        (
            after.name.as_deref(),
            after.locale.as_deref(),
            after.is_admin
        ),
        (Some("Ada"), Some("de"), true)
    );
    // The link is still open: only a new address or disabling revokes it.
    assert_eq!(
        store.find_link(&hash(1)).await.unwrap().unwrap().state,
        LinkState::Open
    );
    let ops = |audit: Vec<AuditRecord>| -> Vec<String> {
        audit.into_iter().map(|r| r.operation).collect()
    };
    let audited = ops(store.audit_entries(user.id).await.unwrap());
    for op in ["name_changed", "locale_changed", "admin_granted"] {
        assert_eq!(
            audited.iter().filter(|o| *o == op).count(),
            1,
            "{audited:?}"
        );
    }

    // A taken address: refused, nothing changed.
    let taken = UserChange {
        email: Some(("Taken@example.com".into(), true)),
        name: Some(None),
        ..UserChange::default()
    };
    let refused = store
        .update_user("old@example.com", &taken, T0 + 2, "req-2")
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        store
            .user_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .name
            .as_deref(),
        Some("Ada")
    );

    // A new address: the old address's link is revoked.
    let moved = UserChange {
        email: Some(("new@example.com".into(), true)),
        ..UserChange::default()
    };
    let (_, after) = store
        .update_user("old@example.com", &moved, T0 + 3, "req-3")
        .await
        .unwrap();
    assert_eq!(after.email, "new@example.com");
    assert_eq!(
        store.find_link(&hash(1)).await.unwrap().unwrap().state,
        LinkState::Revoked
    );
    assert!(
        store
            .find_user_by_email("old@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // Disabled, then enabled again.
    let off = UserChange {
        enabled: Some(false),
        ..UserChange::default()
    };
    let (_, after) = store
        .update_user("new@example.com", &off, T0 + 4, "req-4")
        .await
        .unwrap();
    assert!(after.disabled);
    let on = UserChange {
        enabled: Some(true),
        ..UserChange::default()
    };
    let (_, after) = store
        .update_user("new@example.com", &on, T0 + 5, "req-5")
        .await
        .unwrap();
    assert!(!after.disabled);
    let audited = ops(store.audit_entries(user.id).await.unwrap());
    for op in ["email_changed", "disabled", "enabled"] {
        assert_eq!(
            audited.iter().filter(|o| *o == op).count(),
            1,
            "{audited:?}"
        );
    }
    // Nothing to change: nothing audited.
    let same = UserChange {
        admin: Some(true),
        ..UserChange::default()
    };
    let count = store.audit_entries(user.id).await.unwrap().len();
    store
        .update_user("new@example.com", &same, T0 + 6, "req-6")
        .await
        .unwrap();
    assert_eq!(store.audit_entries(user.id).await.unwrap().len(), count);
    let missing = store
        .update_user("nobody@example.com", &same, T0, "r")
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

/// Events, written by the triggers in the transaction of each change: none
/// while no kind is chosen; a link's life numbered 1, 2, 3… (queued,
/// retrying, sent, opened once, password set), a revoked link, a
/// suppression and its lifting; only the chosen kinds; then delivered
/// (gone), retried, failed and queued again, each settle only under its
/// lease.
async fn events(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    let quiet = queued_user(store, actor, "quiet@example.com", 1).await;
    assert!(
        store.list_events(None, 100).await.unwrap().is_empty(),
        "off"
    );
    // A kind named twice is chosen once.
    store
        .set_event_kinds(&[EventKind::EmailSent, EventKind::EmailSent])
        .await
        .unwrap();
    assert_eq!(store.event_kinds().await.unwrap(), [EventKind::EmailSent]);
    store.set_event_kinds(&EventKind::ALL).await.unwrap();
    assert_eq!(
        store.event_kinds().await.unwrap().len(),
        EventKind::ALL.len()
    );
    // The quiet user's email, claimed and sent before: nothing was written
    // for it then, and its settle now is its first event.
    let user = queued_user(store, actor, "life@example.com", 2).await;
    let link = store.find_link(&hash(2)).await.unwrap().unwrap();
    let claimed = store.claim_outbox(&claim_as_w(T0, 10)).await.unwrap();
    let mail_of = |u: UserId| claimed.iter().find(|m| m.user_id == Some(u)).unwrap().id;
    let retry = Settlement::Retry {
        error: "451 try later".into(),
        at: T0 + 10,
        next_attempt_at: T0 + 20,
    };
    assert!(
        store
            .settle_outbox(mail_of(user.id), "w", &retry)
            .await
            .unwrap()
    );
    let again = store.claim_outbox(&claim_as_w(T0 + 20, 10)).await.unwrap();
    assert_eq!(again.len(), 1);
    let sent = |at| Settlement::Sent {
        reply: "250 ok".into(),
        at,
    };
    assert!(
        store
            .settle_outbox(mail_of(user.id), "w", &sent(T0 + 30))
            .await
            .unwrap()
    );
    assert!(
        store
            .settle_outbox(mail_of(quiet.id), "w", &sent(T0 + 31))
            .await
            .unwrap()
    );
    assert!(store.mark_link_opened(link.id, T0 + 40).await.unwrap());
    assert!(
        !store.mark_link_opened(link.id, T0 + 41).await.unwrap(),
        "once"
    );
    assert_eq!(
        store.find_link(&hash(2)).await.unwrap().unwrap().opened_at,
        Some(T0 + 40)
    );
    let done = store
        .complete_reset(&CompleteReset {
            link_hash: hash(2),
            password_phc: "$argon2id$new".into(),
            notice: NewMessage {
                message_id: "changed@test".into(),
                kind: MessageKind::PasswordChanged,
                recipient: "life@example.com".into(),
                content: pwmail_store::Content::Rendered {
                    subject: "changed".into(),
                    text: "t".into(),
                    html: "h".into(),
                },
            },
            request_id: "req-page".into(),
            now: T0 + 50,
        })
        .await
        .unwrap();
    assert!(matches!(done, ResetOutcome::Changed { .. }), "{done:?}");

    let events = store.list_events(None, 100).await.unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.user_id, e.link_id, e.seq, e.at))
        .collect();
    let life = (Some(user.id), Some(link.id));
    let quiet_link = store.find_link(&hash(1)).await.unwrap().unwrap().id;
    assert_eq!(
        seen,
        [
            ("email.queued", life.0, life.1, Some(1), T0),
            ("email.retrying", life.0, life.1, Some(2), T0 + 10),
            ("email.sent", life.0, life.1, Some(3), T0 + 30),
            (
                "email.sent",
                Some(quiet.id),
                Some(quiet_link),
                Some(1),
                T0 + 31
            ),
            ("link.opened", life.0, life.1, Some(4), T0 + 40),
            ("password.set", life.0, life.1, Some(5), T0 + 50),
            ("email.queued", life.0, None, None, T0 + 50),
        ]
    );
    let retrying = &events[1];
    assert_eq!(retrying.detail.as_deref(), Some("451 try later"));
    assert_eq!(retrying.request_id.as_deref(), Some("req-2"));
    // The address the email was queued to (the helper writes u@…).
    assert_eq!(retrying.email.as_deref(), Some("u@example.com"));
    assert_eq!(retrying.message_id.as_deref(), Some("m2@test"));
    assert_eq!(
        retrying.message_kind.as_deref(),
        Some("send_password_email")
    );
    assert_eq!(
        events[4].request_id.as_deref(),
        Some("req-2"),
        "the link's call"
    );
    assert_eq!(events[6].message_kind.as_deref(), Some("password_changed"));
    assert!(events.iter().all(|e| e.state == EventState::Pending
        && e.attempts == 0
        && e.next_attempt_at == e.at
        && e.event_id.starts_with("evt_")
        && e.event_id.len() == 36));
    let mut ids: Vec<_> = events.iter().map(|e| &e.event_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "unique ids");

    // A new link revokes the open one; a suppression and its lifting.
    let _ = store
        .claim_events(&claim_as_w(T0 + 100, 100))
        .await
        .unwrap();
    for e in &events {
        assert!(
            store
                .settle_event(e.id, "w", &EventSettlement::Delivered)
                .await
                .unwrap()
        );
    }
    let revoked = queued_user(store, actor, "two@example.com", 3).await;
    let second = issue(
        revoked.id,
        actor,
        LinkPurpose::SendPasswordEmail,
        4,
        T0 + 61_000,
    );
    store.issue_link(&second).await.unwrap();
    let first = store.find_link(&hash(3)).await.unwrap().unwrap();
    let mails = store
        .claim_outbox(&claim_as_w(T0 + 61_000, 10))
        .await
        .unwrap();
    let to = |id: UserId| {
        mails
            .iter()
            .rev()
            .find(|m| m.user_id == Some(id))
            .unwrap()
            .id
    };
    let dead = Settlement::Dead {
        error: "permanent failure: 550 5.1.1 no such mailbox".into(),
        at: T0 + 62_000,
        suppress: true,
    };
    assert!(
        store
            .settle_outbox(to(revoked.id), "w", &dead)
            .await
            .unwrap()
    );
    store
        .unsuppress_user("two@example.com", T0 + 63_000, "cli-1")
        .await
        .unwrap();
    let seen: Vec<_> = store
        .list_events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind.as_str(), e.link_id, e.seq, e.at, e.detail))
        .collect();
    let second_link = store.find_link(&hash(4)).await.unwrap().unwrap().id;
    let reason = Some("permanent failure: 550 5.1.1 no such mailbox".to_string());
    let mut expected = vec![
        ("email.queued", Some(first.id), Some(1), T0, None),
        ("link.revoked", Some(first.id), Some(2), T0 + 61_000, None),
        (
            "email.queued",
            Some(second_link),
            Some(1),
            T0 + 61_000,
            None,
        ),
    ];
    // The dead email's three, in the order this engine's triggers run.
    let dead_ones = [
        ("email.dead", Some(second_link), T0 + 62_000, reason.clone()),
        ("link.revoked", Some(second_link), T0 + 62_000, None),
        ("user.suppressed", None, T0 + 62_000, reason.clone()),
    ];
    let mut tail: Vec<_> = seen[3..6].to_vec();
    tail.sort_by_key(|e| e.0);
    let mut want: Vec<_> = dead_ones
        .iter()
        .map(|(k, l, at, d)| {
            (
                *k,
                *l,
                tail.iter().find(|e| e.0 == *k).and_then(|e| e.2),
                *at,
                d.clone(),
            )
        })
        .collect();
    want.sort_by_key(|e| e.0);
    assert_eq!(tail, want);
    let link_seqs: Vec<_> = seen[3..6].iter().filter_map(|e| e.2).collect();
    assert_eq!(
        {
            let mut s = link_seqs.clone();
            s.sort();
            s
        },
        [2, 3],
        "{seen:?}"
    );
    expected.push(("user.unsuppressed", None, None, T0 + 63_000, None));
    // One transaction's events about two links: in either order.
    let mut first_three = seen[..3].to_vec();
    first_three.sort_by_key(|e| (e.3, e.1));
    assert_eq!(first_three, &expected[..3]);
    assert_eq!(seen[6], expected[3]);
    assert_eq!(seen.len(), 7, "{seen:?}");

    // Only the kinds chosen.
    let pending = store.list_events(None, 100).await.unwrap();
    store
        .set_event_kinds(&[EventKind::EmailSent])
        .await
        .unwrap();
    queued_user(store, actor, "chosen@example.com", 5).await;
    assert_eq!(store.list_events(None, 100).await.unwrap(), pending);

    // Delivery: leased once, settled only by the lease's owner.
    assert_eq!(store.next_event_due().await.unwrap(), Some(T0));
    let got = store
        .claim_events(&claim_as_w(T0 + 70_000, 3))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.id).collect::<Vec<_>>(),
        pending[..3].iter().map(|e| e.id).collect::<Vec<_>>()
    );
    assert!(
        got.iter()
            .all(|e| e.state == EventState::Delivering && e.attempts == 1)
    );
    let rest = store
        .claim_events(&claim_as_w(T0 + 70_000, 100))
        .await
        .unwrap();
    assert_eq!(rest.len(), 4, "leased ones are not claimed twice");
    assert!(
        !store
            .settle_event(got[0].id, "x", &EventSettlement::Delivered)
            .await
            .unwrap()
    );
    assert!(
        store
            .settle_event(got[0].id, "w", &EventSettlement::Delivered)
            .await
            .unwrap()
    );
    let retry = EventSettlement::Retry {
        error: "HTTP 503".into(),
        next_attempt_at: T0 + 80_000,
    };
    assert!(store.settle_event(got[1].id, "w", &retry).await.unwrap());
    let failed = EventSettlement::Failed {
        error: "gave up".into(),
    };
    assert!(store.settle_event(got[2].id, "w", &failed).await.unwrap());
    let depth = store.event_depth().await.unwrap();
    assert!(depth.contains(&(EventState::Pending, 1)), "{depth:?}");
    assert!(depth.contains(&(EventState::Delivering, 4)), "{depth:?}");
    assert!(depth.contains(&(EventState::Failed, 1)), "{depth:?}");
    let listed = store
        .list_events(Some(EventState::Failed), 10)
        .await
        .unwrap();
    assert_eq!(
        (listed.len(), listed[0].last_error.as_deref()),
        (1, Some("gave up"))
    );
    assert!(
        store
            .list_events(None, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.id != got[0].id),
        "delivered: gone"
    );
    assert_eq!(store.retry_failed_events(T0 + 90_000).await.unwrap(), 1);
    let back = store
        .list_events(Some(EventState::Pending), 10)
        .await
        .unwrap();
    assert_eq!(back.len(), 2);
    // A lease that ran out is claimed again, by another owner.
    let taken = store
        .claim_events(&Claim {
            owner: "v".into(),
            now: T0 + 200_000,
            lease_ms: 1_000,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(taken.len(), 6);
    assert!(
        !store
            .settle_event(rest[0].id, "w", &EventSettlement::Delivered)
            .await
            .unwrap()
    );
    // Off again: nothing is written, whatever changes (on SQLite the
    // triggers are gone).
    store.set_event_kinds(&[]).await.unwrap();
    let before = store.list_events(None, 100).await.unwrap().len();
    let later = queued_user(store, actor, "off@example.com", 6).await;
    store
        .unsuppress_user("two@example.com", T0, "cli-x")
        .await
        .unwrap_err();
    let off = store
        .claim_outbox(&claim_as_w(T0 + 300_000, 100))
        .await
        .unwrap();
    let mine = off.iter().find(|m| m.user_id == Some(later.id)).unwrap();
    let sent = Settlement::Sent {
        reply: "250".into(),
        at: T0 + 300_001,
    };
    assert!(store.settle_outbox(mine.id, "w", &sent).await.unwrap());
    assert_eq!(store.list_events(None, 100).await.unwrap().len(), before);
    // A process alone on the database (SQLite) ends the leases a dead one
    // left: claimed again at once, not when they run out.
    match store.end_event_leases(T0 + 200_001).await {
        Ok(ended) => {
            assert_eq!(ended, 6);
            let again = store
                .claim_events(&claim_as_w(T0 + 200_001, 100))
                .await
                .unwrap();
            assert_eq!(again.len(), 6);
        }
        Err(StoreError::Unsupported(_)) => {}
        Err(e) => panic!("{e}"),
    }
}

/// A user deleted with their tokens, links and unsent emails, in one
/// transaction; their sent email stays without them, and the audit rows
/// about and by them keep their address.
async fn user_deletion(store: &dyn StoreTestExt) {
    let actor = admin_actor(store).await;
    // Capitals in the stored address: the audit rows keep its key.
    let gone = queued_user(store, actor, "Del@example.com", 1).await;
    let claimed = store.claim_outbox(&claim_as_w(T0, 10)).await.unwrap();
    let sent = Settlement::Sent {
        reply: "250 ok".into(),
        at: T0 + 1,
    };
    assert!(
        store
            .settle_outbox(claimed[0].id, "w", &sent)
            .await
            .unwrap()
    );
    store
        .issue_link(&issue(
            gone.id,
            actor,
            LinkPurpose::SendPasswordEmail,
            2,
            T0 + 61_000,
        ))
        .await
        .unwrap();
    let token = store
        .create_api_token(gone.id, &hash(40), "theirs", false, T0)
        .await
        .unwrap();
    // They acted too: a call of theirs for someone else.
    let other = store
        .create_user(&new_user("other@example.com", false), T0)
        .await
        .unwrap();
    let theirs = Actor {
        user: gone.id,
        token_id: token.id,
    };
    store
        .issue_link(&keyed(
            issue(other.id, theirs, LinkPurpose::SendPasswordEmail, 3, T0),
            "k1",
            "f1",
        ))
        .await
        .unwrap();

    let deleted = store
        .delete_user("DEL@example.com", T0 + 70_000, "cli-del")
        .await
        .unwrap();
    assert_eq!(
        (
            deleted.user.id,
            deleted.tokens,
            deleted.links,
            deleted.unsent_emails,
            deleted.audit_rows
        ),
        (gone.id, 1, 2, 1, 3)
    );
    assert!(store.user_by_id(gone.id).await.unwrap().is_none());
    assert!(store.find_link(&hash(1)).await.unwrap().is_none());
    assert!(
        store.find_link(&hash(3)).await.unwrap().is_some(),
        "the other's link stays"
    );
    let left = store.list_outbox(None, 10).await.unwrap();
    let mut states: Vec<_> = left.iter().map(|m| m.state).collect();
    states.sort_by_key(|s| s.as_str());
    assert_eq!(
        states,
        [OutboxState::Queued, OutboxState::Sent],
        "the sent one and the other's"
    );
    let audit = store
        .list_audit(&AuditFilter {
            address: Some("del@example.com".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let rows: Vec<_> = audit
        .iter()
        .map(|r| {
            (
                r.operation.as_str(),
                r.actor_email.as_deref(),
                r.target_email.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("user_deleted", None, Some("del@example.com")),
            (
                "send_password_email",
                Some("del@example.com"),
                Some("other@example.com")
            ),
            (
                "send_password_email",
                Some("a@example.com"),
                Some("del@example.com")
            ),
            (
                "send_password_email",
                Some("a@example.com"),
                Some("del@example.com")
            ),
        ]
    );
    let again = store.delete_user("del@example.com", T0, "cli-2").await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    // The address is free again.
    store
        .create_user(&new_user("del@example.com", false), T0 + 80_000)
        .await
        .unwrap();
}

macro_rules! suite {
    ($engine:ident: $($case:ident),*) => {
        mod $engine {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = super::$engine().await;
                    super::$case(&*db.store).await;
                    db.finish().await;
                }
            )*
        }
    };
}

suite!(sqlite: user_deletion, events, user_updates, suppression, user_locales, retention, audit_list, users_and_tokens, gcra, gcra_follows_the_model, rate_limit_state_expires, dead_link_emails_revoke_their_link, issue_links, caller_rate, issue_target_charges_once, issue_call, addresses_are_checked, concurrent_callers_share_one_rate, idempotency_keys, outbox, complete_reset, concurrent_writes, concurrent_settles, leases_and_space, rate_state_fits_a_faster_rate);
suite!(postgres: user_deletion, events, user_updates, suppression, user_locales, retention, audit_list, users_and_tokens, gcra, gcra_follows_the_model, rate_limit_state_expires, dead_link_emails_revoke_their_link, issue_links, caller_rate, issue_target_charges_once, issue_call, addresses_are_checked, concurrent_callers_share_one_rate, idempotency_keys, outbox, complete_reset, concurrent_writes, concurrent_settles, leases_and_space, rate_state_fits_a_faster_rate);

/// Replicas starting together all run the migrations on one empty database:
/// each must come up, and the schema must be migrated once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let schema = pwmail_testkit::pg::PgSchema::create().await;
    let url = schema.url(None);
    let opened = futures::future::join_all((0..4).map(|_| PgStore::open(&url, pool(10)))).await;
    let stores: Vec<PgStore> = opened
        .into_iter()
        .map(|r| r.expect("every replica starts"))
        .collect();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let applied: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT version, count(*) FROM _sqlx_migrations GROUP BY version ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!applied.is_empty(), "migrated");
    assert!(
        applied.iter().all(|(_, n)| *n == 1),
        "each migration recorded once: {applied:?}"
    );
    // Every replica works on the result.
    for (i, store) in stores.iter().enumerate() {
        store
            .create_user(&new_user(&format!("r{i}@example.com"), false), T0)
            .await
            .unwrap();
    }
    assert_eq!(stores[0].list_users().await.unwrap().len(), 4);
    drop(stores);
    schema.drop_schema().await;
}

/// Claims the one queued message as `w` and settles it as sent; its id.
async fn send_the_one_queued(store: &dyn StoreTestExt) -> i64 {
    let claimed = store.claim_outbox(&claim_as_w(T0, 10)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let sent = Settlement::Sent {
        reply: "250 ok".into(),
        at: T0,
    };
    assert!(
        store
            .settle_outbox(claimed[0].id, "w", &sent)
            .await
            .unwrap()
    );
    claimed[0].id
}

/// PostgreSQL: the audit log is history (migration 0008): a sent message's
/// outbox row can be purged, and the audit row that names it stays. The
/// same holds on SQLite (tests/sqlite_upgrade.rs checks its keys).
#[tokio::test]
async fn postgres_audit_rows_outlive_the_messages_they_name() {
    let schema = pwmail_testkit::pg::PgSchema::create().await;
    let url = schema.url(None);
    let store = PgStore::open(&url, pool(5)).await.unwrap();
    let actor = admin_actor(&store).await;
    let user = queued_user(&store, actor, "purged@example.com", 1).await;
    let sent = send_the_one_queued(&store).await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let purged = sqlx::query("DELETE FROM outbox WHERE id = $1 AND state = 'sent'")
        .bind(sent)
        .execute(&mut conn)
        .await
        .expect("a sent message can be purged")
        .rows_affected();
    assert_eq!(purged, 1);
    let audit: Vec<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT target_user_id, actor_token_id, outbox_id FROM audit_log WHERE target_user_id = $1",
    )
    .bind(user.id.0)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        audit,
        [(user.id.0, Some(actor.token_id), Some(sent))],
        "the audit row stays as it was written"
    );
    drop(store);
    schema.drop_schema().await;
}

/// PostgreSQL: what an API call and a send run, one after another, reuse
/// one connection (a connection opened per statement costs a TLS handshake
/// and a login each time), a refused call included.
#[tokio::test]
async fn postgres_calls_and_sends_reuse_their_connection() {
    let schema = pwmail_testkit::pg::PgSchema::create().await;
    let store = PgStore::open(&schema.url(None), pool(5)).await.unwrap();
    let actor = admin_actor(&store).await;
    let opened = store.connections_opened();
    for i in 0..5u8 {
        let email = format!("reuse{i}@example.com");
        let user = store
            .create_user(&new_user(&email, false), T0)
            .await
            .unwrap();
        assert!(store.find_user_by_email(&email).await.unwrap().is_some());
        let rate = Rate {
            period_ms: 1,
            burst: 1_000,
        };
        let target = store
            .find_addressee(&email, &RateKey::ApiToken(actor.token_id), &rate, T0)
            .await
            .unwrap();
        assert!(matches!(target, Addressee::Found { .. }), "{target:?}");
        let issued = store
            .issue_link(&issue(
                user.id,
                actor,
                LinkPurpose::SendPasswordEmail,
                100 + i,
                T0,
            ))
            .await
            .unwrap();
        assert!(matches!(issued, IssueOutcome::Issued { .. }), "{issued:?}");
        let again = store
            .issue_link(&issue(
                user.id,
                actor,
                LinkPurpose::SendPasswordEmail,
                200 + i,
                T0,
            ))
            .await
            .unwrap();
        assert!(
            matches!(again, IssueOutcome::CoolingDown { .. }),
            "{again:?}"
        );
        send_the_one_queued(&store).await;
        store.outbox_depth().await.unwrap();
        store.outbox_unsent_depth().await.unwrap();
        store.next_outbox_due().await.unwrap();
    }
    assert_eq!(
        store.connections_opened(),
        opened,
        "no connection opened again"
    );
    drop(store);
    schema.drop_schema().await;
}

/// Replicas purge one at a time: while one holds the purge's advisory lock
/// (the transaction of a window), another's window does nothing and says so.
#[tokio::test]
async fn postgres_replicas_purge_one_at_a_time() {
    let schema = pwmail_testkit::pg::PgSchema::create().await;
    let url = schema.url(None);
    let store = PgStore::open(&url, pool(5)).await.unwrap();
    let actor = admin_actor(&store).await;
    queued_user(&store, actor, "old@example.com", 1).await;
    let later = T0 + 400 * 86_400_000;
    let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    // The purge's lock, as a replica of this schema's deployment takes it;
    // another deployment's (another schema of the same database) holding
    // its own does not stop this one.
    const LOCK: &str = "SELECT pg_try_advisory_xact_lock(hashtextextended('pwmail_purge:' || current_schema(), 0))";
    let neighbour = pwmail_testkit::pg::PgSchema::create().await;
    let mut theirs = <sqlx::PgConnection as sqlx::Connection>::connect(&neighbour.url(None))
        .await
        .unwrap();
    let mut theirs_held = sqlx::Connection::begin(&mut theirs).await.unwrap();
    let locked: bool = sqlx::query_scalar(LOCK)
        .fetch_one(&mut *theirs_held)
        .await
        .unwrap();
    assert!(locked);
    let mut held = sqlx::Connection::begin(&mut other).await.unwrap();
    let locked: bool = sqlx::query_scalar(LOCK)
        .fetch_one(&mut *held)
        .await
        .unwrap();
    assert!(locked, "another schema's purge holds another lock");
    let busy = store
        .purge_window(Aging::Audit, 0, 10, later, later)
        .await
        .unwrap();
    assert_eq!(busy, None, "another replica is purging");
    assert_eq!(
        store.count_due(Aging::Audit, later, later).await.unwrap(),
        1
    );
    held.rollback().await.unwrap();
    let done = store
        .purge_window(Aging::Audit, 0, 10, later, later)
        .await
        .unwrap()
        .expect("its turn, while the other schema's purge still holds its lock");
    assert_eq!((done.scanned, done.deleted), (1, 1));
    theirs_held.rollback().await.unwrap();
}
