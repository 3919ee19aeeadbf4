//! `pwmail user …` and `pwmail token …`: print what `app::users` did.

use crate::cli::out;
use std::path::PathBuf;

use clap::Subcommand;

use crate::app::users;
use crate::cli::args::DbArgs;
use crate::cli::{Failed, emails_csv};
use crate::clock::format_utc;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user (no password yet: they set one through an emailed link).
    Add {
        /// The user's email address (unique, compared case-insensitively).
        email: String,
        /// Make the user an admin: admins' API tokens may call the API.
        #[arg(long)]
        admin: bool,
        /// Display name used in the emails' greeting.
        #[arg(long)]
        name: Option<String>,
        /// The user's language (BCP 47: en, de, fr, es, pt-BR, ja, ar, or a tag near one);
        /// default: the server's --default-locale.
        #[arg(long)]
        locale: Option<String>,
    },
    /// Add every address in the `email` column of a CSV file (header row
    /// required; optional `name` and `locale` columns give display names and
    /// languages); addresses already present are left as they are.
    Import {
        /// CSV file with a header row and an `email` column.
        file: PathBuf,
    },
    /// List users.
    List,
    /// Read a password from stdin; exit 0 if it is the user's, 1 if not (2 on errors).
    CheckPassword {
        /// The user's email address.
        email: String,
    },
    /// Disable a user: their tokens and open links are revoked.
    Disable {
        /// The user's email address.
        email: String,
    },
    /// Change a user: name, address (their open links are revoked), language, admin role,
    /// enabled or disabled (disabling revokes their tokens and open links). Audited.
    Update {
        /// The user's current email address.
        email: String,
        /// A new display name.
        #[arg(long, conflicts_with = "no_name")]
        name: Option<String>,
        /// Remove the display name.
        #[arg(long)]
        no_name: bool,
        /// A new email address.
        #[arg(long = "email", value_name = "NEW")]
        new_email: Option<String>,
        /// A new language (BCP 47); `default` for the server's --default-locale.
        #[arg(long)]
        locale: Option<String>,
        /// Make the user an admin.
        #[arg(long, conflicts_with = "no_admin")]
        admin: bool,
        /// Withdraw the admin role.
        #[arg(long)]
        no_admin: bool,
        /// Enable a disabled user.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Disable the user (as `user disable`).
        #[arg(long)]
        disable: bool,
    },
    /// Lift a suppression: an email to the address failed for good, so pwmail refused to
    /// email it again; once the address can receive mail, this lets calls through again.
    Unsuppress {
        /// The user's email address.
        email: String,
    },
    /// Delete a user with their API tokens, links and unsent emails; their audit rows stay,
    /// keeping the address.
    Delete {
        /// The user's email address.
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for a user; prints only the token.
    Create {
        /// Email address of the admin the token acts for.
        email: String,
        /// A note shown by `token list` (which system uses the token).
        #[arg(long, default_value = "cli")]
        label: String,
        /// Let the token ask for a link in the API answer (`deliver: "response"`) instead of
        /// an email: whoever holds it can act as any user it resets. Every such call is audited.
        #[arg(long)]
        reveal_links: bool,
    },
    /// List a user's API tokens (ids, labels, state; never the tokens).
    List {
        /// The user's email address.
        email: String,
    },
    /// Revoke an API token by id (see `pwmail token list`).
    Revoke {
        /// The token's id, from `pwmail token list`.
        id: i64,
    },
}

