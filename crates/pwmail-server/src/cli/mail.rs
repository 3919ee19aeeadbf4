//! `pwmail mail preview`: a message rendered exactly as `serve` would
//! queue it, with a sample link.

use crate::cli::out;
use clap::{Subcommand, ValueEnum};
use pwmail_store::{Content, LinkOptions, MessageKind, OutboxMessage};

use crate::app::validate;
use crate::cli::args::{ContentArgs, SenderArgs, TemplateArgs};
use crate::config::ServerConfig;
use crate::mail;

#[derive(Subcommand, Debug)]
pub enum MailCommand {
    /// Print a rendered message (with a sample link) as it would be sent.
    Preview {
        /// Which message to render.
        #[arg(long, value_enum)]
        kind: PreviewKind,
        /// Recipient address shown in the message.
        #[arg(long)]
        to: String,
        /// The message's language (BCP 47), as a call's `locale` would ask for it.
        #[arg(long)]
        locale: Option<String>,
        #[command(flatten)]
        content: ContentArgs,
        #[command(flatten)]
        templates: TemplateArgs,
        #[command(flatten)]
        sender: SenderArgs,
    },
}

/// The message kinds, as the command line spells them.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PreviewKind {
    /// SendPasswordEmail's link email.
    SendPasswordEmail,
    /// ResetPasswordByAdmin's link email.
    ResetPasswordByAdmin,
    /// The notice sent after a password was set.
    PasswordChanged,
}

impl From<PreviewKind> for MessageKind {
    fn from(kind: PreviewKind) -> Self {
        match kind {
            PreviewKind::SendPasswordEmail => MessageKind::SendPasswordEmail,
            PreviewKind::ResetPasswordByAdmin => MessageKind::ResetPasswordByAdmin,
            PreviewKind::PasswordChanged => MessageKind::PasswordChanged,
        }
    }
}

pub fn mail(cmd: &MailCommand, now: i64) -> anyhow::Result<()> {
    let MailCommand::Preview {
        kind,
        to,
        locale,
        content,
        templates,
        sender,
    } = cmd;
    validate::email(to)?;
    let locale = locale.as_deref().map(validate::locale).transpose()?;
    let mut config = ServerConfig {
        mail_from: sender.mail_from.clone(),
        ..ServerConfig::default()
    };
    content.apply(&mut config)?;
    templates.apply(&mut config)?;
    let renderer = mail::Renderer::for_config(&config)?;
    // Queued and then written as the dispatcher writes it.
    let kind = MessageKind::from(*kind);
    let content = match kind.link_purpose() {
        Some(_) => Content::Link {
            link: config.reset_link("EXAMPLE-TOKEN"),
            name: None,
            expires_at: now + config.link_ttl.as_millis() as i64,
            options: LinkOptions {
                locale,
                ..LinkOptions::default()
            },
        },
        None => {
            let lang = config.catalogs.for_link(locale.as_deref(), None);
            renderer
                .render_password_changed(to, None, now, lang)?
                .into_content()
        }
    };
    let leased = OutboxMessage {
        id: 0,
        message: mail::queued(kind, to, &config.mail_domain(), content),
        attempts: 1,
        created_at: now,
        queued_at: now,
        request_id: None,
        user_locale: None,
    };
    let from = config.mail_from.parse()?;
    let mime = mail::build_message(&renderer.letter(&leased)?, &from)?;
    out!("{}", String::from_utf8_lossy(&mime.bytes))?;
    Ok(())
}
