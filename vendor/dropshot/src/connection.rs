// PATCHED for pwmail (see vendor/dropshot/PATCHES.md): this whole file.

//! Bounds on what a client may hold: how many connections are open at once,
//! how long a connection may sit silent, how long a request may take to
//! arrive, and how long a TLS handshake may take.
//!
//! Upstream dropshot 0.18 serves every accepted connection for as long as
//! the client keeps it: hyper's `header_read_timeout` starts only once
//! hyper-util's HTTP-version sniff has read its first bytes, the TLS
//! handshake has no timer, and nothing caps the number of connections, so a
//! few hundred silent sockets exhaust the process's file descriptors.
//!
//! [`TimedIo`] sits between the socket (or the TLS stream) and hyper. The
//! service tells it when a request is being handled ([`ConnState::begin`]);
//! while none is, every read is bounded: a connection that has sent nothing
//! for `client_timeout` since it opened or since its last response is
//! closed, and so is one whose request has not been handed to the service
//! within `client_timeout` of its first byte. A request's body is read by
//! the handler, which gets the same deadline as a [`RequestDeadline`]
//! extension. When it is dropped, [`TimedIo`] shuts its side down and reads
//! what the client still sends (a bounded "lingering close"), so a client
//! that writes its whole body before reading can read the answer instead
//! of a reset.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// What the server limits; see the module docs.
#[derive(Clone)]
pub struct ConnectionLimits {
    /// A silent connection, an incomplete request and a TLS handshake are
    /// each given this long.
    pub client_timeout: Duration,
    /// Connections open at once (TLS handshakes and lingering closes
    /// included); beyond it a new connection is closed as soon as it is
    /// accepted.
    pub max_connections: usize,
    /// Told about every connection; may be absent.
    pub observer: Option<Arc<dyn ConnectionObserver>>,
    /// The answer to a request that did not arrive in time, given the
    /// request's path when its first line has arrived. Written only where
    /// it can be: before any byte of a response, over HTTP/1.
    pub timeout_response: Option<TimeoutRenderer>,
}

/// Renders the `408` for a request whose path is known (or not).
pub type TimeoutRenderer =
    Arc<dyn Fn(Option<&str>) -> http::Response<Vec<u8>> + Send + Sync>;

impl ConnectionLimits {
    /// Upstream dropshot's behaviour: no cap, and a client timeout of a
    /// year.
    pub fn unlimited() -> ConnectionLimits {
        ConnectionLimits {
            client_timeout: Duration::from_secs(365 * 24 * 3600),
            max_connections: tokio::sync::Semaphore::MAX_PERMITS,
            observer: None,
            timeout_response: None,
        }
    }
}

impl std::fmt::Debug for ConnectionLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimits")
            .field("client_timeout", &self.client_timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// Why a connection was closed by the server before the client closed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedBecause {
    /// It sent nothing for the client timeout (before its first request or
    /// after a response).
    Idle,
    /// A request had begun but had not fully arrived in time.
    RequestTimeout,
    /// Its TLS handshake did not complete in time.
    TlsHandshakeTimeout,
}

/// Hooks for metrics and logs; every method has an empty default.
pub trait ConnectionObserver: Send + Sync {
    /// A connection was accepted and counts against the limit.
    fn opened(&self) {}
    /// A counted connection is gone (after its lingering close).
    fn closed(&self) {}
    /// A connection was closed at once: the limit was reached.
    fn refused(&self) {}
    /// The server closed a connection that ran out of time.
    fn timed_out(&self, _why: ClosedBecause) {}
    /// `accept` failed with something other than a client's own reset
    /// (e.g. `EMFILE`); the listener waits 100 ms before the next try.
    fn accept_failed(&self, _error: &io::Error) {}
}

/// Inserted into every request's extensions when the server has a client
/// timeout: the instant by which its body must have arrived (the client
/// timeout after the request's first byte).
#[derive(Clone, Copy, Debug)]
pub struct RequestDeadline(pub Instant);

