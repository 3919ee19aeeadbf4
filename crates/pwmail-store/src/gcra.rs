//! The generic cell rate algorithm, as the rate-limit statements run it.
//!
//! State per key is one number, the theoretical arrival time (`tat`). With
//! `period` = the interval one call uses up and `tau` = `period * (burst -
//! 1)` (the slack a burst may use), a call at `now` is admitted when
//! `max(tat, now) - now <= tau`, and then `tat` becomes `max(tat, now) +
//! period`. A refused call changes nothing and may retry after `tat - tau -
//! now`. `sql::gcra_admit` runs that step atomically in the database; this
//! module holds the arithmetic once, and its tests (on an in-memory `step`)
//! say what it means.

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

    /// One step in memory: the admission, and the state to store (unchanged
    /// when refused). `tat` is `None` for a key with no state.
    fn step(
        tat: Option<UnixMillis>,
        rate: &Rate,
        now: UnixMillis,
    ) -> (Admission, Option<UnixMillis>) {
        let (period, tau) = params(rate);
        let base = tat.map_or(now, |t| t.max(now));
        if base - now <= tau {
            (Admission::Admitted, Some(base + period))
        } else {
            (refused(base, tau, now), tat)
        }
    }

    fn run(rate: &Rate, calls: &[UnixMillis]) -> Vec<Admission> {
        let mut tat = None;
        calls
            .iter()
            .map(|&now| {
                let (admission, next) = step(tat, rate, now);
                tat = next;
                admission
            })
            .collect()
    }

    #[test]
    fn one_per_minute_admits_the_first_and_says_when_the_next_may_come() {
        let rate = Rate {
            period_ms: 60_000,
            burst: 1,
        };
        assert_eq!(
            run(&rate, &[0, 1_000, 60_000]),
            [
                Admission::Admitted,
                Admission::Refused {
                    retry_after_ms: 59_000
                },
                Admission::Admitted
            ]
        );
    }

    #[test]
    fn a_burst_is_spent_at_once_and_refills_one_period_at_a_time() {
        let rate = Rate {
            period_ms: 10,
            burst: 3,
        };
        let at_once = run(&rate, &[0, 0, 0, 0]);
        assert_eq!(&at_once[..3], [Admission::Admitted; 3]);
        assert_eq!(at_once[3], Admission::Refused { retry_after_ms: 10 });
        // After the refill of one period, one more; a refusal charges nothing.
        assert_eq!(
            run(&rate, &[0, 0, 0, 5, 10, 10]),
            [
                Admission::Admitted,
                Admission::Admitted,
                Admission::Admitted,
                Admission::Refused { retry_after_ms: 5 },
                Admission::Admitted,
                Admission::Refused { retry_after_ms: 10 },
            ]
        );
    }

    #[test]
    fn degenerate_rates_still_make_progress() {
        let rate = Rate {
            period_ms: 0,
            burst: 0,
        };
        assert_eq!(params(&rate), (1, 0));
        assert_eq!(run(&rate, &[5, 6]), [Admission::Admitted; 2]);
    }
}
