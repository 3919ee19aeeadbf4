//! Users on SQLite (a module of `crate::sqlite`, kept beside the trait).

use super::*;

#[async_trait]
impl Users for SqliteStore {
    async fn create_user(&self, user: &NewUser, now: UnixMillis) -> Result<User> {
        let user = user.clone();
        self.writer
            .write_statement(move |c| {
                let row = one(
                    c,
                    sql::USER_INSERT,
                    params![
                        user.email.trim(),
                        email_key(&user.email),
                        user.name,
                        user.is_admin,
                        now,
                        user.deliverable,
                        user.locale
                    ],
                    |row| rows::user(row),
                );
                match row {
                    Ok(row) => row.ok_or_else(|| StoreError::Corrupt("no user row".into())),
                    Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(format!(
                        "a user with email {} already exists",
                        user.email
                    ))),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.scan(|c| all(c, sql::USERS_ALL, [], |row| rows::user(row)))
            .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.read(|c| one(c, sql::USER_BY_ID, [id.0], |row| rows::user(row)))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let key = email_key(email);
        self.read(|c| one(c, sql::USER_BY_EMAIL_KEY, [key], |row| rows::user(row)))
    }

    async fn count_admins(&self) -> Result<u64> {
        let n: Option<i64> = self.scan(|c| scalar(c, sql::COUNT_ADMINS, [])).await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn disable_user(&self, email: &str, now: UnixMillis) -> Result<User> {
        let email = email.to_string();
        self.writer
            .write(move |sp| disable_in(sp, &email, now))
            .await
    }

    async fn update_user(
        &self,
        email: &str,
        change: &UserChange,
        now: UnixMillis,
        request_id: &str,
    ) -> Result<(User, User)> {
        let (email, change, request_id) =
            (email.to_string(), change.clone(), request_id.to_string());
        self.writer
            .write(move |c| update_in(c, &email, &change, now, &request_id))
            .await
    }

    async fn delete_user(
        &self,
        email: &str,
        now: UnixMillis,
        request_id: &str,
    ) -> Result<DeletedUser> {
        let (email, request_id) = (email.to_string(), request_id.to_string());
        self.writer
            .write(move |c| {
                let user = one(
                    c,
                    sql::USER_BY_EMAIL_KEY,
                    params![email_key(&email)],
                    |row| rows::user(row),
                )?
                .ok_or_else(|| StoreError::NotFound(format!("no user with email {email}")))?;
                let id = user.id.0;
                exec(c, sql::USER_DELETE_KEYS, [id])?;
                let unsent = exec(c, sql::USER_DELETE_UNSENT, [id])?;
                exec(c, sql::USER_DETACH_SETTLED, [id])?;
                let links = exec(c, sql::USER_DELETE_LINKS, [id])?;
                let tokens = exec(c, sql::USER_DELETE_TOKENS, [id])?;
                // As a refusal's row keeps an address: by its key, which
                // `audit list --user ADDRESS` looks for.
                let address = email_key(&user.email);
                let about = exec(c, sql::AUDIT_KEEP_TARGET_ADDRESS, params![id, address])?;
                let by = exec(c, sql::AUDIT_KEEP_ACTOR_ADDRESS, params![id, address])?;
                exec(c, sql::USER_DELETE, [id])?;
                exec(
                    c,
                    sql::AUDIT_USER_DELETED,
                    params![now, id, address, request_id],
                )?;
                Ok(DeletedUser {
                    user,
                    tokens: tokens as u64,
                    links: links as u64,
                    unsent_emails: unsent as u64,
                    audit_rows: (about + by) as u64,
                })
            })
            .await
    }

    async fn unsuppress_user(
        &self,
        email: &str,
        now: UnixMillis,
        request_id: &str,
    ) -> Result<User> {
        let (email, request_id) = (email.to_string(), request_id.to_string());
        self.writer
            .write(move |c| {
                let user = one(
                    c,
                    sql::USER_UNSUPPRESS,
                    params![email_key(&email), now],
                    |row| rows::user(row),
                )?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("no suppressed user with email {email}"))
                })?;
                exec(
                    c,
                    sql::AUDIT_UNSUPPRESSED,
                    params![now, user.id.0, request_id],
                )?;
                Ok(user)
            })
            .await
    }

