//! The rules of pwmail, as one executable model: read this first to know
//! what pwmail does when an admin asks for a reset email, when a link is
//! opened or used, and when a user is disabled.
//!
//! No I/O, no clock, no async: a [`Model`] holds the state the rules need
//! and answers each operation with the outcome the product must give. The
//! product runs these rules in `pwmail-server`'s `app` and in each storage
//! engine (Rust on SQLite's writer, PL/pgSQL on PostgreSQL); the property
//! test in `tests/tests/rules.rs` runs random sequences of operations
//! against this model and against the app on each engine, and fails on the
//! first outcome or state that differs.
//!
//! What the model leaves to others: how an address is judged deliverable
//! (the mail builder's check; a [`UserSpec`] says whether it is), what
//! makes a password acceptable (the password policy; [`Model::set_password`]
//! is told), and how the store keeps its state.

use std::collections::BTreeMap;

pub mod gcra;

pub use gcra::{Admission, Rate};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// How addresses are compared: case and surrounding spaces aside.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The limits and lifetimes the rules use (the server's flags).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Per API token: every admin call uses it up once, refused calls
    /// included (`--token-rate`).
    pub caller_rate: Rate,
    /// Per user: emails with a link (`--user-rate`).
    pub cooldown: Rate,
    /// Per client address: unknown or expired links opened
    /// (`--reset-guess-rate`).
    pub guess_rate: Rate,
    /// How long a link works (`--link-ttl-secs`).
    pub link_ttl_ms: Millis,
    /// How long an Idempotency-Key's outcome is kept (`--idempotency-ttl-secs`).
    pub key_ttl_ms: Millis,
}

/// Which admin operation is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    /// SendPasswordEmail: the current password keeps working until the
    /// link is used.
    SendPasswordEmail,
    /// ResetPasswordByAdmin: the current password stops working at once.
    ResetPasswordByAdmin,
}

/// Indexes into the model's users, links and emails, in creation order.
pub type UserIx = usize;
pub type LinkIx = usize;
pub type EmailIx = usize;
/// An API token of the admin making the calls.
pub type Token = usize;

/// A user as it was added.
#[derive(Clone, Debug)]
pub struct UserSpec {
    /// The stored address, as it was written.
    pub address: String,
    /// Whether mail can be addressed to it (users added before addresses
    /// were checked may hold one that cannot).
    pub deliverable: bool,
    /// Whether the user has a password when the sequence starts.
    pub has_password: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserState {
    pub address: String,
    pub deliverable: bool,
    pub disabled: bool,
    pub has_password: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Open,
    Used,
    Revoked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub user: UserIx,
    pub purpose: Purpose,
    pub expires_at: Millis,
    pub state: LinkState,
}

/// What an email says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailKind {
    /// A link email, from an admin call.
    Link { purpose: Purpose, link: LinkIx },
    /// "Your password was changed" (no link).
    PasswordChanged,
}

/// A queued email: to the user's stored address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub kind: EmailKind,
}

/// What one Idempotency-Key keeps, scoped to the calling token and the
/// operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// What makes a retry the same request: the address, compared as
    /// addresses are ([`email_key`]).
    pub address_key: String,
    /// The email the first call queued.
    pub email: EmailIx,
    pub expires_at: Millis,
}

/// What a rate limit counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RateKey {
    Caller(Token),
    User(UserIx),
    /// The one client address of the model's reset page.
    Guess,
}

/// The answer to an admin call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueOutcome {
    /// A new link, emailed.
    Issued {
        link: LinkIx,
    },
    /// A retry of a call with the same key and request: its stored outcome;
    /// nothing changes, no rate is used.
    Replayed {
        email: EmailIx,
    },
    /// The key was used for another request; nothing changes.
    KeyReused,
    /// The caller's rate is used up; nothing changes.
    CallerThrottled {
        retry_after_ms: Millis,
    },
    /// No user has the address.
    NoSuchUser,
    /// The user's stored address cannot receive mail.
    Undeliverable,
    Disabled,
    /// The user was emailed a link too recently.
    CoolingDown {
        retry_after_ms: Millis,
    },
}

/// The answer to opening a link (and the first step of setting a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenOutcome {
    Open {
        user: UserIx,
    },
    Used,
    /// Revoked by a newer link, a password set with another link, or the
    /// user's disabling.
    Revoked,
    /// Unknown or expired (one answer for both, so guessers learn nothing).
    Invalid,
    /// Too many unknown or expired links from this client.
    Throttled {
        retry_after_ms: Millis,
    },
}

