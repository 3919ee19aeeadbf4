//! Email: templates (compiled in, overridable from a directory at start-up),
//! the MIME message built from a queued row, and the transports that carry
//! it (`.eml` files or SMTP).

pub mod message;
pub mod smtp_pool;
pub mod transport;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use minijinja::{Environment, context};
use pwmail_store::{
    Content, LinkOptions, LinkPurpose, MessageKind, NewMessage, OutboxMessage, UnixMillis,
};

use crate::app::AppError;
use crate::clock::format_utc;
use crate::config::ServerConfig;
pub use message::build_message;

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
    ) -> Result<NewMessage, AppError> {
        let notice = self
            .renderer
            .render_password_changed(email, name, changed_at)
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
}

pub struct Renderer {
    env: Environment<'static>,
    product: String,
    support: Option<String>,
}

impl Renderer {
    /// Built-in templates, each replaced by a file of the same name in
    /// `override_dir` when there is one.
    /// The templates as `config` sets them: its product name, support
    /// contact and override directory.
    pub fn for_config(config: &ServerConfig) -> Result<Self, MailError> {
        Renderer::new(
            &config.product_name,
            config.support_contact.as_deref(),
            config.template_dir.as_deref(),
        )
    }

    pub fn new(
        product: &str,
        support: Option<&str>,
        override_dir: Option<&Path>,
    ) -> Result<Self, MailError> {
        if let Some(dir) = override_dir {
            check_override_dir(dir)?;
        }
        let mut env = Environment::new();
        // A misspelt variable is an error, not an empty string in every email.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, builtin) in BUILTIN {
            let source = match override_dir.map(|d| d.join(name)) {
                Some(path) if path.exists() => {
                    crate::files::read_small_text(&path).map_err(|error| MailError::Override {
                        path: path.display().to_string(),
                        error,
                    })?
                }
                _ => builtin.to_string(),
            };
            env.add_template_owned(name.to_string(), source)
                .map_err(|error| MailError::Template {
                    name: name.to_string(),
                    error,
                })?;
        }
        let renderer = Renderer {
            env,
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
        for purpose in [
            LinkPurpose::SendPasswordEmail,
            LinkPurpose::ResetPasswordByAdmin,
        ] {
            for name in [None, Some("Sample User")] {
                self.render_link_email(&LinkEmail {
                    purpose,
                    email: "user@example.com",
                    name,
                    link: "https://pwmail.example/reset/SAMPLE",
                    lifetime: Duration::from_secs(86_400),
                    expires_at: 0,
                    options: &LinkOptions::default(),
                })?;
                self.render_password_changed("user@example.com", name, 0)?;
            }
        }
        Ok(())
    }

    pub fn render_link_email(&self, email: &LinkEmail<'_>) -> Result<Rendered, MailError> {
        let ctx = context! {
            product => &self.product,
            support => &self.support,
            email => email.email,
            name => email.name,
            link => email.link,
            expires_in => human_duration(email.lifetime),
            expires_at => format_utc(email.expires_at),
            options => minijinja::value::Serde(email.options),
        };
        self.render(MessageKind::from(email.purpose), ctx)
    }

    /// The words of a leased message. A link email's templates run now:
    /// its link and the user's name come from the row, and its lifetime is
    /// what it was when the link was issued (at the row's `created_at`). A
    /// template that fails for this message fails this message only (the
    /// dispatcher gives it up), as it would have failed the API call.
    pub fn letter<'a>(&self, leased: &'a OutboxMessage) -> Result<Letter<'a>, MailError> {
        let m = &leased.message;
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
                let rendered = self
                    .render_link_email(&LinkEmail {
                        purpose,
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
        })
    }

    /// The notice sent after a password change; it carries no link.
    pub fn render_password_changed(
        &self,
        email: &str,
        name: Option<&str>,
        changed_at: UnixMillis,
    ) -> Result<Rendered, MailError> {
        let ctx = context! {
            product => &self.product,
            support => &self.support,
            email => email,
            name => name,
            changed_at => format_utc(changed_at),
        };
        self.render(MessageKind::PasswordChanged, ctx)
    }

    /// Each kind's templates are named after it: `<kind>.subject.txt`, …
    fn render(&self, kind: MessageKind, ctx: minijinja::Value) -> Result<Rendered, MailError> {
        let render = |suffix: &str| -> Result<String, MailError> {
            let name = format!("{}.{suffix}", kind.as_str());
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
/// built-in templates (dot files aside): a misspelt name would otherwise be
/// ignored without a word.
fn check_override_dir(dir: &Path) -> Result<(), MailError> {
    let problem = |problem: String| MailError::OverrideDir {
        path: dir.display().to_string(),
        problem,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| problem(e.to_string()))?;
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
        let known: Vec<&str> = BUILTIN.iter().map(|(known, _)| *known).collect();
        return Err(problem(format!(
            "unknown template file {name:?} (known: {})",
            known.join(", ")
        )));
    }
    Ok(())
}

/// "24 hours", "90 minutes", "2 days".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs.is_multiple_of(86_400) && secs >= 2 * 86_400 {
        plural(secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) && secs >= 3600 {
        plural(secs / 3600, "hour")
    } else {
        plural(secs.div_ceil(60), "minute")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human_duration(Duration::from_secs(172_800)), "2 days");
        assert_eq!(human_duration(Duration::from_secs(300)), "5 minutes");
        assert_eq!(human_duration(Duration::from_secs(5400)), "90 minutes");
    }

    #[test]
    fn every_message_kind_has_its_templates() {
        let renderer = Renderer::new("pwmail", None, None).unwrap();
        for kind in MessageKind::ALL {
            let ctx = context! {
                product => "p", support => "s", email => "e", name => "n", link => "L",
                expires_in => "1 hour", expires_at => "t", changed_at => "t",
            };
            let rendered = renderer.render(kind, ctx).unwrap();
            assert!(!rendered.subject.is_empty(), "{kind}");
        }
    }

    #[test]
    fn broken_overrides_fail_at_start_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = |dir: &Path| {
            Renderer::new("pwmail", None, Some(dir))
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
        Renderer::new("pwmail", None, Some(dir.path())).expect("a good override");
    }

    fn leased(kind: MessageKind, content: Content) -> OutboxMessage {
        OutboxMessage {
            id: 1,
            message: queued(kind, "a@example.com", "pwmail.test", content),
            attempts: 1,
            created_at: 1_000,
            queued_at: 1_000,
            request_id: None,
        }
    }

    #[test]
    fn a_link_email_is_written_when_sent_from_what_its_row_holds() {
        let r = Renderer::new("Acme", Some("help@acme.test"), None).unwrap();
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
        let r = Renderer::new("pwmail", None, Some(dir.path())).unwrap();
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
        let r = Renderer::new("pwmail", None, None).unwrap();
        let out = r
            .render_link_email(&LinkEmail {
                purpose: LinkPurpose::SendPasswordEmail,
                email: "a@example.com",
                name: Some("<script>x</script>"),
                link: "https://h/reset/t",
                lifetime: Duration::from_secs(86_400),
                expires_at: 0,
                options: &Default::default(),
            })
            .unwrap();
        assert!(out.html.contains("&lt;script&gt;"), "{}", out.html);
        assert!(
            out.text
                .contains("expires in 24 hours (at 1970-01-01 00:00 UTC)")
        );
        assert_eq!(out.subject, "Set your pwmail password");
    }
}
