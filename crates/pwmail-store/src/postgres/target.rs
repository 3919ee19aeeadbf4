//! The first step of admin calls with an Idempotency-Key (the others take
//! all their steps in one, `addressed`), in groups: each call's step of its
//! caller's rate and the user its address names, for a whole group in one
//! round trip (`pwmail_charge_callers`, migrations/postgres/0007). One call
//! was a statement of its own, a commit, and a turn on its caller's hot rate
//! row; a group takes its callers' steps together, each key's at the latest
//! of its calls' times.

use std::future::Future;
use std::sync::LazyLock;

use sqlx::Row as _;

use super::group::Grouped;
use super::pool::Pool;
use crate::rows::{self, Columns as _};
use crate::{Addressee, CallerCharge, Rate, Result, UnixMillis, gcra, sql};

/// One admin call's first step.
pub(super) struct Target {
    /// The caller's rate key, as `RateKey` writes it.
    pub caller: String,
    pub rate: Rate,
    /// The address's key (`email_key`).
    pub email_key: String,
    pub now: UnixMillis,
}

pub(super) enum Targets {}

impl Grouped for Targets {
    type Call = Target;
    type Answer = Addressee;
    const MAX: usize = 128;

    /// One rate for the group.
    fn fits(group: &[Target], call: &Target) -> bool {
        group
            .first()
            .is_none_or(|first| gcra::params(&first.rate) == gcra::params(&call.rate))
    }

    fn run(
        pool: &Pool,
        group: &[Target],
    ) -> impl Future<Output = Result<Vec<Result<Addressee>>>> + Send {
        target_group(pool, group)
    }
}

/// The rate steps, and each call's user by its address ($2), in order.
static CHARGE_AND_FIND: LazyLock<&'static str> = LazyLock::new(|| {
    format!(
        "SELECT c.ord, c.retry_after_ms, {}
         FROM pwmail_charge_callers($1, $3, $4, $5) AS c
         JOIN unnest(CAST($2 AS TEXT[])) WITH ORDINALITY AS e(address, ord) ON e.ord = c.ord
         LEFT JOIN users ON users.email_key = e.address
         ORDER BY c.ord",
        sql::USER_COLUMNS
    )
    .leak()
});

async fn target_group(pool: &Pool, group: &[Target]) -> Result<Vec<Result<Addressee>>> {
    let (period, tau) = group
        .first()
        .map(|t| gcra::params(&t.rate))
        .unwrap_or_default();
    let callers: Vec<&str> = group.iter().map(|t| t.caller.as_str()).collect();
    let addresses: Vec<&str> = group.iter().map(|t| t.email_key.as_str()).collect();
    let nows: Vec<i64> = group.iter().map(|t| t.now).collect();
    let mut conn = pool.acquire().await?;
    let found = sqlx::query(*CHARGE_AND_FIND)
        .bind(&callers)
        .bind(&addresses)
        .bind(&nows)
        .bind(period)
        .bind(tau)
        .fetch_all(&mut *conn)
        .await?;
    conn.release();
    Ok(found
        .iter()
        .map(|row| {
            if let Some(retry_after_ms) = row.try_get::<Option<i64>, _>("retry_after_ms")? {
                return Ok(Addressee::Throttled { retry_after_ms });
            }
            let charge = CallerCharge::Charged;
            Ok(match row.opt_int("id")? {
                Some(_) => Addressee::Found {
                    user: rows::user(row)?,
                    charge,
                },
                None => Addressee::Missing { charge },
            })
        })
        .collect())
}
