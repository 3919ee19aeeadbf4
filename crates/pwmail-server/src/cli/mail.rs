//! `pwmail mail preview`: a message rendered exactly as `serve` would
//! queue it, with a sample link.

use crate::cli::out;
use clap::{Subcommand, ValueEnum};
use pwmail_store::{LinkPurpose, MessageKind};

use crate::app::validate;
use crate::cli::args::{ContentArgs, SenderArgs};
use crate::config::ServerConfig;
use crate::mail::{self, LinkEmail, Renderer};

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
        #[command(flatten)]
        content: ContentArgs,
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
        content,
        sender,
    } = cmd;
    validate::email(to)?;
    let mut config = ServerConfig {
        mail_from: sender.mail_from.clone(),
        ..ServerConfig::default()
    };
    content.apply(&mut config)?;
    let renderer = Renderer::new(
        &config.product_name,
        config.support_contact.as_deref(),
        config.template_dir.as_deref(),
    )?;
    let kind = MessageKind::from(*kind);
    let link = config.reset_link("EXAMPLE-TOKEN");
    let purpose = match kind {
        MessageKind::SendPasswordEmail => Some(LinkPurpose::SendPasswordEmail),
        MessageKind::ResetPasswordByAdmin => Some(LinkPurpose::ResetPasswordByAdmin),
        MessageKind::PasswordChanged => None,
    };
    let rendered = match purpose {
        Some(purpose) => renderer.render_link_email(&LinkEmail {
            purpose,
            email: to,
            name: None,
            link: &link,
            lifetime: config.link_ttl,
            expires_at: now + config.link_ttl.as_millis() as i64,
        })?,
        None => renderer.render_password_changed(to, None, now)?,
    };
    let message = rendered.into_message(kind, to, &config.mail_domain());
    let from = config.mail_from.parse()?;
    let mime = mail::build_message(&message, &from, now)?;
    out!("{}", String::from_utf8_lossy(&mime.bytes))?;
    Ok(())
}
