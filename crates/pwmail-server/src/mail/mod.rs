//! Email: templates (compiled in, overridable from a directory at start-up),
//! the MIME message built from a queued row, and the transports that carry
//! it (`.eml` files, SMTP, the delivery hook), signed with DKIM when asked.

pub mod message;
pub mod smtp_pool;
pub mod transport;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use minijinja::{Environment, context};
use pwmail_i18n::{Catalogs, Lang, SHIPPED};
use pwmail_store::{
    Content, LinkOptions, LinkPurpose, MessageKind, NewMessage, OutboxMessage, UnixMillis, UserId,
};

use crate::app::AppError;
use crate::config::ServerConfig;
pub use message::{Built, build_message};

/// Each kind has `<kind>.subject.txt`, `<kind>.txt` and `<kind>.html`.
macro_rules! builtin_templates {
    ($($kind:literal),* $(,)?) => {
        &[$(
            (concat!($kind, ".subject.txt"), include_str!(concat!("../../templates/", $kind, ".subject.txt"))),
            (concat!($kind, ".txt"), include_str!(concat!("../../templates/", $kind, ".txt"))),
            (concat!($kind, ".html"), include_str!(concat!("../../templates/", $kind, ".html"))),
        )*]
    };
}

const BUILTIN: &[(&str, &str)] = builtin_templates!(
    "send_password_email",
    "reset_password_by_admin",
    "password_changed"
);

// The causes are part of each message and not also a `source` (thiserror
// takes a field of that name as one), so an error chain (`{:#}`) names a
// template problem once.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("template {name}: {error}")]
    Template {
        name: String,
        error: minijinja::Error,
    },
    #[error("reading template override {path}: {error}")]
    Override { path: String, error: std::io::Error },
    #[error("--template-dir {path}: {problem}")]
    OverrideDir { path: String, problem: String },
    #[error("building the message: {0}")]
    Build(String),
    /// A link email's template failed when it was sent: the template's name
    /// and line, never the link.
    #[error("{0}")]
    LinkEmail(String),
}

/// What a link email says, besides the link itself.
pub struct LinkEmail<'a> {
    pub purpose: LinkPurpose,
    /// The link's language (`Catalogs::for_link`).
    pub lang: Lang,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub link: &'a str,
    pub lifetime: Duration,
    pub expires_at: UnixMillis,
    /// What the call asked of its link: the templates see it whole, as
    /// `options`, so a new per-call field needs no change here.
    pub options: &'a LinkOptions,
}

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What the rules need from this layer (`app::Mailer`): Message-IDs in
/// the sender's domain and the "password changed" notice, from the
/// templates the dispatcher also writes link emails with.
pub struct Mailer {
    renderer: Arc<Renderer>,
    /// The domain of `--mail-from`, for Message-IDs.
    domain: String,
}

impl Mailer {
    pub fn new(renderer: Arc<Renderer>, config: &ServerConfig) -> Mailer {
        Mailer {
            renderer,
            domain: config.mail_domain(),
        }
    }
}

impl crate::app::Mailer for Mailer {
    fn message_id(&self) -> String {
        message_id(&self.domain)
    }

    fn password_changed(
        &self,
        email: &str,
        name: Option<&str>,
        changed_at: UnixMillis,
        lang: Lang,
    ) -> Result<NewMessage, AppError> {
        let notice = self
            .renderer
            .render_password_changed(email, name, changed_at, lang)
            .map_err(|e| AppError::Letter(Box::new(e)))?;
        Ok(queued(
            MessageKind::PasswordChanged,
            email,
            &self.domain,
            notice.into_content(),
        ))
    }
}

/// The message to queue, with a fresh [`message_id`].
pub fn queued(kind: MessageKind, recipient: &str, domain: &str, content: Content) -> NewMessage {
    NewMessage {
        message_id: message_id(domain),
        kind,
        recipient: recipient.to_string(),
        content,
    }
}

/// A fresh Message-ID (`uuid@domain`) that every delivery attempt will
/// reuse. A time-ordered UUID (v7): each new one lands at the end of the
/// outbox's unique Message-ID index, where a random one would dirty a page
/// of its own in every commit.
pub fn message_id(domain: &str) -> String {
    format!("{}@{domain}", uuid::Uuid::now_v7())
}