/// The answer to setting a password with a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOutcome {
    Set {
        user: UserIx,
    },
    /// The link does not open.
    Refused(OpenOutcome),
    /// The password policy refused the password; nothing changes.
    Rejected,
}

/// Everything the rules remember.
#[derive(Clone, Debug)]
pub struct Model {
    pub limits: Limits,
    pub now: Millis,
    pub users: Vec<UserState>,
    pub links: Vec<Link>,
    pub emails: Vec<Email>,
    pub keys: BTreeMap<(Token, Purpose, String), StoredKey>,
    /// GCRA state: each key's theoretical arrival time.
    pub rates: BTreeMap<RateKey, Millis>,
    /// The audit rows of admin calls, in order.
    pub audit: Vec<AuditRow>,
}

/// An admin call's audit row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub token: Token,
    pub purpose: Purpose,
    /// The user the call found, if it got that far.
    pub user: Option<UserIx>,
    pub outcome: Audited,
}

/// What an audited call came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audited {
    Issued,
    KeyReused,
    NoSuchUser,
    Undeliverable,
    Disabled,
}

impl Model {
    pub fn new(limits: Limits, now: Millis, users: &[UserSpec]) -> Model {
        Model {
            limits,
            now,
            users: users
                .iter()
                .map(|u| UserState {
                    address: u.address.clone(),
                    deliverable: u.deliverable,
                    disabled: false,
                    has_password: u.has_password,
                })
                .collect(),
            links: Vec::new(),
            emails: Vec::new(),
            keys: BTreeMap::new(),
            rates: BTreeMap::new(),
            audit: Vec::new(),
        }
    }

    pub fn advance(&mut self, ms: Millis) {
        self.now += ms;
    }

    /// One step of a rate limit; a refusal changes nothing.
    fn admit(&mut self, key: RateKey, rate: Rate) -> Admission {
        let (admission, tat) = gcra::step(self.rates.get(&key).copied(), &rate, self.now);
        if let Some(tat) = tat {
            self.rates.insert(key, tat);
        }
        admission
    }

    /// An admin call (either F5 operation) naming a user by `address`, with
    /// an optional Idempotency-Key. The order of the checks is the rule:
    /// a live key answers first (a reused key still uses up the caller's
    /// rate, as every refusal that leaves an audit row does); then the
    /// caller's rate is used up (by every call that gets this far, refused
    /// ones included); then the user, their address, their state and their
    /// cooldown. The call and the refusals met one call at a time leave an
    /// audit row ([`Model::audit`]); replays and volume refusals none.
    pub fn issue(
        &mut self,
        token: Token,
        purpose: Purpose,
        address: &str,
        key: Option<&str>,
    ) -> IssueOutcome {
        let (outcome, user) = self.decide_issue(token, purpose, address, key);
        let audited = match outcome {
            IssueOutcome::Issued { .. } => Some(Audited::Issued),
            IssueOutcome::KeyReused => Some(Audited::KeyReused),
            IssueOutcome::NoSuchUser => Some(Audited::NoSuchUser),
            IssueOutcome::Undeliverable => Some(Audited::Undeliverable),
            IssueOutcome::Disabled => Some(Audited::Disabled),
            IssueOutcome::Replayed { .. }
            | IssueOutcome::CallerThrottled { .. }
            | IssueOutcome::CoolingDown { .. } => None,
        };
        if let Some(outcome) = audited {
            self.audit.push(AuditRow {
                token,
                purpose,
                user,
                outcome,
            });
        }
        outcome
    }

