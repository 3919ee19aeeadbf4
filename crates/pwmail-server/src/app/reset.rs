//! The emailed link: opening it (never consumes it: mail scanners prefetch
//! links) and setting the new password with it.

use std::net::IpAddr;
use tracing::Instrument as _;

use pwmail_i18n::{Catalogs, Lang};
use pwmail_store::{Admission, CompleteReset, LinkState, RateKey, ResetLink, ResetOutcome, User};

use crate::app::issue::retry_after;
use crate::app::{App, AppError, ResetError};
use crate::secrets;
use crate::secrets::password::{HashError, normalize};

/// A usable link and the user it belongs to.
#[derive(Debug)]
pub struct OpenLink {
    pub link: ResetLink,
    pub user: User,
}

impl OpenLink {
    /// The language of the link's page and of the notice its use sends.
    pub fn lang(&self, catalogs: &Catalogs) -> Lang {
        catalogs.for_link(
            self.link.options.locale.as_deref(),
            self.user.locale.as_deref(),
        )
    }
}

/// A password set: whose, and the page the done page links back to.
#[derive(Debug)]
pub struct PasswordSet {
    pub user: User,
    /// The link's `return_to` (still allowed), else `--default-return-to`.
    pub return_to: Option<url::Url>,
    /// The link's language.
    pub lang: Lang,
}

/// The new password as typed, twice.
pub struct NewPassword {
    pub password: String,
    pub confirm: String,
}

impl App {
    /// A usable link and its user, or why not.
    ///
    /// Only failed look-ups (unknown or expired tokens: one answer for both)
    /// count against the client's address, in one atomic step that also
    /// says whether the address is over its limit; a valid link always
    /// opens, so users behind one NAT with a guesser are not locked out.
    /// Unknown and expired tokens do the same work (a look-up and the
    /// count), so their timing does not tell them apart.
    pub async fn open_link(&self, client: IpAddr, token: &str) -> Result<OpenLink, ResetError> {
        let now = self.clock.now();
        let link = if secrets::is_link_token_shaped(token) {
            self.store.find_link(&secrets::hash(token)).await?
        } else {
            None
        };
        match link {
            Some(link) if link.state == LinkState::Used => Err(ResetError::Used),
            Some(link) if link.state == LinkState::Revoked => Err(ResetError::Revoked),
            Some(link) if link.expires_at > now => {
                match self.store.user_by_id(link.user_id).await? {
                    Some(user) if !user.disabled => {
                        // The first visit, once, for its link.opened event:
                        // with events off nothing reads it, so the page
                        // writes nothing.
                        if link.opened_at.is_none() && self.config.events.is_some() {
                            self.space
                                .noted(self.store.mark_link_opened(link.id, now).await, |_| true)?;
                        }
                        Ok(OpenLink { link, user })
                    }
                    _ => Err(ResetError::Revoked),
                }
            }
            // Unknown, or expired.
            _ => {
                let key = RateKey::ResetGuess(client);
                let rate = self.config.reset_guess_rate.gcra();
                match self
                    .space
                    .noted(self.store.rate_limit(&key, &rate, now).await, |a| {
                        matches!(a, Admission::Admitted)
                    })? {
                    Admission::Refused { retry_after_ms } => Err(ResetError::Throttled {
                        retry_after: retry_after(retry_after_ms),
                    }),
                    Admission::Admitted => {
                        tracing::info!(client = %client, "unknown or expired reset link opened");
                        Err(ResetError::Invalid)
                    }
                }
            }
        }
    }

    /// Checks the new password against the policy, hashes it, and in one
    /// transaction consumes the link, sets the hash, revokes the user's
    /// other links and queues the "password changed" notice. Returns the
    /// user whose password was set and where the done page links.
    pub async fn complete_reset(
        &self,
        client: IpAddr,
        token: &str,
        new: NewPassword,
        request_id: &str,
    ) -> Result<PasswordSet, ResetError> {
        let open = self.open_link(client, token).await?;
        let (password, confirm) = (normalize(&new.password), normalize(&new.confirm));
        let context = [
            open.user.email.as_str(),
            open.user.name.as_deref().unwrap_or_default(),
        ];
        if let Err(rejection) = self.policy.check(&password, &confirm, &context) {
            return Err(ResetError::Rejected {
                link: Box::new(open),
                rejection,
            });
        }
        let phc = match self.hasher.hash(password).await {
            Ok(phc) => phc,
            Err(HashError::Busy) => {
                return Err(ResetError::Busy {
                    link: Box::new(open),
                });
            }
            Err(e) => return Err(AppError::from(e).into()),
        };

        let return_to = self
            .config
            .return_to
            .for_link(open.link.options.return_to.as_deref());
        let lang = open.lang(&self.config.catalogs);
        let user = open.user;
        let now = self.clock.now();
        let notice = self
            .mailer
            .password_changed(&user.email, user.name.as_deref(), now, lang)?;
        let link_hash = secrets::hash(token);
        let outcome = self.space.noted(
            self.store
                .complete_reset(&CompleteReset {
                    link_hash,
                    password_phc: phc,
                    notice,
                    request_id: request_id.to_string(),
                    now,
                })
                .instrument(tracing::info_span!(
                    "store.complete_reset",
                    otel.kind = "client"
                ))
                .await,
            |o| matches!(o, ResetOutcome::Changed { .. }),
        )?;
        match outcome {
            ResetOutcome::Changed {
                user: id,
                outbox_id,
            } => {
                tracing::info!(request_id, user = %id, outbox_id, "password changed");
                self.outbox_wakeup.notify_one();
                Ok(PasswordSet {
                    user,
                    return_to,
                    lang,
                })
            }
            // Used, revoked or expired while the password was being hashed.
            ResetOutcome::LinkUnusable => Err(
                match self.store.find_link(&link_hash).await?.map(|l| l.state) {
                    Some(LinkState::Used) => ResetError::Used,
                    Some(LinkState::Revoked) => ResetError::Revoked,
                    _ => ResetError::Invalid,
                },
            ),
        }
    }
}