impl Rendered {
    /// Stored as it is (a notice: no link).
    pub fn into_content(self) -> Content {
        Content::Rendered {
            subject: self.subject,
            text: self.text,
            html: self.html,
        }
    }
}

/// A leased message in words, as a transport sends it: a link email
/// rendered now, anything else as it was stored.
pub struct Letter<'a> {
    pub message_id: &'a str,
    pub recipient: &'a str,
    pub subject: Cow<'a, str>,
    pub text: Cow<'a, str>,
    pub html: Cow<'a, str>,
    /// The Date header: when it was queued, the same on every attempt.
    pub date: UnixMillis,
    /// Its kind's name (`MessageKind::as_str`, or `test` for `mail test`).
    pub kind: &'static str,
    /// The language it is written in.
    pub lang: Lang,
    /// Whom it is for, and their name now (a delivery hook says so).
    pub user_id: Option<UserId>,
    pub user_name: Option<&'a str>,
    /// A link email's link and when it expires. The link is here so a
    /// transport can keep it out of what it records: a receiver's answer
    /// that echoes the message must not put the link in the outbox row.
    pub link: Option<&'a str>,
    pub link_expires_at: Option<UnixMillis>,
}

impl Letter<'_> {
    /// `text` with the link (and its token alone) written `[link]`.
    pub fn redact(&self, text: &str) -> String {
        let Some(link) = self.link else {
            return text.to_string();
        };
        let token = link.rsplit('/').next().filter(|t| t.len() >= 16);
        let text = text.replace(link, "[link]");
        match token {
            Some(token) => text.replace(token, "[link]"),
            None => text,
        }
    }
}

pub struct Renderer {
    env: Environment<'static>,
    catalogs: Arc<Catalogs>,
    product: String,
    support: Option<String>,
}

impl Renderer {
    /// The templates as `config` sets them: its product name, support
    /// contact, catalogs and override directory.
    pub fn for_config(config: &ServerConfig) -> Result<Self, MailError> {
        Renderer::new(
            &config.product_name,
            config.support_contact.as_deref(),
            config.template_dir.as_deref(),
            config.catalogs.clone(),
        )
    }

    /// Built-in templates, each replaced by a file of the same name in
    /// `override_dir` when there is one, and for one language by the file
    /// of that name in `override_dir/<locale>/` (`de/send_password_email.txt`).
    pub fn new(
        product: &str,
        support: Option<&str>,
        override_dir: Option<&Path>,
        catalogs: Arc<Catalogs>,
    ) -> Result<Self, MailError> {
        if let Some(dir) = override_dir {
            check_override_dir(dir)?;
        }
        let mut env = Environment::new();
        // A misspelt variable is an error, not an empty string in every email.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        pwmail_i18n::templates::register(&mut env, catalogs.clone());
        let read = |path: &Path| {
            crate::files::read_small_text(path).map_err(|error| MailError::Override {
                path: path.display().to_string(),
                error,
            })
        };
        for (name, builtin) in BUILTIN {
            let mut sources = vec![(name.to_string(), builtin.to_string())];
            if let Some(dir) = override_dir {
                if dir.join(name).exists() {
                    sources[0].1 = read(&dir.join(name))?;
                }
                for tag in SHIPPED {
                    let path = dir.join(tag).join(name);
                    if path.exists() {
                        sources.push((format!("{tag}/{name}"), read(&path)?));
                    }
                }
            }
            for (name, source) in sources {
                env.add_template_owned(name.clone(), source)
                    .map_err(|error| MailError::Template { name, error })?;
            }
        }
        let renderer = Renderer {
            env,
            catalogs,
            product: product.to_string(),
            support: support.map(str::to_string),
        };
        renderer.trial()?;
        Ok(renderer)
    }

    /// Renders every message once with sample values, so that a template
    /// that would fail (an unknown variable, a bad filter) fails at start,
    /// naming its file and line, instead of at the first send.
    fn trial(&self) -> Result<(), MailError> {
        for lang in Lang::all() {
            for purpose in [
                LinkPurpose::SendPasswordEmail,
                LinkPurpose::ResetPasswordByAdmin,
            ] {
                for name in [None, Some("Sample User")] {
                    self.render_link_email(&LinkEmail {
                        purpose,
                        lang,
                        email: "user@example.com",
                        name,
                        link: "https://pwmail.example/reset/SAMPLE",
                        lifetime: Duration::from_secs(86_400),
                        expires_at: 0,
                        options: &LinkOptions::default(),
                    })?;
                    self.render_password_changed("user@example.com", name, 0, lang)?;
                }
            }
        }
        Ok(())
    }

