//! Events for an operator: what waits to be delivered or was given up,
//! and failed ones sent again.

use pwmail_store::{Event, EventKind, EventState, Store, UnixMillis};

use super::AppError;

/// Events in `states` (pending, delivering and failed when empty), oldest
/// first, at most `limit` of each state.
pub async fn list(
    store: &dyn Store,
    states: &[EventState],
    limit: u32,
) -> Result<Vec<Event>, AppError> {
    let states = if states.is_empty() {
        &EventState::ALL[..]
    } else {
        states
    };
    let mut events = Vec::new();
    for state in states {
        events.extend(store.list_events(Some(*state), limit).await?);
    }
    events.sort_by_key(|e| e.id);
    Ok(events)
}

/// Every failed event pending again, with a fresh budget; how many.
pub async fn retry_failed(store: &dyn Store, now: UnixMillis) -> Result<u64, AppError> {
    Ok(store.retry_failed_events(now).await?)
}

/// How many wait in each state.
pub async fn depth(store: &dyn Store) -> Result<Vec<(EventState, u64)>, AppError> {
    Ok(store.event_depth().await?)
}

/// The kinds the database writes now (none: events are off).
pub async fn kinds(store: &dyn Store) -> Result<Vec<EventKind>, AppError> {
    Ok(store.event_kinds().await?)
}

/// Ends the delivery leases a stopped process left (SQLite, under the
/// server lock), so those events go out at once; how many.
pub async fn end_abandoned_leases(store: &dyn Store, now: UnixMillis) -> Result<u64, AppError> {
    Ok(store.end_event_leases(now).await?)
}