/// At most this much of a request's start is kept, to find its path for
/// the `408`.
const PREFIX_KEEP: usize = 512;
/// A lingering close reads at most this much, for at most this long.
const LINGER_BYTES: usize = 8 * 1024 * 1024;
const LINGER_MAX: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Inner {
    /// Requests handed to the service and not yet answered.
    in_flight: usize,
    /// When the connection opened or its last response was produced.
    idle_since: Instant,
    /// The first byte of a request not yet handed to the service.
    first_byte: Option<Instant>,
    /// The start of that request (its request line), for the `408`.
    prefix: Vec<u8>,
}

/// One connection's state, shared by its [`TimedIo`] and its service.
#[derive(Debug)]
pub(crate) struct ConnState {
    inner: Mutex<Inner>,
    client_timeout: Duration,
}

impl ConnState {
    pub(crate) fn new(client_timeout: Duration) -> Arc<ConnState> {
        Arc::new(ConnState {
            inner: Mutex::new(Inner {
                in_flight: 0,
                idle_since: Instant::now(),
                first_byte: None,
                prefix: Vec::new(),
            }),
            client_timeout,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request is handed to the service: until [`InFlight`] is dropped,
    /// reads are the handler's to bound. Returns the request's deadline.
    pub(crate) fn begin(self: &Arc<Self>) -> (InFlight, RequestDeadline) {
        let mut inner = self.lock();
        inner.in_flight += 1;
        let started = inner.first_byte.take().unwrap_or_else(Instant::now);
        inner.prefix.clear();
        let deadline = RequestDeadline(started + self.client_timeout);
        (InFlight(Arc::clone(self)), deadline)
    }

    fn read(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        if inner.in_flight > 0 {
            return;
        }
        if inner.first_byte.is_none() {
            inner.first_byte = Some(Instant::now());
        }
        let room = PREFIX_KEEP.saturating_sub(inner.prefix.len());
        inner.prefix.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// When the client must have done its part, if it has one now.
    fn deadline(&self) -> Option<(Instant, ClosedBecause)> {
        let inner = self.lock();
        if inner.in_flight > 0 {
            return None;
        }
        Some(match inner.first_byte {
            Some(first) => {
                (first + self.client_timeout, ClosedBecause::RequestTimeout)
            }
            None => (
                inner.idle_since + self.client_timeout,
                ClosedBecause::Idle,
            ),
        })
    }

    /// The path of the request under way, if its request line is an
    /// HTTP/1 one and has arrived; `Err` when a `408` must not be written
    /// (no request begun, or not HTTP/1).
    fn pending_request_path(&self) -> Result<Option<String>, ()> {
        let inner = self.lock();
        let prefix = &inner.prefix;
        if prefix.is_empty() {
            return Err(());
        }
        let method_len = prefix
            .iter()
            .position(|b| !b.is_ascii_uppercase())
            .unwrap_or(prefix.len());
        if method_len == 0
            || (method_len < prefix.len() && prefix[method_len] != b' ')
            || prefix.starts_with(b"PRI ")
        {
            return Err(());
        }
        let rest = prefix.get(method_len + 1..).unwrap_or_default();
        let Some(end) = rest.iter().position(|b| *b == b' ') else {
            return Ok(None);
        };
        let target = String::from_utf8_lossy(&rest[..end]);
        let path = target.split(['?', '#']).next().unwrap_or_default();
        Ok(Some(path.to_owned()))
    }
}

/// A request being handled; see [`ConnState::begin`].
pub(crate) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.in_flight = inner.in_flight.saturating_sub(1);
        if inner.in_flight == 0 {
            inner.idle_since = Instant::now();
            inner.first_byte = None;
            inner.prefix.clear();
        }
    }
}

/// What a counted connection holds: its place under the limit, and the
/// observer to tell when it is gone.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    observer: Option<Arc<dyn ConnectionObserver>>,
}

impl Slot {
    pub(crate) fn new(
        permit: OwnedSemaphorePermit,
        observer: Option<Arc<dyn ConnectionObserver>>,
    ) -> Slot {
        if let Some(o) = &observer {
            o.opened();
        }
        Slot { _permit: permit, observer }
    }

