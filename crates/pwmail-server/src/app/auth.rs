//! Who may call the admin operations: the live API token of an enabled admin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use pwmail_store::{Authenticated, TokenHash, UnixMillis};

use crate::app::{App, AppError};
use crate::secrets;

/// Tokens remembered at most; past this the cache starts empty again
/// (admins hold few tokens, so this is only a bound on memory).
const REMEMBERED: usize = 1024;

/// Admins recently authenticated, by the hash of their token, each for at
/// most `ttl`. This is the stated bound on revocation: a revoked token, a
/// disabled admin or a withdrawn admin role stops working within `ttl` on
/// every process (the revocation may come from another replica or the CLI,
/// which this cache never hears of). Only successes are remembered, so a
/// new token works at once; `ttl` zero looks every call up.
pub struct AuthCache {
    ttl: UnixMillis,
    entries: Mutex<HashMap<[u8; 32], (Authenticated, UnixMillis)>>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl: ttl.as_millis().min(i64::MAX as u128) as i64,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, hash: &TokenHash, now: UnixMillis) -> Option<Authenticated> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (caller, at) = entries.get(&hash.0)?;
        // A clock that went back counts as expired too.
        (now >= *at && now - at < self.ttl).then(|| caller.clone())
    }

    fn put(&self, hash: &TokenHash, caller: &Authenticated, now: UnixMillis) {
        if self.ttl == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= REMEMBERED {
            entries.retain(|_, (_, at)| now >= *at && now - *at < self.ttl);
            if entries.len() >= REMEMBERED {
                entries.clear();
            }
        }
        entries.insert(hash.0, (caller.clone(), now));
    }
}

impl App {
    /// Authenticates the caller by its API token and requires the admin
    /// role, looking the token up at most once per `auth_cache_ttl`.
    pub async fn admin(&self, token: &str) -> Result<Authenticated, AppError> {
        let caller = self.authenticate(token).await?;
        require_admin(&caller)?;
        Ok(caller)
    }

    /// The owner of a live API token, admin or not: the issue operations
    /// check the role themselves, so a non-admin's attempt is audited
    /// (`App::issue`). Admins are remembered for `auth_cache_ttl`; others
    /// are looked up on every call, so a promotion works at once.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AppError> {
        if !secrets::is_api_token_shaped(token) {
            return Err(AppError::BadToken);
        }
        let hash = secrets::hash(token);
        let now = self.clock.now();
        if let Some(caller) = self.auth_cache.get(&hash, now) {
            return Ok(caller);
        }
        // Lookup is by SHA-256 of the token: what the database compares is
        // a hash, so timing reveals nothing about the token itself.
        let caller = self
            .store
            .authenticate(&hash)
            .await?
            .ok_or(AppError::BadToken)?;
        if caller.user.is_admin {
            self.auth_cache.put(&hash, &caller, now);
        }
        Ok(caller)
    }
}

/// Only admins may call the admin operations.
pub fn require_admin(caller: &Authenticated) -> Result<(), AppError> {
    if !caller.user.is_admin {
        return Err(AppError::NotAdmin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pwmail_store::{User, UserId};

    fn caller(id: i64) -> Authenticated {
        Authenticated {
            reveal_links: false,
            user: User {
                id: UserId(id),
                email: format!("admin{id}@example.com"),
                name: None,
                is_admin: true,
                disabled: false,
                has_password: true,
                created_at: 0,
                deliverable: true,
                locale: None,
                suppressed: None,
            },
            token_id: id,
        }
    }

    #[test]
    fn a_token_is_remembered_for_less_than_the_ttl_and_no_longer() {
        let cache = AuthCache::new(Duration::from_millis(1000));
        let hash = TokenHash([7; 32]);
        cache.put(&hash, &caller(1), 10_000);
        assert_eq!(cache.get(&hash, 10_000).map(|c| c.token_id), Some(1));
        assert_eq!(cache.get(&hash, 10_999).map(|c| c.token_id), Some(1));
        assert!(cache.get(&hash, 11_000).is_none(), "the bound is exclusive");
        assert!(
            cache.get(&hash, 9_999).is_none(),
            "a clock gone back expires it"
        );
        assert!(cache.get(&TokenHash([8; 32]), 10_000).is_none());
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let cache = AuthCache::new(Duration::ZERO);
        let hash = TokenHash([7; 32]);
        cache.put(&hash, &caller(1), 10_000);
        assert!(cache.get(&hash, 10_000).is_none());
    }

    fn hash_of(i: i64) -> TokenHash {
        let mut bytes = [0; 32];
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        TokenHash(bytes)
    }

    #[test]
    fn a_full_cache_forgets_the_expired_and_keeps_the_live() {
        // A burst of new tokens must not cost every admin their next call's
        // lookup: the sweep drops what expired (aged exactly the ttl
        // included, as `get` reads it) and nothing live.
        let cache = AuthCache::new(Duration::from_millis(100));
        for i in 0..REMEMBERED as i64 {
            let at = if i % 2 == 0 { 900 } else { 950 };
            cache.put(&hash_of(i), &caller(i), at);
        }
        cache.put(&hash_of(-1), &caller(9_999), 1_000);
        assert_eq!(cache.get(&hash_of(1), 1_000).map(|c| c.token_id), Some(1));
        assert!(cache.get(&hash_of(0), 1_000).is_none());
        assert_eq!(
            cache.entries.lock().unwrap().len(),
            REMEMBERED / 2 + 1,
            "the expired half forgotten, the live half and the new one kept"
        );
    }

    #[test]
    fn a_full_cache_keeps_its_size() {
        let cache = AuthCache::new(Duration::from_millis(1000));
        for i in 0..(REMEMBERED as i64 * 3) {
            let mut bytes = [0; 32];
            bytes[..8].copy_from_slice(&i.to_le_bytes());
            cache.put(&TokenHash(bytes), &caller(i), 10_000);
        }
        let entries = cache.entries.lock().unwrap();
        assert!(entries.len() <= REMEMBERED, "{}", entries.len());
    }
}