    /// `issue`'s outcome, and the user it found.
    fn decide_issue(
        &mut self,
        token: Token,
        purpose: Purpose,
        address: &str,
        key: Option<&str>,
    ) -> (IssueOutcome, Option<UserIx>) {
        let address_key = email_key(address);
        if let Some(key) = key
            && let Some(stored) = self.live_key(token, purpose, key)
        {
            if stored.address_key == address_key {
                let email = stored.email;
                return (IssueOutcome::Replayed { email }, None);
            }
            if let Admission::Refused { retry_after_ms } =
                self.admit(RateKey::Caller(token), self.limits.caller_rate)
            {
                return (IssueOutcome::CallerThrottled { retry_after_ms }, None);
            }
            return (IssueOutcome::KeyReused, None);
        }
        if let Admission::Refused { retry_after_ms } =
            self.admit(RateKey::Caller(token), self.limits.caller_rate)
        {
            return (IssueOutcome::CallerThrottled { retry_after_ms }, None);
        }
        let Some(user) = self
            .users
            .iter()
            .position(|u| email_key(&u.address) == address_key)
        else {
            return (IssueOutcome::NoSuchUser, None);
        };
        if !self.users[user].deliverable {
            return (IssueOutcome::Undeliverable, Some(user));
        }
        if self.users[user].disabled {
            return (IssueOutcome::Disabled, Some(user));
        }
        if let Admission::Refused { retry_after_ms } =
            self.admit(RateKey::User(user), self.limits.cooldown)
        {
            return (IssueOutcome::CoolingDown { retry_after_ms }, Some(user));
        }
        // The new link revokes every older one of the user's.
        self.revoke_links_of(user);
        let link = self.links.len();
        self.links.push(Link {
            user,
            purpose,
            expires_at: self.now + self.limits.link_ttl_ms,
            state: LinkState::Open,
        });
        if purpose == Purpose::ResetPasswordByAdmin {
            self.users[user].has_password = false;
        }
        let email = self.queue(user, EmailKind::Link { purpose, link });
        if let Some(key) = key {
            self.keys.insert(
                (token, purpose, key.to_string()),
                StoredKey {
                    address_key,
                    email,
                    expires_at: self.now + self.limits.key_ttl_ms,
                },
            );
        }
        (IssueOutcome::Issued { link }, Some(user))
    }

    /// Opening a link never uses it (mail scanners open links). Only
    /// unknown and expired links use up the client's guess rate; a valid
    /// link always opens.
    pub fn open(&mut self, link: Option<LinkIx>) -> OpenOutcome {
        match link.map(|ix| &self.links[ix]) {
            Some(link) if link.state == LinkState::Used => OpenOutcome::Used,
            Some(link) if link.state == LinkState::Revoked => OpenOutcome::Revoked,
            Some(link) if link.expires_at > self.now => {
                if self.users[link.user].disabled {
                    OpenOutcome::Revoked
                } else {
                    OpenOutcome::Open { user: link.user }
                }
            }
            _ => match self.admit(RateKey::Guess, self.limits.guess_rate) {
                Admission::Refused { retry_after_ms } => OpenOutcome::Throttled { retry_after_ms },
                Admission::Admitted => OpenOutcome::Invalid,
            },
        }
    }

    /// Sets the user's password with a link (`link` `None`: a token pwmail
    /// never issued): the link opens as [`open`](Model::open) says, the
    /// policy accepts the password, and then the link is used, the
    /// password set, the user's other links revoked and a notice queued.
    pub fn set_password(&mut self, link: Option<LinkIx>, acceptable: bool) -> SetOutcome {
        let user = match self.open(link) {
            OpenOutcome::Open { user } => user,
            refused => return SetOutcome::Refused(refused),
        };
        if !acceptable {
            return SetOutcome::Rejected;
        }
        if let Some(ix) = link {
            self.links[ix].state = LinkState::Used;
        }
        self.users[user].has_password = true;
        self.revoke_links_of(user);
        self.queue(user, EmailKind::PasswordChanged);
        SetOutcome::Set { user }
    }

    /// Disabling a user revokes their open links (and API tokens); it keeps
    /// their password, which no longer signs them in. Disabling twice is
    /// the same as once.
    pub fn disable(&mut self, user: UserIx) {
        self.users[user].disabled = true;
        self.revoke_links_of(user);
    }

    /// The stored outcome of a key, unless it expired.
    pub fn live_key(&self, token: Token, purpose: Purpose, key: &str) -> Option<&StoredKey> {
        self.keys
            .get(&(token, purpose, key.to_string()))
            .filter(|k| k.expires_at > self.now)
    }

    /// Links that are neither used nor revoked, expired ones included.
    fn revoke_links_of(&mut self, user: UserIx) {
        for link in &mut self.links {
            if link.user == user && link.state == LinkState::Open {
                link.state = LinkState::Revoked;
            }
        }
    }

