//! The generic cell rate algorithm, as the rate-limit statements run it.
//!
//! State per key is one number, the theoretical arrival time (`tat`). With
//! `period` = the interval one call uses up and `tau` = `period * (burst -
//! 1)` (the slack a burst may use), a call at `now` is admitted when
//! `max(tat, now) - now <= tau`, and then `tat` becomes `max(tat, now) +
//! period`. A refused call changes nothing and may retry after `tat - tau -
//! now`. `sql::gcra_admit` runs that step atomically in the database; this
//! module holds the arithmetic the engines share. The rule itself is
//! `pwmail_rules::gcra`: these tests and the store suite's
//! `gcra_follows_the_model` check the arithmetic and the engines against it.

use crate::{Admission, Rate, UnixMillis};

/// `period` and `tau` of a rate, in milliseconds (never a zero period).
pub fn params(rate: &Rate) -> (i64, i64) {
    let period = rate.period_ms.max(1);
    (period, period * (i64::from(rate.burst.max(1)) - 1))
}

/// The latest `tat` the rate can leave at `now` (a burst just spent):
/// state later than that was written under a slower rate, and is cut to it
/// so that a refusal waits no longer than the rate it quotes.
pub fn ceiling(rate: &Rate, now: UnixMillis) -> UnixMillis {
    let (period, tau) = params(rate);
    now + period + tau
}

/// The answer to a refused call whose key holds `tat`.
pub fn refused(tat: UnixMillis, tau: i64, now: UnixMillis) -> Admission {
    Admission::Refused {
        retry_after_ms: (tat - tau - now).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwmail_rules::gcra as model;

    const NOW: UnixMillis = 1_700_000_000_000;

    fn rates() -> [Rate; 5] {
        [(1, 60_000), (2, 60_000), (3, 10), (4, 1), (0, 0)]
            .map(|(burst, period_ms)| Rate { period_ms, burst })
    }

    fn as_model(rate: &Rate) -> model::Rate {
        model::Rate {
            burst: rate.burst,
            period_ms: rate.period_ms,
        }
    }

    /// The model's state after the rate's whole burst is spent at `NOW`.
    fn spent(rate: &Rate) -> UnixMillis {
        (0..rate.burst.max(1))
            .fold(None, |tat, _| model::step(tat, &as_model(rate), NOW).1)
            .expect("state after a call")
    }

    #[test]
    fn the_ceiling_is_the_state_a_spent_burst_leaves_in_the_model() {
        for rate in rates() {
            assert_eq!(ceiling(&rate, NOW), spent(&rate), "{rate:?}");
        }
    }

    #[test]
    fn a_refusal_waits_as_long_as_the_model_says() {
        for rate in rates() {
            let tat = spent(&rate);
            let (_, tau) = params(&rate);
            for now in [NOW, NOW + 1, NOW + rate.period_ms / 2] {
                let want = match model::step(Some(tat), &as_model(&rate), now).0 {
                    model::Admission::Refused { retry_after_ms } => {
                        Admission::Refused { retry_after_ms }
                    }
                    model::Admission::Admitted => continue,
                };
                assert_eq!(refused(tat, tau, now), want, "{rate:?} at +{}", now - NOW);
            }
        }
    }
}