pub async fn user(cmd: &UserCommand, db: &DbArgs, now: i64) -> anyhow::Result<()> {
    // A CSV that does not read fails before the database is opened.
    let rows: Vec<users::UserDraft> = match cmd {
        UserCommand::Import { file } => {
            let rows = emails_csv::read(file)?;
            // Every row checked first, naming its line, before any is added.
            let mut drafts = Vec::with_capacity(rows.len());
            for row in rows {
                let draft = users::UserDraft {
                    email: row.email,
                    name: row.name,
                    locale: row.locale,
                };
                draft
                    .checked(false)
                    .map_err(|e| anyhow::anyhow!("{}: line {}: {e}", file.display(), row.line))?;
                drafts.push(draft);
            }
            drafts
        }
        _ => Vec::new(),
    };
    let store = db.open_existing().await?;
    match cmd {
        UserCommand::Add {
            email,
            admin,
            name,
            locale,
        } => {
            let draft = users::UserDraft {
                email: email.clone(),
                name: name.clone(),
                locale: locale.clone(),
            };
            let user = users::add(&*store, &draft, *admin, now).await?;
            out!(
                "added user {} (id {}{})",
                user.email,
                user.id,
                if user.is_admin { ", admin" } else { "" }
            )?;
        }
        UserCommand::Import { .. } => {
            let started = std::time::Instant::now();
            let imported = users::import_users(&*store, &rows, now).await?;
            out!(
                "imported {} user(s), {} already present, in {:.1} s",
                imported.added,
                imported.present,
                started.elapsed().as_secs_f64()
            )?;
        }
        UserCommand::List => {
            out!(
                "{:>6}  {:<40} {:<6} {:<10} {:<8} {:<8} created",
                "id",
                "email",
                "admin",
                "state",
                "password",
                "locale"
            )?;
            for u in users::list(&*store).await? {
                out!(
                    "{:>6}  {:<40} {:<6} {:<10} {:<8} {:<8} {}",
                    u.id,
                    u.email,
                    if u.is_admin { "yes" } else { "no" },
                    if u.disabled {
                        "disabled"
                    } else if u.suppressed.is_some() {
                        "suppressed"
                    } else {
                        "active"
                    },
                    if u.has_password { "set" } else { "none" },
                    u.locale.as_deref().unwrap_or("-"),
                    format_utc(u.created_at)
                )?;
            }
        }
        UserCommand::CheckPassword { email } => {
            let user = users::find(&*store, email).await?;
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if !users::check_password(&*store, &user, password).await? {
                return Err(Failed::Answer("the password does not match".into()).into());
            }
            out!("the password matches")?;
        }
        UserCommand::Disable { email } => {
            let user = users::disable_user(&*store, email, now).await?;
            out!(
                "disabled user {}; their API tokens and open links are revoked",
                user.email
            )?;
        }
        UserCommand::Update {
            email,
            name,
            no_name,
            new_email,
            locale,
            admin,
            no_admin,
            enable,
            disable,
        } => {
            let flag = |on: bool, off: bool| match (on, off) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let update = users::UserUpdate {
                name: if *no_name {
                    Some(None)
                } else {
                    name.clone().map(Some)
                },
                email: new_email.clone(),
                locale: locale
                    .as_deref()
                    .map(|tag| (tag != "default").then(|| tag.to_string())),
                admin: flag(*admin, *no_admin),
                enabled: flag(*enable, *disable),
            };
            let request_id = format!("cli-{}", uuid::Uuid::now_v7());
            let (before, after) = users::update(&*store, email, &update, now, &request_id).await?;
            let mut changed = Vec::new();
            if before.name != after.name {
                changed.push(match &after.name {
                    Some(name) => format!("name {name:?}"),
                    None => "no name".into(),
                });
            }
            if before.email != after.email {
                changed.push(format!(
                    "address {} (its open links are revoked)",
                    after.email
                ));
            }
            if before.locale != after.locale {
                changed.push(format!(
                    "language {}",
                    after.locale.as_deref().unwrap_or("the server's default")
                ));
            }
            if before.is_admin != after.is_admin {
                changed.push(
                    if after.is_admin {
                        "admin"
                    } else {
                        "not an admin"
                    }
                    .into(),
                );
            }
            if before.disabled != after.disabled {
                changed.push(
                    if after.disabled {
                        "disabled (tokens and open links revoked)"
                    } else {
                        "enabled"
                    }
                    .into(),
                );
            }
            if changed.is_empty() {
                out!("user {} unchanged: it already was as asked", before.email)?;
            } else {
                out!("updated user {}: {}", before.email, changed.join(", "))?;
            }
        }
        UserCommand::Delete { email } => {
            let request_id = format!("cli-{}", uuid::Uuid::now_v7());
            let d = users::delete(&*store, email, now, &request_id).await?;
            let n = |count: u64, one: &str, many: &str| {
                format!("{count} {}", if count == 1 { one } else { many })
            };
            out!(
                "deleted user {} (id {}) with {}, {} and {}; their sent emails stay without \
                 them, and {} about or by them keep the address",
                d.user.email,
                d.user.id.0,
                n(d.tokens, "API token", "API tokens"),
                n(d.links, "link", "links"),
                n(d.unsent_emails, "unsent email", "unsent emails"),
                n(d.audit_rows, "audit row", "audit rows"),
            )?;
        }
        UserCommand::Unsuppress { email } => {
            let request_id = format!("cli-{}", uuid::Uuid::now_v7());
            let lifted = users::unsuppress(&*store, email, now, &request_id).await?;
            out!(
                "lifted the suppression of {email} (suppressed since {}: {}); calls for it \
                 are accepted again",
                format_utc(lifted.at),
                lifted.reason
            )?;
        }
    }
    Ok(())
}

pub async fn token(cmd: &TokenCommand, db: &DbArgs, now: i64) -> anyhow::Result<()> {
    let store = db.open_existing().await?;
    match cmd {
        TokenCommand::Create {
            email,
            label,
            reveal_links,
        } => {
            let secret = users::create_token(&*store, email, label, *reveal_links, now).await?;
            out!("{}", secret.expose())?;
        }
        TokenCommand::List { email } => {
            out!(
                "{:>6}  {:<20} {:<8} {:<12} created",
                "id",
                "label",
                "state",
                "rights"
            )?;
            for t in users::list_tokens(&*store, email).await? {
                out!(
                    "{:>6}  {:<20} {:<8} {:<12} {}",
                    t.id,
                    t.label,
                    if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "live"
                    },
                    if t.reveal_links { "reveal-links" } else { "-" },
                    format_utc(t.created_at)
                )?;
            }
        }
        TokenCommand::Revoke { id } => {
            users::revoke_token(&*store, *id, now).await?;
            out!("revoked API token {id}")?;
        }
    }
    Ok(())
}