    pub fn render_link_email(&self, email: &LinkEmail<'_>) -> Result<Rendered, MailError> {
        let lang = email.lang;
        let ctx = context! {
            product => &self.product,
            support => &self.support,
            email => email.email,
            name => email.name,
            link => email.link,
            expires_in => self.catalogs.duration(lang, email.lifetime),
            expires_at => self.catalogs.datetime(lang, email.expires_at),
            options => minijinja::value::Serde(email.options),
        };
        self.render(MessageKind::from(email.purpose), lang, ctx)
    }

    /// The words of a leased message. A link email's templates run now:
    /// its link and the user's name come from the row, and its lifetime is
    /// what it was when the link was issued (at the row's `created_at`). A
    /// template that fails for this message fails this message only (the
    /// dispatcher gives it up), as it would have failed the API call.
    pub fn letter<'a>(&self, leased: &'a OutboxMessage) -> Result<Letter<'a>, MailError> {
        let m = &leased.message;
        let mut lang = self.catalogs.for_link(None, leased.user_locale.as_deref());
        let mut link_of = None;
        let (subject, text, html) = match &m.content {
            Content::Rendered {
                subject,
                text,
                html,
            } => (
                Cow::Borrowed(subject.as_str()),
                Cow::Borrowed(text.as_str()),
                Cow::Borrowed(html.as_str()),
            ),
            Content::Link {
                link,
                name,
                expires_at,
                options,
            } => {
                let purpose = m.kind.link_purpose().ok_or_else(|| {
                    MailError::Build(format!("a {} message cannot carry a link", m.kind))
                })?;
                let lifetime = (*expires_at - leased.created_at).max(0) as u64;
                lang = self
                    .catalogs
                    .for_link(options.locale.as_deref(), leased.user_locale.as_deref());
                link_of = Some((link.as_str(), *expires_at));
                let rendered = self
                    .render_link_email(&LinkEmail {
                        purpose,
                        lang,
                        email: &m.recipient,
                        name: name.as_deref(),
                        link,
                        lifetime: Duration::from_millis(lifetime),
                        expires_at: *expires_at,
                        options,
                    })
                    // minijinja's error keeps the values it read (its
                    // `Debug` and `{:#}` print them): the link. Only the
                    // plain text goes on, and without the link.
                    .map_err(|e| {
                        MailError::LinkEmail(e.to_string().replace(link.as_str(), "[link]"))
                    })?;
                (
                    Cow::Owned(rendered.subject),
                    Cow::Owned(rendered.text),
                    Cow::Owned(rendered.html),
                )
            }
        };
        Ok(Letter {
            message_id: &m.message_id,
            recipient: &m.recipient,
            subject,
            text,
            html,
            date: leased.created_at,
            kind: m.kind.as_str(),
            lang,
            user_id: leased.user_id,
            user_name: leased.user_name.as_deref(),
            link: link_of.map(|(link, _)| link),
            link_expires_at: link_of.map(|(_, at)| at),
        })
    }

    /// The notice sent after a password change; it carries no link.
    pub fn render_password_changed(
        &self,
        email: &str,
        name: Option<&str>,
        changed_at: UnixMillis,
        lang: Lang,
    ) -> Result<Rendered, MailError> {
        let ctx = context! {
            product => &self.product,
            support => &self.support,
            email => email,
            name => name,
            changed_at => self.catalogs.datetime(lang, changed_at),
        };
        self.render(MessageKind::PasswordChanged, lang, ctx)
    }

    /// Each kind's templates are named after it: `<kind>.subject.txt`, …;
    /// a language's own override (`de/<kind>.txt`) before the common one.
    /// Every template sees `locale` and `dir` (for `t()` and `<html>`).
    fn render(
        &self,
        kind: MessageKind,
        lang: Lang,
        ctx: minijinja::Value,
    ) -> Result<Rendered, MailError> {
        let language = context! { locale => lang.tag(), dir => lang.dir() };
        let ctx = context! { ..language, ..ctx };
        let render = |suffix: &str| -> Result<String, MailError> {
            let common = format!("{}.{suffix}", kind.as_str());
            let own = format!("{lang}/{common}");
            let name = if self.env.get_template(&own).is_ok() {
                own
            } else {
                common
            };
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&ctx))
                .map_err(|error| MailError::Template { name, error })
        };
        Ok(Rendered {
            subject: render("subject.txt")?.trim().to_string(),
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

/// The override directory exists and holds only files named like the
/// built-in templates (dot files aside), `page/` and a directory per
/// shipped language holding the same: a misspelt name would otherwise be
/// ignored without a word.
fn check_override_dir(dir: &Path) -> Result<(), MailError> {
    let problem = |problem: String| MailError::OverrideDir {
        path: dir.display().to_string(),
        problem,
    };
    let mut places = vec![(dir.to_path_buf(), String::new())];
    while let Some((place, prefix)) = places.pop() {
        let entries = std::fs::read_dir(&place).map_err(|e| problem(format!("{prefix}{e}")))?;
        for entry in entries {
            let name = entry
                .map_err(|e| problem(e.to_string()))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            // `page/` holds the reset page's templates (`http::reset_page`
            // checks what is in it).
            if name.starts_with('.')
                || name == "page"
                || BUILTIN.iter().any(|(known, _)| *known == name)
            {
                continue;
            }
            // A language's own templates: the same names, one level down.
            if prefix.is_empty() && SHIPPED.contains(&name.as_str()) {
                places.push((place.join(&name), format!("{name}/")));
                continue;
            }
            let known: Vec<&str> = BUILTIN.iter().map(|(known, _)| *known).collect();
            return Err(problem(format!(
                "unknown template file \"{prefix}{name}\" (known: {}; or a directory per \
                 language: {})",
                known.join(", "),
                SHIPPED.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogs() -> Arc<Catalogs> {
        ServerConfig::default().catalogs
    }

    fn lang(tag: &str) -> Lang {
        Lang::by_tag(tag).unwrap()
    }

    #[test]
    fn every_message_kind_has_its_templates() {
        let renderer = Renderer::new("pwmail", None, None, catalogs()).unwrap();
        for kind in MessageKind::ALL {
            let ctx = context! {
                product => "p", support => "s", email => "e", name => "n", link => "L",
                expires_in => "1 hour", expires_at => "t", changed_at => "t",
            };
            let rendered = renderer.render(kind, Lang::ENGLISH, ctx).unwrap();
            assert!(!rendered.subject.is_empty(), "{kind}");
        }
    }

    #[test]
    fn broken_overrides_fail_at_start_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = |dir: &Path| {
            Renderer::new("pwmail", None, Some(dir), catalogs())
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let missing = dir.path().join("nope");
        assert!(
            err(&missing).contains("--template-dir"),
            "{}",
            err(&missing)
        );

        std::fs::write(dir.path().join("send_password_emial.txt"), "x").unwrap();
        let e = err(dir.path());
        assert!(
            e.contains("unknown template file \"send_password_emial.txt\""),
            "{e}"
        );
        std::fs::remove_file(dir.path().join("send_password_emial.txt")).unwrap();

        std::fs::write(
            dir.path().join("send_password_email.txt"),
            "Hello\n{{ nmae }}\n",
        )
        .unwrap();
        let e = err(dir.path());
        assert!(
            e.contains("`nmae` is undefined") && e.contains("send_password_email.txt:2"),
            "{e}"
        );

        std::fs::write(dir.path().join("send_password_email.txt"), "{% if %}").unwrap();
        let e = err(dir.path());
        assert_eq!(e.matches("syntax error").count(), 1, "once: {e}");

        std::fs::write(
            dir.path().join("send_password_email.txt"),
            "Hello {{ name or email }}: {{ link }}\n",
        )
        .unwrap();
        Renderer::new("pwmail", None, Some(dir.path()), catalogs()).expect("a good override");
    }

    fn leased(kind: MessageKind, content: Content) -> OutboxMessage {
        OutboxMessage {
            id: 1,
            message: queued(kind, "a@example.com", "pwmail.test", content),
            attempts: 1,
            created_at: 1_000,
            queued_at: 1_000,
            request_id: None,
            user_locale: None,
            user_id: None,
            user_name: None,
        }
    }

    #[test]
    fn a_link_email_is_written_when_sent_from_what_its_row_holds() {
        let r = Renderer::new("Acme", Some("help@acme.test"), None, catalogs()).unwrap();
        let row = leased(
            MessageKind::ResetPasswordByAdmin,
            Content::Link {
                link: "https://acme.test/reset/TOKEN".into(),
                name: Some("Ada".into()),
                // Issued at the row's created_at, for 90 minutes.
                expires_at: 1_000 + 5_400_000,
                options: Default::default(),
            },
        );
        let letter = r.letter(&row).unwrap();
        let direct = r
            .render_link_email(&LinkEmail {
                purpose: LinkPurpose::ResetPasswordByAdmin,
                lang: Lang::ENGLISH,
                email: "a@example.com",
                name: Some("Ada"),
                link: "https://acme.test/reset/TOKEN",
                lifetime: Duration::from_secs(5_400),
                expires_at: 1_000 + 5_400_000,
                options: &Default::default(),
            })
            .unwrap();
        assert_eq!(letter.subject, direct.subject);
        assert_eq!(letter.text, direct.text);
        assert_eq!(letter.html, direct.html);
        assert!(letter.text.contains("https://acme.test/reset/TOKEN"));
        assert!(letter.text.contains("Ada") && letter.text.contains("90 minutes"));
        assert_eq!(
            (letter.message_id, letter.recipient, letter.date),
            (
                row.message.message_id.as_str(),
                "a@example.com",
                row.created_at
            )
        );

        // A notice goes as it was stored.
        let notice = leased(
            MessageKind::PasswordChanged,
            Rendered {
                subject: "S".into(),
                text: "T".into(),
                html: "H".into(),
            }
            .into_content(),
        );
        let letter = r.letter(&notice).unwrap();
        assert_eq!(
            (&*letter.subject, &*letter.text, &*letter.html),
            ("S", "T", "H")
        );

        // A link on a kind that has none is refused, not sent.
        let odd = leased(MessageKind::PasswordChanged, row.message.content.clone());
        let err = r.letter(&odd).err().expect("refused").to_string();
        assert!(err.contains("cannot carry a link"), "{err}");
        assert!(!err.contains("TOKEN"), "{err}");
        assert!(!format!("{:?}", row.message).contains("TOKEN"), "Debug");
    }

    #[test]
    fn a_template_failing_at_send_names_its_file_never_the_link() {
        // Passes the start-up trial (its sample link is short), fails for a
        // real one; minijinja's own error would list the link among its
        // referenced variables.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("send_password_email.txt"),
            "{% if link|length > 40 %}{{ link | int }}{% endif %}",
        )
        .unwrap();
        let r = Renderer::new("pwmail", None, Some(dir.path()), catalogs()).unwrap();
        let row = leased(
            MessageKind::SendPasswordEmail,
            Content::Link {
                link: "https://acme.example.test/reset/SECRETTOKEN0123456789".into(),
                name: None,
                expires_at: 5_000,
                options: Default::default(),
            },
        );
        let e = r.letter(&row).err().expect("fails");
        for shown in [e.to_string(), format!("{e:?}"), format!("{e:#}")] {
            assert!(!shown.contains("SECRETTOKEN"), "{shown}");
            assert!(shown.contains("send_password_email.txt:1"), "{shown}");
        }
    }

    #[test]
    fn html_part_escapes_user_data() {
        let r = Renderer::new("pwmail", None, None, catalogs()).unwrap();
        let out = r
            .render_link_email(&LinkEmail {
                purpose: LinkPurpose::SendPasswordEmail,
                lang: Lang::ENGLISH,
                email: "a@example.com",
                name: Some("<script>x</script>"),
                link: "https://h/reset/t",
                lifetime: Duration::from_secs(86_400),
                expires_at: 0,
                options: &Default::default(),
            })
            .unwrap();
        assert!(out.html.contains("&lt;script&gt;"), "{}", out.html);
        // The link as it is: nothing in it needs escaping, `/` included.
        assert!(
            out.html.contains(r#"href="https://h/reset/t""#),
            "{}",
            out.html
        );
        assert!(
            out.text
                .contains("expires in 24 hours (at Jan 1, 1970, 12:00\u{202f}AM UTC)"),
            "{}",
            out.text
        );
        assert_eq!(out.subject, "Set your pwmail password");
    }

    fn link_row(user_locale: Option<&str>, call_locale: Option<&str>) -> OutboxMessage {
        let mut row = leased(
            MessageKind::SendPasswordEmail,
            Content::Link {
                link: "https://acme.test/reset/TOKEN".into(),
                name: Some("Ada".into()),
                expires_at: 1_000 + 7_200_000,
                options: LinkOptions {
                    locale: call_locale.map(str::to_string),
                    ..LinkOptions::default()
                },
            },
        );
        row.user_locale = user_locale.map(str::to_string);
        row
    }

    #[test]
    fn a_link_email_is_written_in_the_calls_locale_else_the_users_else_the_default() {
        let r = Renderer::new("Acme", None, None, catalogs()).unwrap();
        let row = link_row(Some("de-AT"), None);
        let german = r.letter(&row).unwrap();
        assert_eq!(german.subject, "Legen Sie Ihr Passwort für Acme fest");
        assert!(german.text.starts_with("Hallo Ada,"), "{}", german.text);
        assert!(
            german.text.contains("läuft in 2 Stunden ab"),
            "{}",
            german.text
        );
        assert!(
            german.text.contains("01.01.1970, 02:00 UTC"),
            "{}",
            german.text
        );
        assert!(
            german.html.contains(r#"<html lang="de" dir="ltr">"#),
            "{}",
            german.html
        );

        let row = link_row(Some("de"), Some("fr"));
        let french = r.letter(&row).unwrap();
        assert_eq!(french.subject, "Définissez votre mot de passe Acme");

        let row = link_row(None, Some("ar"));
        let arabic = r.letter(&row).unwrap();
        assert!(
            arabic.html.contains(r#"<html lang="ar" dir="rtl">"#),
            "{}",
            arabic.html
        );

        let row = link_row(Some("it"), None);
        let english = r.letter(&row).unwrap();
        assert_eq!(english.subject, "Set your Acme password");

        let german_default =
            Renderer::new("Acme", None, None, crate::config::catalogs("de").unwrap()).unwrap();
        let row = link_row(None, None);
        let letter = german_default.letter(&row).unwrap();
        assert_eq!(letter.subject, "Legen Sie Ihr Passwort für Acme fest");
    }

    #[test]
    fn a_language_of_its_own_overrides_only_that_language() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("de")).unwrap();
        std::fs::write(
            dir.path().join("de/send_password_email.subject.txt"),
            "Neues Passwort für {{ product }} ({{ locale }})",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("send_password_email.subject.txt"),
            "Everyone's: {{ t('email-link-subject', product=product) }}",
        )
        .unwrap();
        let r = Renderer::new("Acme", None, Some(dir.path()), catalogs()).unwrap();
        let subject = |user: &str| {
            let row = link_row(Some(user), None);
            r.letter(&row).unwrap().subject.into_owned()
        };
        assert_eq!(subject("de"), "Neues Passwort für Acme (de)");
        assert_eq!(
            subject("fr"),
            "Everyone's: Définissez votre mot de passe Acme"
        );

        // A typo in a language's directory, a language pwmail does not
        // ship, and an unknown key: each stops the start.
        std::fs::write(dir.path().join("de/send_pasword_email.txt"), "x").unwrap();
        let e = Renderer::new("Acme", None, Some(dir.path()), catalogs())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"de/send_pasword_email.txt\""), "{e}");
        std::fs::remove_file(dir.path().join("de/send_pasword_email.txt")).unwrap();

        std::fs::create_dir(dir.path().join("it")).unwrap();
        let e = Renderer::new("Acme", None, Some(dir.path()), catalogs())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown template file \"it\"") && e.contains("pt-BR"),
            "{e}"
        );
        std::fs::remove_dir(dir.path().join("it")).unwrap();

        std::fs::write(
            dir.path().join("de/send_password_email.subject.txt"),
            "{{ t('email-link-subjekt') }}",
        )
        .unwrap();
        let e = Renderer::new("Acme", None, Some(dir.path()), catalogs())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("email-link-subjekt") && e.contains("de/send_password_email.subject.txt"),
            "{e}"
        );
    }

    #[test]
    fn the_password_changed_notice_is_written_in_the_given_language() {
        let r = Renderer::new("Acme", None, None, catalogs()).unwrap();
        let notice = r
            .render_password_changed("a@example.com", None, 0, lang("ja"))
            .unwrap();
        assert_eq!(notice.subject, "Acme のパスワードが変更されました");
        assert!(
            notice.text.contains("1970/01/01 0:00（UTC）"),
            "{}",
            notice.text
        );
    }
}