    async fn password_hash(&self, user: UserId) -> Result<Option<String>> {
        let hash: Option<Option<String>> =
            self.read(|c| scalar(c, sql::PASSWORD_HASH, [user.0]))?;
        Ok(hash.flatten())
    }

    async fn unchecked_addresses(&self) -> Result<Vec<(UserId, String)>> {
        self.read(|c| {
            all(c, sql::USERS_UNCHECKED, [], |row| {
                Ok((UserId(row.int("id")?), row.text("email")?))
            })
        })
    }

    async fn set_deliverable(&self, user: UserId, deliverable: bool) -> Result<()> {
        self.writer
            .write_statement(move |c| {
                exec(c, sql::USER_SET_DELIVERABLE, params![user.0, deliverable]).map(drop)
            })
            .await
    }

    async fn create_api_token(
        &self,
        user: UserId,
        hash: &TokenHash,
        label: &str,
        reveal_links: bool,
        now: UnixMillis,
    ) -> Result<ApiTokenInfo> {
        let (hash, label) = (hash.0, label.to_string());
        self.writer
            .write_statement(move |c| {
                one(
                    c,
                    sql::TOKEN_INSERT,
                    params![user.0, &hash[..], label, now, reveal_links],
                    |row| rows::token(row),
                )?
                .ok_or_else(|| StoreError::Corrupt("no token row".into()))
            })
            .await
    }

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>> {
        self.read(|c| all(c, sql::TOKENS_OF_USER, [user.0], |row| rows::token(row)))
    }

    async fn revoke_api_token(&self, id: i64, now: UnixMillis) -> Result<bool> {
        self.writer
            .write_statement(move |c| Ok(exec(c, sql::TOKEN_REVOKE, params![id, now])? == 1))
            .await
    }

    async fn authenticate(&self, hash: &TokenHash) -> Result<Option<Authenticated>> {
        self.read(|c| {
            one(c, sql::AUTHENTICATE, [&hash.0[..]], |row| {
                rows::authenticated(row)
            })
        })
    }
}

fn disable_in(c: &Connection, email: &str, now: UnixMillis) -> Result<User> {
    let user = one(
        c,
        sql::USER_DISABLE,
        params![email_key(email), now],
        |row| rows::user(row),
    )?
    .ok_or_else(|| StoreError::NotFound(format!("no user with email {email}")))?;
    exec(c, sql::TOKENS_REVOKE_OF_USER, params![user.id.0, now])?;
    revoke_open_links(c, user.id, now)?;
    Ok(user)
}

/// `Users::update_user`, in the writer's savepoint.
fn update_in(
    c: &Connection,
    email: &str,
    change: &UserChange,
    now: UnixMillis,
    request_id: &str,
) -> Result<(User, User)> {
    let no_user = || StoreError::NotFound(format!("no user with email {email}"));
    let before = one(
        c,
        sql::USER_BY_EMAIL_KEY,
        params![email_key(email)],
        |row| rows::user(row),
    )?
    .ok_or_else(no_user)?;
    let new_email = change.email.as_ref().map(|(e, _)| e.trim());
    let deliverable = change.email.as_ref().is_none_or(|(_, d)| *d);
    let after = one(
        c,
        sql::USER_UPDATE,
        params![
            before.id.0,
            change.name.is_some(),
            change.name.clone().flatten(),
            new_email,
            new_email.map(email_key),
            deliverable,
            change.locale.is_some(),
            change.locale.clone().flatten(),
            change.admin,
            change.enabled,
            now
        ],
        |row| rows::user(row),
    )?
    .ok_or_else(no_user)?;
    let ops = change.audited(&before);
    if ops
        .iter()
        .any(|op| matches!(*op, "email_changed" | "disabled"))
    {
        revoke_open_links(c, before.id, now)?;
    }
    if ops.contains(&"disabled") {
        exec(c, sql::TOKENS_REVOKE_OF_USER, params![before.id.0, now])?;
    }
    for op in ops {
        exec(
            c,
            sql::AUDIT_USER_CHANGE,
            params![now, before.id.0, op, request_id],
        )?;
    }
    Ok((before, after))
}
