//! A pool of SMTP connections with TCP_NODELAY set.
//!
//! lettre's own pool connects without TCP_NODELAY and writes a message as
//! two writes (the body, then `\r\n.\r\n`). With Nagle's algorithm on, the
//! terminator waits for the server to acknowledge the body, which the server
//! delays (40 ms on Linux) because it has nothing to answer yet: every send
//! took 40–50 ms on loopback (seen in `cargo xtask bench`, scenario b). So
//! connections are made here, with lettre's `AsyncSmtpConnection` speaking
//! SMTP (greeting, EHLO, STARTTLS, AUTH, the transaction) over them.
//!
//! Where the server's EHLO offers PIPELINING (RFC 2920; every common relay
//! does), MAIL, RCPT and DATA go out as one write and their replies are
//! read together: a message costs two round trips instead of four. Under
//! load each round trip waits for the tokio worker to come round to it, so
//! the round trips, not the bytes, set how fast one connection sends.
//!
//! Implicit TLS goes through lettre's `AsyncNetworkStream`, which lettre
//! 0.11 marks deprecated ("not meant to be made public") but is the one way
//! to get lettre's TLS on a socket made elsewhere; hence `allow(deprecated)`.
#![allow(deprecated)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{
    AsyncNetworkStream, AsyncSmtpConnection, AsyncTokioStream, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// A connection and whether its server offered PIPELINING.
struct Connection {
    smtp: AsyncSmtpConnection,
    pipelining: bool,
}

/// An idle connection older than this is closed rather than reused: relays
/// drop idle sessions after a while, and a send on a dropped one would fail.
const MAX_IDLE: Duration = Duration::from_secs(30);

pub enum Security {
    None,
    /// STARTTLS after the greeting; refused if the server does not offer it.
    StartTls(TlsParameters),
    /// TLS from the first byte (`smtps://`).
    Implicit(TlsParameters),
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// What the SMTP conversation reported (a reply code, or lettre's own
    /// network and TLS errors).
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The reply to RCPT TO refused the recipient (known only where the
    /// transaction was pipelined, which is where every common relay is).
    #[error("RCPT TO refused: {0}")]
    Recipient(lettre::transport::smtp::Error),
    /// Connecting failed or took too long.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub struct SmtpPool {
    host: String,
    port: u16,
    timeout: Duration,
    hello: ClientId,
    security: Security,
    credentials: Option<Credentials>,
    idle: Mutex<Vec<(Connection, Instant)>>,
    slots: tokio::sync::Semaphore,
}

impl SmtpPool {
    pub fn new(
        host: String,
        port: u16,
        timeout: Duration,
        security: Security,
        credentials: Option<Credentials>,
        size: u32,
    ) -> Self {
        SmtpPool {
            host,
            port,
            timeout,
            hello: ClientId::default(),
            security,
            credentials,
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(size.max(1) as usize),
        }
    }

    /// One SMTP transaction on a pooled connection (a new one if none is
    /// idle). A connection that failed is closed, never reused.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<Response, PoolError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| std::io::Error::other("the SMTP pool is closed"))?;
        let mut conn = match self.take_idle() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let response = if conn.pipelining {
            pipelined(&mut conn.smtp, envelope, message).await?
        } else {
            conn.smtp.send(envelope, message).await?
        };
        if !conn.smtp.has_broken()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push((conn, Instant::now()));
        }
        Ok(response)
    }

    /// Connects as a send would (greeting, EHLO, STARTTLS, AUTH), then
    /// QUITs: whether the relay takes these settings, without a message.
    pub async fn check(&self) -> Result<String, PoolError> {
        let mut conn = self.connect().await?;
        let offered = if conn.pipelining {
            ", PIPELINING offered"
        } else {
            ""
        };
        let _ = conn.smtp.quit().await;
        let security = match self.security {
            Security::None => "no TLS",
            Security::StartTls(_) => "STARTTLS",
            Security::Implicit(_) => "TLS",
        };
        let auth = if self.credentials.is_some() {
            ", AUTH accepted"
        } else {
            ""
        };
        Ok(format!(
            "{}:{} answered EHLO ({security}{auth}{offered})",
            self.host, self.port
        ))
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !conn.smtp.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Connection, PoolError> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let tcp = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| timed_out("connecting timed out"))??;
        tcp.set_nodelay(true)?;
        let handshake = async {
            let stream: Box<dyn AsyncTokioStream> = match &self.security {
                Security::Implicit(tls) => {
                    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                    stream.upgrade_tls(tls.clone()).await?;
                    Box::new(Encrypted(stream.compat()))
                }
                _ => Box::new(tcp),
            };
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
            if let Security::StartTls(tls) = &self.security {
                if !conn.can_starttls() {
                    return Err(PoolError::Io(std::io::Error::new(
                        std::io::ErrorKind::Unsupported,
                        "the server does not offer STARTTLS, which is required",
                    )));
                }
                conn.starttls(tls.clone(), &self.hello).await?;
            }
            let pipelining = offers_pipelining(&mut conn, &self.hello).await?;
            if let Some(credentials) = &self.credentials {
                conn.auth(DEFAULT_MECHANISMS, credentials).await?;
            }
            Ok::<_, PoolError>(Connection {
                smtp: conn,
                pipelining,
            })
        };
        tokio::time::timeout(self.timeout, handshake)
            .await
            .map_err(|_| timed_out("the SMTP greeting, TLS or AUTH timed out"))?
    }
}

