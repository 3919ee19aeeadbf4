//! Whether the database has room to write, as the last writes found it:
//! what readiness reports while a disk is full.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Result, Store, StoreError, UnixMillis};

/// Set by a write that failed for lack of space, cleared by the next write
/// that succeeds. While set, [`SpaceWatch::writable`] tries a write of its
/// own at most every [`SpaceWatch::PROBE_EVERY`], so a server nobody calls
/// still becomes ready once space is freed; while clear it writes nothing.
#[derive(Debug, Default)]
pub struct SpaceWatch {
    lacking: AtomicBool,
    last_probe: Mutex<Option<Instant>>,
    probes: AtomicU64,
}

impl SpaceWatch {
    pub const PROBE_EVERY: Duration = Duration::from_secs(5);

    /// Notes the result of a write whose answer says whether it stored
    /// something (`stored`): a transaction that changed nothing commits even
    /// on a full disk, so only one that stored something shows there is
    /// space. Hands the result back.
    pub fn noted<T>(&self, result: Result<T>, stored: impl FnOnce(&T) -> bool) -> Result<T> {
        match &result {
            Ok(answer) if stored(answer) => self.wrote(),
            Ok(_) => {}
            Err(e) => self.failed(e),
        }
        result
    }

    /// A write committed.
    pub fn wrote(&self) {
        if self.lacking.load(Ordering::Relaxed) {
            self.lacking.store(false, Ordering::Relaxed);
        }
    }

    /// A write failed: the database lacks space if that is why.
    pub fn failed(&self, e: &StoreError) {
        if e.is_out_of_space() {
            self.lacking.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the last write that settled it found no space.
    pub fn is_lacking(&self) -> bool {
        self.lacking.load(Ordering::Relaxed)
    }

    /// Probe writes made so far.
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Whether writes can be stored: true unless a write failed for lack of
    /// space and none has succeeded since; then a probe write decides, at
    /// most every [`Self::PROBE_EVERY`] (between probes the answer stays
    /// false). An error other than lack of space from the probe is returned.
    pub async fn writable(&self, store: &dyn Store, now: UnixMillis) -> Result<bool> {
        if !self.is_lacking() {
            return Ok(true);
        }
        {
            let mut last = self.last_probe.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < Self::PROBE_EVERY) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        self.probes.fetch_add(1, Ordering::Relaxed);
        match self.noted(store.probe_space(now).await, |_| true) {
            Ok(()) => Ok(true),
            Err(e) if e.is_out_of_space() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Logs that the database has no space left, at most once a minute for the
/// whole process, with the number of failures since the last line: every
/// failed call, batch or checkpoint logging its own would fill the disk
/// that has just run out (when the log shares it) and bury everything else.
pub fn warn_no_space(e: &StoreError) {
    static LAST_WARNED: AtomicU64 = AtomicU64::new(0);
    static SINCE: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_WARNED.load(Ordering::Relaxed);
    let failures = SINCE.fetch_add(1, Ordering::Relaxed) + 1;
    if now >= last + 60
        && LAST_WARNED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        SINCE.fetch_sub(failures, Ordering::Relaxed);
        tracing::warn!(
            error = %e,
            failures,
            "the database has no space left: writes fail until space is freed (calls are \
             answered 503, /readyz is not ready); this warning repeats at most once a minute"
        );
    }
}