    pub(crate) fn timed_out(&self, why: ClosedBecause) {
        if let Some(o) = &self.observer {
            o.timed_out(why);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(o) = &self.observer {
            o.closed();
        }
    }
}

/// The stream hyper reads and writes, with the bounds of the module docs.
pub(crate) struct TimedIo<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>
{
    io: Option<S>,
    state: Arc<ConnState>,
    slot: Option<Slot>,
    sleep: Pin<Box<Sleep>>,
    armed_for: Option<Instant>,
    renderer: Option<TimeoutRenderer>,
    /// hyper's last write did not complete: a response is half written.
    write_blocked: bool,
    /// The client closed its side; nothing to linger for.
    peer_done: bool,
    timed_out: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TimedIo<S> {
    pub(crate) fn new(
        io: S,
        state: Arc<ConnState>,
        slot: Slot,
        renderer: Option<TimeoutRenderer>,
    ) -> Self {
        TimedIo {
            io: Some(io),
            state,
            slot: Some(slot),
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(0))),
            armed_for: None,
            renderer,
            write_blocked: false,
            peer_done: false,
            timed_out: false,
        }
    }

    /// Whether the client has run out of time (polling the timer, so that
    /// this task wakes when it does).
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<ClosedBecause> {
        let (deadline, why) = self.state.deadline()?;
        if self.armed_for != Some(deadline) {
            self.sleep.as_mut().reset(deadline);
            self.armed_for = Some(deadline);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Some(why),
            Poll::Pending => None,
        }
    }

    /// Closes for `why`: writes the `408` first where one can be written.
    fn time_out(
        &mut self,
        cx: &mut Context<'_>,
        why: ClosedBecause,
    ) -> io::Error {
        self.timed_out = true;
        if let Some(slot) = &self.slot {
            slot.timed_out(why);
        }
        if !self.write_blocked {
            if let (Ok(path), Some(render)) =
                (self.state.pending_request_path(), &self.renderer)
            {
                let bytes = serialize(&render(path.as_deref()));
                if let Some(io) = self.io.as_mut() {
                    // Best effort: a 408 fits in any socket buffer; if it
                    // does not go now, the client is not reading anyway.
                    let _ = Pin::new(&mut *io).poll_write(cx, &bytes);
                    let _ = Pin::new(io).poll_flush(cx);
                }
            }
        }
        io::Error::new(io::ErrorKind::TimedOut, "client timeout")
    }
}

/// An HTTP/1.1 response as bytes, closing the connection.
fn serialize(response: &http::Response<Vec<u8>>) -> Vec<u8> {
    let status = response.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in response.headers() {
        if name == http::header::CONTENT_LENGTH
            || name == http::header::CONNECTION
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let body = response.body();
    out.extend_from_slice(
        format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len())
            .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead
    for TimedIo<S>
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client timeout",
            )));
        }
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if read.is_empty() {
                    this.peer_done = true;
                } else {
                    this.state.read(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.peer_done = true;
                Poll::Ready(Err(e))
            }
            Poll::Pending => match this.expired(cx) {
                Some(why) => Poll::Ready(Err(this.time_out(cx, why))),
                None => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite
    for TimedIo<S>
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match Pin::new(io).poll_write(cx, data) {
            Poll::Pending => {
                this.write_blocked = true;
                // A client that stops reading a response is as silent as
                // one that sends nothing.
                match this.expired(cx) {
                    Some(why) => Poll::Ready(Err(this.time_out(cx, why))),
                    None => Poll::Pending,
                }
            }
            ready => {
                this.write_blocked = false;
                ready
            }
        }
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(io) = this.io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match Pin::new(io).poll_write_vectored(cx, bufs) {
            Poll::Pending => {
                this.write_blocked = true;
                match this.expired(cx) {
                    Some(why) => Poll::Ready(Err(this.time_out(cx, why))),
                    None => Poll::Pending,
                }
            }
            ready => {
                this.write_blocked = false;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for TimedIo<S> {
    /// The lingering close: our side is shut, and what the client still
    /// sends is read and dropped (bounded), so that the answer already
    /// written is not lost to a reset.
    fn drop(&mut self) {
        let (Some(mut io), Some(slot)) = (self.io.take(), self.slot.take())
        else {
            return;
        };
        if self.peer_done {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let linger = self.state.client_timeout.min(LINGER_MAX);
        runtime.spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(linger, async {
                let _ = io.shutdown().await;
                let mut buf = vec![0u8; 16 * 1024];
                let mut read = 0;
                while read < LINGER_BYTES {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                }
            })
            .await;
        });
    }
}
