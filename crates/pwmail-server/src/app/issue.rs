//! SendPasswordEmail and ResetPasswordByAdmin: email a user a fresh link.

use std::time::Duration;
use tracing::Instrument as _;

use pwmail_store::{
    Actor, Admission, AuditOutcome, Authenticated, CallOutcome, IdempotencyKey, IssueCall,
    IssueOutcome, LinkDraft, LinkOptions, LinkPurpose, RateKey, Refusal, StoreError, StoredOutcome,
    UnixMillis, UserId,
};
use sha2::Digest as _;

use crate::app::{App, AppError, auth, validate};
use crate::secrets;

/// What the caller asked for, already authenticated.
pub struct IssueRequest<'a> {
    pub caller: &'a Authenticated,
    pub email: &'a str,
    pub purpose: LinkPurpose,
    /// The API call's id, stored with the link, the outbox row and the audit row.
    pub request_id: &'a str,
    /// The caller's Idempotency-Key, if it sent one.
    pub idempotency_key: Option<&'a str>,
    /// What the call asks of its link; kept with the link and its email.
    pub options: LinkOptions,
    /// How long the link works; `None`: the server's `--link-ttl-secs`.
    /// Checked against `--link-ttl-min-secs`..`--link-ttl-max-secs`.
    pub lifetime: Option<Duration>,
    /// Answer the link instead of emailing it: only a token with the
    /// `reveal_links` right may ask.
    pub reveal: bool,
    /// The call's W3C `traceparent` (traces on), kept with its email.
    pub trace: Option<String>,
}

/// What became of a call that was not refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Issued {
    /// A fresh link was stored and its email queued, or (`link`) handed
    /// back for the caller to pass on: a secret, shown this once.
    New {
        expires_at: UnixMillis,
        link: Option<String>,
    },
    /// An earlier call with the same Idempotency-Key and request did that;
    /// this one changed nothing.
    Replayed {
        /// The request id of the call that did the work.
        request_id: String,
        /// When that call's link expires.
        expires_at: UnixMillis,
    },
}

