//! What one send attempt's result means for its message: sent, retried
//! later (exponential backoff with jitter) or given up. Pure: no I/O.

use pwmail_store::{OutboxMessage, Settlement, UnixMillis};

use crate::config::DispatcherConfig;
use crate::mail::transport::{Failure, SendError};

/// What to record for one attempt.
pub fn decide(
    config: &DispatcherConfig,
    message: &OutboxMessage,
    result: Result<String, SendError>,
    now: UnixMillis,
) -> Settlement {
    match result {
        Ok(reply) => Settlement::Sent { reply, at: now },
        Err(SendError {
            failure: Failure::Permanent,
            message: error,
            recipient,
            ..
        }) => Settlement::Dead {
            error: format!("permanent failure: {error}"),
            at: now,
            suppress: recipient,
        },
        Err(SendError {
            failure: Failure::Transient,
            message: error,
            retry_after,
            ..
        }) => {
            let age = now - message.queued_at;
            if message.attempts >= config.max_attempts {
                Settlement::Dead {
                    error: format!(
                        "gave up after {} attempts; last error: {error}",
                        message.attempts
                    ),
                    at: now,
                    suppress: false,
                }
            } else if age >= config.max_age.as_millis() as i64 {
                Settlement::Dead {
                    error: format!(
                        "gave up after {} s in the queue; last error: {error}",
                        age / 1000
                    ),
                    at: now,
                    suppress: false,
                }
            } else {
                // The receiver's own wait (Retry-After) when it asks for
                // longer than the backoff.
                let asked = retry_after.map_or(0, |wait| wait.as_millis() as i64);
                Settlement::Retry {
                    error,
                    at: now,
                    next_attempt_at: now + backoff_ms(config, message.attempts).max(asked),
                }
            }
        }
    }
}

/// base · 2^(attempt-1), capped, plus up to 25 % jitter so a burst of
/// failures does not retry in lockstep.
fn backoff_ms(config: &DispatcherConfig, attempts: u32) -> i64 {
    backoff(config.backoff_base, config.backoff_max, attempts)
}

/// The wait before the next of `attempts` (the events' retries too).
pub fn backoff(base: std::time::Duration, max: std::time::Duration, attempts: u32) -> i64 {
    let base = base.as_millis() as i64;
    let exp = base.saturating_mul(1i64 << attempts.saturating_sub(1).min(30));
    let capped = exp.min(max.as_millis() as i64).max(1);
    let jitter = getrandom::u64().unwrap_or(0) % (capped as u64 / 4 + 1);
    capped + jitter as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwmail_store::{MessageKind, NewMessage};

    fn message(attempts: u32, created_at: i64) -> OutboxMessage {
        OutboxMessage {
            id: 1,
            message: NewMessage {
                message_id: "m@x".into(),
                kind: MessageKind::SendPasswordEmail,
                recipient: "a@example.com".into(),
                content: pwmail_store::Content::Rendered {
                    subject: "s".into(),
                    text: "t".into(),
                    html: "h".into(),
                },
            },
            attempts,
            created_at,
            queued_at: created_at,
            request_id: None,
            user_locale: None,
            user_id: None,
            user_name: None,
        }
    }

    fn transient() -> Result<String, SendError> {
        Err(SendError::transient("451 try later"))
    }

    #[test]
    fn transient_failures_back_off_then_die() {
        let config = DispatcherConfig::default();
        let Settlement::Retry {
            next_attempt_at, ..
        } = decide(&config, &message(1, 0), transient(), 0)
        else {
            panic!("first transient failure should retry");
        };
        assert!(
            (5_000..=6_250).contains(&next_attempt_at),
            "{next_attempt_at}"
        );
        let Settlement::Retry {
            next_attempt_at, ..
        } = decide(&config, &message(3, 0), transient(), 0)
        else {
            panic!("third transient failure should retry");
        };
        assert!(
            (20_000..=25_000).contains(&next_attempt_at),
            "{next_attempt_at}"
        );
        assert!(matches!(
            decide(&config, &message(10, 0), transient(), 0),
            Settlement::Dead { .. }
        ));
        let day = 24 * 3600 * 1000;
        assert!(matches!(
            decide(&config, &message(2, 0), transient(), day),
            Settlement::Dead { .. }
        ));
    }

    /// `--mail-max-attempts N` makes N attempts: a transient failure of
    /// attempt N-1 is retried, of attempt N is the end.
    #[test]
    fn the_last_attempt_is_the_configured_one() {
        for max_attempts in [1, 2, 3, 10] {
            let config = DispatcherConfig {
                max_attempts,
                ..DispatcherConfig::default()
            };
            if max_attempts > 1 {
                assert!(
                    matches!(
                        decide(&config, &message(max_attempts - 1, 0), transient(), 0),
                        Settlement::Retry { .. }
                    ),
                    "attempt {} of {max_attempts} is retried",
                    max_attempts - 1
                );
            }
            let Settlement::Dead { error, .. } =
                decide(&config, &message(max_attempts, 0), transient(), 0)
            else {
                panic!("attempt {max_attempts} of {max_attempts} is the last");
            };
            assert!(
                error.contains(&format!("gave up after {max_attempts} attempts")),
                "{error}"
            );
        }
    }

    #[test]
    fn a_retry_waits_at_least_as_long_as_the_receiver_asked() {
        let config = DispatcherConfig::default();
        let asked = |wait: u64| {
            Err(SendError {
                retry_after: Some(std::time::Duration::from_secs(wait)),
                ..SendError::transient("429")
            })
        };
        let Settlement::Retry {
            next_attempt_at, ..
        } = decide(&config, &message(1, 0), asked(120), 0)
        else {
            panic!("retried");
        };
        assert_eq!(next_attempt_at, 120_000, "Retry-After over the 5 s backoff");
        // A shorter wait than the backoff leaves the backoff.
        let Settlement::Retry {
            next_attempt_at, ..
        } = decide(&config, &message(1, 0), asked(1), 0)
        else {
            panic!("retried");
        };
        assert!(
            (5_000..=6_250).contains(&next_attempt_at),
            "{next_attempt_at}"
        );
    }

    #[test]
    fn permanent_failures_die_at_once() {
        let config = DispatcherConfig::default();
        let permanent = Err(SendError::permanent("550 no such user"));
        let Settlement::Dead { error, .. } = decide(&config, &message(1, 0), permanent, 0) else {
            panic!("permanent failure should be dead");
        };
        assert!(error.contains("550 no such user"));
    }
}
