//! The generic cell rate algorithm every rate limit uses: `burst` calls at
//! once, refilled one per `period_ms`.
//!
//! The state per key is one number, the theoretical arrival time (`tat`);
//! a key with no state is a full bucket. With `tau = period * (burst - 1)`,
//! a call at `now` is admitted when `max(tat, now) - now <= tau`, and `tat`
//! becomes `max(tat, now) + period`. A refused call changes nothing and may
//! come again after `tat - tau - now` (at least 1 ms).

use crate::Millis;

/// A limit: `burst` calls at once, one more per `period_ms`. A zero period
/// or burst is read as 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub period_ms: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    Refused { retry_after_ms: Millis },
}

/// One call at `now` on a key holding `tat` (`None`: no state): the
/// answer, and the state to keep (unchanged when refused).
pub fn step(tat: Option<Millis>, rate: &Rate, now: Millis) -> (Admission, Option<Millis>) {
    let period = rate.period_ms.max(1);
    let tau = period * (i64::from(rate.burst.max(1)) - 1);
    let base = tat.map_or(now, |t| t.max(now));
    if base - now <= tau {
        (Admission::Admitted, Some(base + period))
    } else {
        let retry_after_ms = (base - tau - now).max(1);
        (Admission::Refused { retry_after_ms }, tat)
    }
}

/// Each call's answer, one key, calls at the given times.
pub fn run(rate: &Rate, calls: &[Millis]) -> Vec<Admission> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // After the refill of one period, one more; a refusal charges nothing.
        assert_eq!(
            run(&rate, &[0, 0, 0, 0, 5, 10, 10]),
            [
                Admission::Admitted,
                Admission::Admitted,
                Admission::Admitted,
                Admission::Refused { retry_after_ms: 10 },
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
        assert_eq!(run(&rate, &[5, 5, 6]), {
            use Admission::*;
            [Admitted, Refused { retry_after_ms: 1 }, Admitted]
        });
    }
}