/// What makes two calls with one Idempotency-Key the same request: the
/// operation, the address as the store compares addresses, and the link's
/// options and lifetime (each left out when not asked for, so keys stored
/// before they existed still match).
fn fingerprint(
    purpose: LinkPurpose,
    email: &str,
    options: &LinkOptions,
    lifetime: Option<Duration>,
    reveal: bool,
) -> String {
    let mut request = format!("{}\n{}", purpose.as_str(), pwmail_store::email_key(email));
    if let Some(options) = options.to_column() {
        request = format!("{request}\n{options}");
    }
    if let Some(lifetime) = lifetime {
        request = format!("{request}\nttl={}", lifetime.as_secs());
    }
    if reveal {
        request = format!("{request}\nreveal");
    }
    let digest = sha2::Sha256::digest(request);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// An outcome that was not a refusal, before the caller is told.
enum Answer {
    /// `revealed`: no email; the link goes back in the answer.
    New { revealed: bool },
    /// The stored outcome of a key whose call queued an email.
    Replayed { request_id: String, outbox_id: i64 },
}

/// A refusal's wait, in whole seconds, never zero.
pub fn retry_after(ms: i64) -> Duration {
    Duration::from_secs((ms.max(0) as u64).div_ceil(1000).max(1))
}

/// A refused call, with what its audit row needs.
struct Refused {
    error: AppError,
    /// The user the call was for, when the refusal came after finding them.
    target: Option<UserId>,
    /// Whether the store's transaction took the caller's rate step.
    charged: bool,
}

/// Refused before the store was asked: no user found, no rate step taken.
impl From<AppError> for Refused {
    fn from(error: AppError) -> Self {
        Refused {
            error,
            target: None,
            charged: false,
        }
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}

/// Which refusals leave an audit row, as what: those a caller meets one
/// call at a time (HTTP 403, 404, 409, 422). Input errors (400) are not
/// calls the product acted on; volume refusals (429, 503) and failures are
/// counted in metrics and logged, never stored, so no caller can fill the
/// disk with them. Every variant is named, so a new refusal is decided here.
fn audited(error: &AppError) -> Option<AuditOutcome> {
    Some(match error {
        AppError::NotAdmin => AuditOutcome::NotAdmin,
        AppError::CannotRevealLinks => AuditOutcome::CannotRevealLinks,
        AppError::NoSuchUser(_) => AuditOutcome::NoSuchUser,
        AppError::Disabled(_) => AuditOutcome::Disabled,
        AppError::Undeliverable { .. } | AppError::Suppressed { .. } => AuditOutcome::Undeliverable,
        AppError::LinkRevealed => AuditOutcome::LinkRevealed,
        AppError::KeyInFlight => AuditOutcome::KeyInFlight,
        AppError::KeyReused => AuditOutcome::KeyReused,
        AppError::Invalid(_)
        | AppError::InvalidEmail { .. }
        | AppError::BadToken
        | AppError::NoSuchToken(_)
        | AppError::NoSuchMessage(_)
        | AppError::NotDead(_)
        | AppError::NotSuppressed(_)
        | AppError::LastAdmin(_)
        | AppError::DeadLinkEmail { .. }
        | AppError::Backlog { .. }
        | AppError::TokenRate { .. }
        | AppError::UserCooldown { .. }
        | AppError::Store(_)
        | AppError::Letter(_)
        | AppError::Hash(_)
        | AppError::Random(_) => return None,
    })
}

impl App {
    /// Issues a link, or refuses; a refusal `audited` names is answered
    /// only once its audit row, its only write, is stored.
    pub async fn issue(&self, request: IssueRequest<'_>) -> Result<Issued, AppError> {
        match self.issue_unrecorded(&request).await {
            Ok(issued) => Ok(issued),
            Err(refused) => Err(self.record_refusal(&request, refused).await),
        }
    }

    /// The one place a refusal is recorded. One the store's transaction did
    /// not reach takes the caller's rate step first, as every call does, so
    /// refusals cannot outgrow the token's rate: past it the call is a 429,
    /// stored nowhere.
    async fn record_refusal(&self, request: &IssueRequest<'_>, refused: Refused) -> AppError {
        let Some(outcome) = audited(&refused.error) else {
            return refused.error;
        };
        let caller = request.caller;
        let now = self.clock.now();
        if !refused.charged {
            let key = RateKey::ApiToken(caller.token_id);
            match self
                .store
                .rate_limit(&key, &self.config.token_rate.gcra(), now)
                .await
            {
                Ok(Admission::Admitted) => {}
                Ok(Admission::Refused { retry_after_ms }) => {
                    return self.token_rate(retry_after_ms);
                }
                Err(e) => return e.into(),
            }
        }
        let row = Refusal {
            at: now,
            actor: Actor {
                user: caller.user.id,
                token_id: caller.token_id,
            },
            target: refused.target,
            address: pwmail_store::email_key(request.email),
            operation: request.purpose.as_str(),
            request_id: request.request_id.to_string(),
            idempotency_key: request.idempotency_key.map(str::to_string),
            outcome,
        };
        match self.store.record_refusal(&row).await {
            Ok(()) => {
                tracing::info!(
                    request_id = request.request_id,
                    operation = row.operation,
                    actor = %caller.user.id,
                    token = caller.token_id,
                    outcome = outcome.as_str(),
                    "call refused"
                );
                refused.error
            }
            // The refusal is not answered before its row is stored.
            Err(e) => e.into(),
        }
    }

    /// One call to the store, which takes it to its end: the caller's rate,
    /// the user, and in one transaction (which also applies the per-user
    /// cooldown and refuses a disabled user or one mail cannot reach) a
    /// fresh link and its email queued; one statement (PostgreSQL) or one
    /// write (SQLite) for a call without an Idempotency-Key.
    async fn issue_unrecorded(&self, request: &IssueRequest<'_>) -> Result<Issued, Refused> {
        let &IssueRequest {
            caller,
            email,
            purpose,
            request_id,
            idempotency_key,
            ref options,
            lifetime,
            reveal,
            ref trace,
        } = request;
        let config = &self.config;
        let now = self.clock.now();
        auth::require_admin(caller)?;
        if reveal && !caller.reveal_links {
            return Err(AppError::CannotRevealLinks.into());
        }
        if let Some(lifetime) = lifetime {
            validate::lifetime(lifetime, &config.link_ttl_range)?;
        }
        if let Some(return_to) = &options.return_to {
            validate::return_to(return_to, &config.return_to)?;
        }
        // The tag is kept as asked for, in its canonical spelling; which
        // catalog it gets is decided when the email and page are written.
        let mut options = options.clone();
        if let Some(tag) = &options.locale {
            options.locale = Some(validate::locale(tag)?);
        }
        let expires_at = now + lifetime.unwrap_or(config.link_ttl).as_millis() as i64;
        let idempotency = match idempotency_key {
            Some(key) => {
                validate::idempotency_key(key)?;
                let claim = IdempotencyKey {
                    key: key.to_string(),
                    fingerprint: fingerprint(purpose, email, &options, lifetime, reveal),
                    expires_at: now + config.idempotency_ttl.as_millis() as i64,
                };
                // A retry of a call that went through is answered before
                // anything else: no rate limit, backlog or lookup can turn
                // it into an error. The transaction checks again.
                if let Some(stored) = self
                    .store
                    .find_idempotency(caller.token_id, purpose, key, now)
                    .await?
                {
                    let outcome = stored.outcome_for(&claim);
                    let answer = self.answer(outcome, request_id, email, None, purpose, caller)?;
                    return Ok(self.issued(answer, expires_at, None).await?);
                }
                Some(claim)
            }
            None => None,
        };
        // After the fingerprint: the trace is not part of the request.
        options.traceparent = trace.clone();
        let waiting = self.backlog();
        if waiting >= config.max_backlog {
            return Err(AppError::Backlog {
                waiting,
                limit: config.max_backlog,
            }
            .into());
        }
        // Every call uses up the caller's rate once, refused ones included:
        // the store takes the step, whatever the call's outcome.
        let link_token = secrets::new_link_token().map_err(AppError::from)?;
        let call = IssueCall {
            email: email.to_string(),
            caller_rate: config.token_rate.gcra(),
            link: LinkDraft {
                actor: Actor {
                    user: caller.user.id,
                    token_id: caller.token_id,
                },
                purpose,
                link_hash: link_token.hash(),
                expires_at,
                cooldown: config.user_rate.gcra(),
                message_id: self.mailer.message_id(),
                // Written from the templates when it is sent (`Content::Link`).
                link: config.reset_link(link_token.expose()),
                options,
                reveal,
                request_id: request_id.to_string(),
                idempotency,
                now,
            },
        };
        let stored = self
            .store
            .issue_call(&call)
            .instrument(tracing::info_span!(
                "store.issue_call",
                otel.kind = "client"
            ))
            .await;
        let ended = self.space.noted(stored, |a| {
            matches!(
                a,
                CallOutcome::Issued {
                    outcome: IssueOutcome::Issued { .. } | IssueOutcome::Revealed { .. },
                    ..
                }
            )
        })?;
        // The store's transaction took the caller's rate step.
        let (error, target) = match ended {
            CallOutcome::Issued { user, outcome } => {
                match self.answer(outcome, request_id, email, Some(user), purpose, caller) {
                    Ok(answer) => {
                        return Ok(self
                            .issued(answer, expires_at, Some(call.link.link))
                            .await?);
                    }
                    Err(e) => (e, Some(user)),
                }
            }
            CallOutcome::Throttled { retry_after_ms } => (self.token_rate(retry_after_ms), None),
            CallOutcome::NoSuchUser => (AppError::NoSuchUser(email.to_string()), None),
            // Users added before addresses were checked as the mail builder
            // checks them: refused before anything is written (for
            // ResetPasswordByAdmin, before the password is invalidated).
            // So are users whose address was suppressed, which the refusal
            // says (read after it: the refusal wrote nothing else).
            CallOutcome::Undeliverable { user } => {
                let suppressed = match self.store.user_by_id(user).await {
                    Ok(found) => found.and_then(|u| u.suppressed),
                    Err(_) => None,
                };
                let error = match suppressed {
                    Some(s) => validate::suppressed(email, &s),
                    None => validate::undeliverable(email),
                };
                (error, Some(user))
            }
        };
        Err(Refused {
            error,
            target,
            charged: true,
        })
    }

    /// What the caller is told: a new link's expiry (and the link itself
    /// when it was revealed), or for a replay the first call's expiry, read
    /// from its email.
    async fn issued(
        &self,
        answer: Answer,
        expires_at: UnixMillis,
        link: Option<String>,
    ) -> Result<Issued, AppError> {
        Ok(match answer {
            Answer::New { revealed } => Issued::New {
                expires_at,
                link: link.filter(|_| revealed),
            },
            Answer::Replayed {
                request_id,
                outbox_id,
            } => {
                // A live key's email is kept as long as the key (its row
                // is what the key points to).
                let message = self.store.outbox_message(outbox_id).await?;
                let expires_at = message.and_then(|m| m.link_expires_at).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "outbox message {outbox_id} of a live Idempotency-Key is gone"
                    ))
                })?;
                Issued::Replayed {
                    request_id,
                    expires_at,
                }
            }
        })
    }

    fn token_rate(&self, retry_after_ms: i64) -> AppError {
        AppError::TokenRate {
            limit: self.config.token_rate,
            retry_after: retry_after(retry_after_ms),
        }
    }

    /// The one reading of an issue's outcome, whether the transaction or
    /// the replay check before it produced it.
    fn answer(
        &self,
        outcome: IssueOutcome,
        request_id: &str,
        email: &str,
        target: Option<UserId>,
        purpose: LinkPurpose,
        caller: &Authenticated,
    ) -> Result<Answer, AppError> {
        match outcome {
            IssueOutcome::Issued { outbox_id, .. } => {
                tracing::info!(
                    request_id,
                    operation = purpose.as_str(),
                    actor_id = caller.user.id.0,
                    user_id = target.map(|u| u.0),
                    outbox_id,
                    "password email queued"
                );
                self.outbox_wakeup.notify_one();
                Ok(Answer::New { revealed: false })
            }
            IssueOutcome::Revealed { link_id } => {
                // The audit row says so too; the link itself is never logged.
                tracing::info!(
                    request_id,
                    operation = purpose.as_str(),
                    actor = %caller.user.id,
                    token = caller.token_id,
                    target = ?target,
                    link_id,
                    "reset link revealed to the caller (no email)"
                );
                Ok(Answer::New { revealed: true })
            }
            // `outcome_for` answers a key without an email `AlreadyRevealed`;
            // refused here too, whichever way such a row arrives.
            IssueOutcome::Replayed(StoredOutcome {
                outbox_id: None, ..
            }) => Err(AppError::LinkRevealed),
            IssueOutcome::Replayed(StoredOutcome {
                outbox_id: Some(outbox_id),
                request_id: original,
                ..
            }) => {
                tracing::info!(
                    request_id,
                    original_request_id = %original,
                    operation = purpose.as_str(),
                    outbox_id,
                    "idempotent retry answered from the stored outcome"
                );
                Ok(Answer::Replayed {
                    request_id: original,
                    outbox_id,
                })
            }
            IssueOutcome::Throttled { retry_after_ms } => Err(self.token_rate(retry_after_ms)),
            IssueOutcome::CoolingDown { retry_after_ms } => Err(AppError::UserCooldown {
                email: email.to_string(),
                limit: self.config.user_rate,
                retry_after: retry_after(retry_after_ms),
            }),
            IssueOutcome::Disabled => Err(AppError::Disabled(email.to_string())),
            IssueOutcome::KeyReused => Err(AppError::KeyReused),
            IssueOutcome::AlreadyRevealed => Err(AppError::LinkRevealed),
            IssueOutcome::KeyInFlight => Err(AppError::KeyInFlight),
        }
    }
}
