//! `pwmail purge [--dry-run]`: delete what has aged out, now.

use clap::Args;
use pwmail_store::{Aging, UnixMillis};

use crate::app::retention::{self, PAUSE, Purged};
use crate::cli::args::{DbArgs, RetentionArgs};
use crate::cli::out;

#[derive(Args, Debug)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Count what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn describe(rows: &Purged) -> String {
    let name = |table| match table {
        Aging::Emails => "sent or dead emails",
        Aging::Links => "used, revoked or expired links",
        Aging::Audit => "audit rows",
    };
    Aging::ALL
        .iter()
        .map(|&table| format!("{} {}", rows.get(table), name(table)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn purge(args: &PurgeArgs, db: &DbArgs, now: UnixMillis) -> anyhow::Result<()> {
    let store = db.open_existing().await?;
    let keep = args.retention.to_config();
    let kept = format!(
        "kept {} days, audit rows {} days",
        keep.days, keep.audit_days
    );
    if args.dry_run {
        let due = retention::due(&*store, &keep, now).await?;
        out!("would delete {} ({kept})", describe(&due))?;
        return Ok(());
    }
    let run = retention::purge(&*store, &keep, now, PAUSE, &|_, _| {}).await?;
    out!("deleted {} ({kept})", describe(&run.deleted))?;
    if run.yielded {
        out!("another pwmail process is purging the same database; it deletes the rest")?;
    }
    Ok(())
}