/// Asks EHLO again (before AUTH, after STARTTLS: what the session offers
/// now) and reads whether PIPELINING is offered, which lettre's parsed
/// server info leaves out.
async fn offers_pipelining(
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
) -> Result<bool, lettre::transport::smtp::Error> {
    let reply = conn.command(Ehlo::new(hello.clone())).await?;
    Ok(reply.message().any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
    }))
}

/// MAIL, RCPT and DATA in one write (RFC 2920), their replies read in
/// order, then the message. The first refusal ends the transaction and the
/// connection (replies to the rest are still on their way), as lettre's
/// own `send` does. Addresses that need SMTPUTF8, or a message that needs
/// 8BITMIME the server lacks, go through lettre's `send`, which decides.
async fn pipelined(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Response, PoolError> {
    let ascii_addresses = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .all(|address| AsRef::<str>::as_ref(address).is_ascii());
    let eight_bit = !message.is_ascii();
    if !ascii_addresses
        || (eight_bit && !conn.server_info().supports_feature(Extension::EightBitMime))
    {
        return Ok(conn.send(envelope, message).await?);
    }
    let mut group = Mail::new(
        envelope.from().cloned(),
        if eight_bit {
            vec![MailParameter::Body(MailBodyParameter::EightBitMime)]
        } else {
            Vec::new()
        },
    )
    .to_string();
    for to in envelope.to() {
        group.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
    }
    group.push_str(&Data.to_string());
    let result = async {
        // `command` writes the whole group and reads MAIL's reply.
        conn.command(group).await?;
        for _ in envelope.to() {
            conn.read_response().await.map_err(PoolError::Recipient)?;
        }
        conn.read_response().await?;
        Ok(match std::str::from_utf8(message) {
            // `command` writes it in one piece and reads the reply.
            Ok(text) => conn.command(DataBody(text)).await?,
            Err(_) => conn.message(message).await?,
        })
    }
    .await;
    if result.is_err() {
        conn.abort().await;
    }
    result
}

/// A message as DATA carries it (RFC 5321 4.5.2): a line that starts with
/// "." gets another one, and the end mark follows. lettre's `message` does
/// the same a byte at a time (a sixteenth of a call's instructions, counted
/// by callgrind) and writes the end mark apart. Line breaks are ASCII, so
/// every piece ends on a character boundary.
struct DataBody<'a>(&'a str);

impl std::fmt::Display for DataBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut from = 0;
        // memmem: str::match_indices spent 10k instructions a message here.
        for at in memchr::memmem::find_iter(text.as_bytes(), b"\r\n.") {
            // Through the line break, then the added dot; the line's own
            // dot starts the next piece.
            f.write_str(&text[from..at + 2])?;
            f.write_str(".")?;
            from = at + 2;
        }
        f.write_str(&text[from..])?;
        f.write_str("\r\n.\r\n")
    }
}

fn timed_out(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, message.to_string())
}

/// A TLS stream made by lettre, handed back to lettre as a plain stream.
#[derive(Debug)]
struct Encrypted(Compat<AsyncNetworkStream>);

impl AsyncTokioStream for Encrypted {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().peer_addr()
    }
}

impl AsyncRead for Encrypted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Encrypted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::DataBody;

    #[test]
    fn data_doubles_a_leading_dot_on_each_line_and_ends_with_the_mark() {
        let cases = [
            ("Hello\r\nworld", "Hello\r\nworld\r\n.\r\n"),
            (".first", "..first\r\n.\r\n"),
            ("a\r\n.b\r\n..c\r\n.", "a\r\n..b\r\n...c\r\n..\r\n.\r\n"),
            ("a\r\n.\r\n.", "a\r\n..\r\n..\r\n.\r\n"),
            // Only a dot after CR LF starts a line.
            ("a\r.b\n.c", "a\r.b\n.c\r\n.\r\n"),
            ("", "\r\n.\r\n"),
        ];
        for (message, wire) in cases {
            assert_eq!(DataBody(message).to_string(), wire, "{message:?}");
        }
    }
}
