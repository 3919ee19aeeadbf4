//! Users on PostgreSQL (a module of `crate::postgres`, kept beside the trait).

use super::*;

#[async_trait]
impl Users for PgStore {
    async fn create_user(&self, user: &NewUser, now: UnixMillis) -> Result<User> {
        let insert = sqlx::query(sql::USER_INSERT)
            .bind(user.email.trim())
            .bind(email_key(&user.email))
            .bind(&user.name)
            .bind(user.is_admin)
            .bind(now)
            .bind(user.deliverable)
            .bind(&user.locale);
        let row = self.one(insert).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("a user with email {} already exists", user.email))
            }
            other => other,
        })?;
        rows::user(&row)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let found = self.all(sqlx::query(sql::USERS_ALL)).await?;
        found.iter().map(rows::user).collect()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        let row = self
            .optional(sqlx::query(sql::USER_BY_ID).bind(id.0))
            .await?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = self
            .optional(sqlx::query(sql::USER_BY_EMAIL_KEY).bind(email_key(email)))
            .await?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn count_admins(&self) -> Result<u64> {
        let n: i64 = self.one(sqlx::query(sql::COUNT_ADMINS)).await?.try_get(0)?;
        Ok(n.max(0) as u64)
    }

    async fn disable_user(&self, email: &str, now: UnixMillis) -> Result<User> {
        // Dropped on an error before its commit, the connection goes and
        // the transaction with it.
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(sql::USER_DISABLE)
            .bind(email_key(email))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user with email {email}")))?;
        let user = rows::user(&row)?;
        for revoke in [sql::TOKENS_REVOKE_OF_USER, sql::LINKS_REVOKE_OPEN] {
            sqlx::query(revoke)
                .bind(user.id.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        conn.release();
        Ok(user)
    }

    async fn update_user(
        &self,
        email: &str,
        change: &UserChange,
        now: UnixMillis,
        request_id: &str,
    ) -> Result<(User, User)> {
        let no_user = || StoreError::NotFound(format!("no user with email {email}"));
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(sql::USER_BY_EMAIL_KEY)
            .bind(email_key(email))
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(no_user)?;
        let before = rows::user(&row)?;
        let new_email = change.email.as_ref().map(|(e, _)| e.trim());
        let deliverable = change.email.as_ref().is_none_or(|(_, d)| *d);
        let row = sqlx::query(sql::USER_UPDATE)
            .bind(before.id.0)
            .bind(change.name.is_some())
            .bind(change.name.clone().flatten())
            .bind(new_email)
            .bind(new_email.map(email_key))
            .bind(deliverable)
            .bind(change.locale.is_some())
            .bind(change.locale.clone().flatten())
            .bind(change.admin)
            .bind(change.enabled)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(no_user)?;
        let after = rows::user(&row)?;
        let ops = change.audited(&before);
        let mut revoke = Vec::new();
        if ops
            .iter()
            .any(|op| matches!(*op, "email_changed" | "disabled"))
        {
            revoke.push(sql::LINKS_REVOKE_OPEN);
        }
        if ops.contains(&"disabled") {
            revoke.push(sql::TOKENS_REVOKE_OF_USER);
        }
        for statement in revoke {
            sqlx::query(statement)
                .bind(before.id.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        for op in ops {
            sqlx::query(sql::AUDIT_USER_CHANGE)
                .bind(now)
                .bind(before.id.0)
                .bind(op)
                .bind(request_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        conn.release();
        Ok((before, after))
    }

    async fn delete_user(
        &self,
        email: &str,
        now: UnixMillis,
        request_id: &str,
    ) -> Result<DeletedUser> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        // Locked: an issue for them waits, then finds no user.
        let row = sqlx::query(sql::USER_LOCK_BY_EMAIL_KEY)
            .bind(email_key(email))
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user with email {email}")))?;
        let user = rows::user(&row)?;
        let id = user.id.0;
        let mut changed = [0u64; 5];
        for (n, statement) in changed.iter_mut().zip([
            sql::USER_DELETE_KEYS,
            sql::USER_DELETE_UNSENT,
            sql::USER_DETACH_SETTLED,
            sql::USER_DELETE_LINKS,
            sql::USER_DELETE_TOKENS,
        ]) {
            *n = sqlx::query(statement)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        let [_keys, unsent_emails, _detached, links, tokens] = changed;
        // As a refusal's row keeps an address: by its key, which
        // `audit list --user ADDRESS` looks for.
        let address = email_key(&user.email);
        let mut audit_rows = 0;
        for statement in [
            sql::AUDIT_KEEP_TARGET_ADDRESS,
            sql::AUDIT_KEEP_ACTOR_ADDRESS,
        ] {
            let done = sqlx::query(statement)
                .bind(id)
                .bind(&address)
                .execute(&mut *tx)
                .await?;
            audit_rows += done.rows_affected();
        }
        sqlx::query(sql::USER_DELETE)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::AUDIT_USER_DELETED)
            .bind(now)
            .bind(id)
            .bind(&address)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conn.release();
        Ok(DeletedUser {
            user,
            tokens,
            links,
            unsent_emails,
            audit_rows,
        })
    }

    async fn unsuppress_user(
        &self,
        email: &str,
        now: UnixMillis,
        request_id: &str,
    ) -> Result<User> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(sql::USER_UNSUPPRESS)
            .bind(email_key(email))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("no suppressed user with email {email}"))
            })?;
        let user = rows::user(&row)?;
        sqlx::query(sql::AUDIT_UNSUPPRESSED)
            .bind(now)
            .bind(user.id.0)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conn.release();
        Ok(user)
    }

    async fn password_hash(&self, user: UserId) -> Result<Option<String>> {
        let row = self
            .optional(sqlx::query(sql::PASSWORD_HASH).bind(user.0))
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.flatten())
    }

    async fn unchecked_addresses(&self) -> Result<Vec<(UserId, String)>> {
        let found = self.all(sqlx::query(sql::USERS_UNCHECKED)).await?;
        found
            .iter()
            .map(|row| Ok((UserId(row.int("id")?), row.text("email")?)))
            .collect()
    }

    async fn set_deliverable(&self, user: UserId, deliverable: bool) -> Result<()> {
        self.execute(
            sqlx::query(sql::USER_SET_DELIVERABLE)
                .bind(user.0)
                .bind(deliverable),
        )
        .await
        .map(drop)
    }

    async fn create_api_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        label: &str,
        reveal_links: bool,
        now: UnixMillis,
    ) -> Result<ApiTokenInfo> {
        let row = self
            .one(
                sqlx::query(sql::TOKEN_INSERT)
                    .bind(user.0)
                    .bind(&hash.0[..])
                    .bind(label)
                    .bind(now)
                    .bind(reveal_links),
            )
            .await?;
        rows::token(&row)
    }

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>> {
        let found = self
            .all(sqlx::query(sql::TOKENS_OF_USER).bind(user.0))
            .await?;
        found.iter().map(rows::token).collect()
    }

    async fn revoke_api_token(&self, id: i64, now: UnixMillis) -> Result<bool> {
        let done = self
            .execute(sqlx::query(sql::TOKEN_REVOKE).bind(id).bind(now))
            .await?;
        Ok(done == 1)
    }

    async fn authenticate(&self, hash: &TokenHash) -> Result<Option<Authenticated>> {
        let row = self
            .optional(sqlx::query(sql::AUTHENTICATE).bind(&hash.0[..]))
            .await?;
        row.as_ref().map(rows::authenticated).transpose()
    }
}