    fn queue(&mut self, user: UserIx, kind: EmailKind) -> EmailIx {
        self.emails.push(Email {
            to: self.users[user].address.clone(),
            kind,
        });
        self.emails.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Millis = 60_000;

    fn model() -> Model {
        let rate = |burst, period_ms| Rate { burst, period_ms };
        Model::new(
            Limits {
                caller_rate: rate(2, MINUTE),
                cooldown: rate(1, MINUTE),
                guess_rate: rate(1, MINUTE),
                link_ttl_ms: 10 * MINUTE,
                key_ttl_ms: 5 * MINUTE,
            },
            0,
            &[
                UserSpec {
                    address: "Ann@example.com".into(),
                    deliverable: true,
                    has_password: true,
                },
                UserSpec {
                    address: "a..b@example.com".into(),
                    deliverable: false,
                    has_password: true,
                },
            ],
        )
    }

    #[test]
    fn a_new_link_revokes_the_older_one_and_reset_invalidates_the_password() {
        let mut m = model();
        let p = Purpose::ResetPasswordByAdmin;
        assert_eq!(
            m.issue(0, Purpose::SendPasswordEmail, "ann@EXAMPLE.com", None),
            IssueOutcome::Issued { link: 0 }
        );
        assert!(m.users[0].has_password);
        m.advance(MINUTE);
        assert_eq!(
            m.issue(0, p, "Ann@example.com", None),
            IssueOutcome::Issued { link: 1 }
        );
        assert_eq!(m.links[0].state, LinkState::Revoked);
        assert!(!m.users[0].has_password);
        assert_eq!(m.emails[1].to, "Ann@example.com", "to the stored address");
    }

    #[test]
    fn refused_calls_use_up_the_callers_rate_but_replays_do_not() {
        let mut m = model();
        let p = Purpose::SendPasswordEmail;
        assert_eq!(
            m.issue(0, p, "a..b@example.com", Some("k")),
            IssueOutcome::Undeliverable
        );
        assert_eq!(
            m.issue(0, p, "ann@example.com", Some("k")),
            IssueOutcome::Issued { link: 0 }
        );
        assert_eq!(
            m.issue(0, p, "ANN@example.com", Some("k")),
            IssueOutcome::Replayed { email: 0 },
            "the same request, the burst of 2 spent"
        );
        assert_eq!(
            m.issue(0, p, "x@example.com", Some("k")),
            IssueOutcome::CallerThrottled {
                retry_after_ms: MINUTE
            },
            "a reused key is refused like any call once the rate is spent"
        );
        assert_eq!(
            m.issue(0, p, "nobody@example.com", None),
            IssueOutcome::CallerThrottled {
                retry_after_ms: MINUTE
            }
        );
        assert_eq!(
            m.issue(1, p, "nobody@example.com", None),
            IssueOutcome::NoSuchUser
        );
        m.advance(MINUTE);
        assert_eq!(
            m.issue(0, p, "x@example.com", Some("k")),
            IssueOutcome::KeyReused
        );
        let undeliverable = m.users.iter().position(|u| u.address == "a..b@example.com");
        let row = |token, user, outcome| AuditRow {
            token,
            purpose: p,
            user,
            outcome,
        };
        assert_eq!(
            m.audit,
            [
                row(0, undeliverable, Audited::Undeliverable),
                row(0, Some(0), Audited::Issued),
                row(1, None, Audited::NoSuchUser),
                row(0, None, Audited::KeyReused),
            ],
            "the call and its refusals audited; the replay and the 429s not"
        );
    }

    #[test]
    fn a_used_link_is_used_and_an_expired_one_counts_as_a_guess() {
        let mut m = model();
        m.issue(0, Purpose::SendPasswordEmail, "ann@example.com", None);
        assert_eq!(m.set_password(Some(0), false), SetOutcome::Rejected);
        assert_eq!(m.set_password(Some(0), true), SetOutcome::Set { user: 0 });
        assert_eq!(m.open(Some(0)), OpenOutcome::Used);
        m.advance(MINUTE);
        m.issue(0, Purpose::SendPasswordEmail, "ann@example.com", None);
        m.advance(10 * MINUTE);
        assert_eq!(m.open(Some(1)), OpenOutcome::Invalid);
        assert_eq!(
            m.open(None),
            OpenOutcome::Throttled {
                retry_after_ms: MINUTE
            }
        );
        m.disable(0);
        assert_eq!(m.links[1].state, LinkState::Revoked, "expired, and revoked");
        assert_eq!(
            m.issue(0, Purpose::SendPasswordEmail, "ann@example.com", None),
            IssueOutcome::Disabled
        );
    }
}
