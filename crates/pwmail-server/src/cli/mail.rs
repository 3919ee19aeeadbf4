//! `pwmail mail preview`: a message rendered exactly as `serve` would
//! queue it, with a sample link; `pwmail mail test`: one message through
//! the configured transport now; `pwmail mail dkim-record`: the DNS record
//! that publishes the DKIM key.

use crate::cli::out;
use clap::{Subcommand, ValueEnum};
use pwmail_store::{Content, LinkOptions, MessageKind, OutboxMessage};

use crate::app::validate;
use crate::cli::args::{
    ContentArgs, DataDirArgs, DkimArgs, SenderArgs, TemplateArgs, TransportArgs,
};
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
    /// Send one test message through the configured transport now and print what the
    /// relay or API answered (exit status 1 if it refused or could not be reached).
    Test {
        /// Where the test message goes.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        content: ContentArgs,
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        transport: Box<TransportArgs>,
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Print the DNS TXT record that publishes the DKIM key (--dkim-key, --dkim-selector).
    DkimRecord {
        #[command(flatten)]
        dkim: DkimArgs,
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

pub async fn mail(cmd: &MailCommand, now: i64) -> anyhow::Result<()> {
    match cmd {
        MailCommand::Preview {
            kind,
            to,
            locale,
            content,
            templates,
            sender,
        } => preview(
            *kind,
            to,
            locale.as_deref(),
            content,
            templates,
            sender,
            now,
        ),
        MailCommand::Test {
            to,
            content,
            sender,
            transport,
            data,
        } => test(to, content, sender, transport, data, now).await,
        MailCommand::DkimRecord { dkim, sender } => {
            let config = ServerConfig {
                mail_from: sender.mail_from.clone(),
                ..ServerConfig::default()
            };
            let signer = dkim.signer(&config.mail_domain())?.ok_or_else(|| {
                anyhow::anyhow!("give the key: --dkim-key FILE --dkim-selector SELECTOR")
            })?;
            let (name, value) = signer.dns_record();
            out!("{name}. IN TXT \"{value}\"")?;
            Ok(())
        }
    }
}

/// Sends the test message and says what came back.
async fn test(
    to: &str,
    content: &ContentArgs,
    sender: &SenderArgs,
    transport: &TransportArgs,
    data: &DataDirArgs,
    now: i64,
) -> anyhow::Result<()> {
    validate::email(to)?;
    let mut config = ServerConfig {
        mail_from: sender.mail_from.clone(),
        ..ServerConfig::default()
    };
    transport.apply(&mut config, &data.data_dir)?;
    content.apply(&mut config)?;
    let transport = crate::build_transport(&config)?;
    let product = &config.product_name;
    let when = chrono::DateTime::from_timestamp_millis(now)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC");
    let text = format!(
        "This is a test message from {product}, sent by `pwmail mail test` at {when} \
         to check its mail settings. Nothing needs to be done.\n"
    );
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><body><p>This is a test message from {}, \
         sent by <code>pwmail mail test</code> at {when} to check its mail settings. \
         Nothing needs to be done.</p></body></html>\n",
        minijinja::HtmlEscape(product)
    );
    let message_id = mail::message_id(&config.mail_domain());
    let letter = mail::Letter {
        message_id: &message_id,
        recipient: to,
        subject: format!("{product} mail test").into(),
        text: text.into(),
        html: html.into(),
        date: now,
        kind: "test",
        lang: pwmail_i18n::Lang::ENGLISH,
        user_id: None,
        user_name: None,
        link: None,
        link_expires_at: None,
    };
    let via = transport.describe();
    match transport.send(&letter).await {
        Ok(reply) => {
            out!("sent to {to} through {via} (Message-ID <{message_id}>)")?;
            out!("answer: {reply}")?;
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "the test message to {to} was not sent through {via}: {e} ({})",
            match e.failure {
                crate::mail::transport::Failure::Transient =>
                    "a temporary failure: the dispatcher would retry it",
                crate::mail::transport::Failure::Permanent =>
                    "a permanent failure: the dispatcher would give it up",
            }
        )),
    }
}

fn preview(
    kind: PreviewKind,
    to: &str,
    locale: Option<&str>,
    content: &ContentArgs,
    templates: &TemplateArgs,
    sender: &SenderArgs,
    now: i64,
) -> anyhow::Result<()> {
    validate::email(to)?;
    let locale = locale.map(validate::locale).transpose()?;
    let mut config = ServerConfig {
        mail_from: sender.mail_from.clone(),
        ..ServerConfig::default()
    };
    content.apply(&mut config)?;
    templates.apply(&mut config)?;
    let renderer = mail::Renderer::for_config(&config)?;
    // Queued and then written as the dispatcher writes it.
    let kind = MessageKind::from(kind);
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
        user_id: None,
        user_name: None,
    };
    let from = config.mail_from.parse()?;
    let mime = mail::build_message(&renderer.letter(&leased)?, &from)?;
    out!("{}", String::from_utf8_lossy(&mime.bytes))?;
    Ok(())
}
