//! The accept loop and what each connection may hold: HTTP/1.1 connections served by hyper,
//! with a header read timeout, an idle keep-alive timeout and a cap on open connections that
//! makes room by closing the longest-idle connection, so that a flood of slow or idle clients
//! cannot lock out a health check (see `docs/server.md`, "Connections").
//!
//! Each connection carries a small [`ConnState`]: how many of its requests are in flight, when
//! it last became idle, and when the first byte of its next request's headers arrived. The
//! connection's task sleeps until the earliest moment it could expire and checks again then,
//! so a busy connection costs no timer work per request and an idle server no wake-ups.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::config::ConnectionLimits;
use crate::sync::lock;

/// How long the accept loop waits when the process is out of file descriptors and no
/// connection can be closed to make room.
const FD_EXHAUSTED_PAUSE: Duration = Duration::from_millis(20);
/// At most one "connection limit reached" warning per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Milliseconds since the server started (0 means "never" in [`ConnState`]).
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> u64 {
        // +1: a real time is never 0.
        self.0.elapsed().as_millis() as u64 + 1
    }

    fn instant(self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms.saturating_sub(1))
    }
}

/// One connection, as its task, its requests and the accept loop see it.
struct ConnState {
    id: u64,
    clock: Clock,
    /// Requests whose response has not been fully written (the body dropped).
    in_flight: AtomicU32,
    /// Whether a request has been read on this connection (then it is a kept-alive one).
    served: AtomicBool,
    /// When the connection was accepted or its last response finished (ms, [`Clock`]).
    idle_since: AtomicU64,
    /// When the first byte of the next request's headers arrived while idle; 0 if none has.
    head_started: AtomicU64,
    /// Close now (another connection needs the room).
    evict: Notify,
}

impl ConnState {
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When this connection should be closed if nothing changes; `None` while a request runs.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<u64> {
        if !self.is_idle() {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        let header_ms = limits.header_read_timeout.as_millis() as u64;
        Some(if !self.served.load(Ordering::Acquire) {
            // A new connection: its first request's headers, complete, within the timeout.
            self.idle_since.load(Ordering::Acquire) + header_ms
        } else if head != 0 {
            head + header_ms
        } else {
            self.idle_since.load(Ordering::Acquire) + limits.idle_timeout.as_millis() as u64
        })
    }
}

/// Every open connection, for the cap and for graceful shutdown.
struct Registry {
    conns: std::sync::Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Signalled when the last connection closes.
    empty: Notify,
}

impl Registry {
    fn len(&self) -> usize {
        lock(&self.conns).len()
    }

    fn remove(&self, id: u64) {
        let mut conns = lock(&self.conns);
        conns.remove(&id);
        if conns.is_empty() {
            self.empty.notify_waiters();
        }
    }

    /// Closes the connection that has been idle longest (its task drops the socket), and
    /// forgets it at once so that the new connection may take its place. False if every
    /// connection has a request in flight.
    fn evict_one(&self) -> bool {
        let mut conns = lock(&self.conns);
        let victim = conns
            .values()
            .filter(|c| c.is_idle())
            .min_by_key(|c| {
                let head = c.head_started.load(Ordering::Relaxed);
                if head == 0 {
                    c.idle_since.load(Ordering::Relaxed)
                } else {
                    head
                }
            })
            .map(|c| c.id);
        let Some(victim) = victim.and_then(|id| conns.remove(&id)) else {
            return false;
        };
        victim.evict.notify_one();
        true
    }

    async fn wait_empty(&self) {
        loop {
            let notified = self.empty.notified();
            if self.len() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets every
/// connection finish its requests (idle ones close at once), and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let clock = Clock(Instant::now());
    let registry = Arc::new(Registry {
        conns: std::sync::Mutex::new(HashMap::new()),
        empty: Notify::new(),
    });
    let (stop, stopping) = watch::channel(false);
    let mut next_id = 0u64;
    let mut last_warning: Option<Instant> = None;
    let mut warn = |what: &str| {
        if last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            last_warning = Some(Instant::now());
            tracing::warn!(max_connections, "{what}");
        }
    };
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_out_of_fds(&e) => {
                warn("out of file descriptors: closing the longest-idle connection");
                if !registry.evict_one() {
                    tokio::time::sleep(FD_EXHAUSTED_PAUSE).await;
                }
                continue;
            }
            // The client gave up before we accepted: nothing to do.
            Err(_) => continue,
        };
        if registry.len() >= max_connections && !registry.evict_one() {
            warn("connection limit reached and every connection is busy: refusing a connection");
            continue;
        }
        if registry.len() + 1 >= max_connections {
            warn("connection limit reached: closing the longest-idle connection for each new one");
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let conn = Arc::new(ConnState {
            id: next_id,
            clock,
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(clock.now()),
            head_started: AtomicU64::new(0),
            evict: Notify::new(),
        });
        lock(&registry.conns).insert(next_id, Arc::clone(&conn));
        tokio::spawn(serve_connection(
            stream,
            router.clone(),
            conn,
            limits,
            Arc::clone(&registry),
            stopping.clone(),
        ));
    }
    drop(listener);
    stop.send_replace(true);
    registry.wait_empty().await;
}

/// `EMFILE`/`ENFILE` (and the buffer-space errors that come with exhaustion).
fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    conn: Arc<ConnState>,
    limits: ConnectionLimits,
    registry: Arc<Registry>,
    mut stopping: watch::Receiver<bool>,
) {
    let io = TokioIo::new(TrackedIo {
        inner: stream,
        conn: Arc::clone(&conn),
    });
    let service = ConnService {
        router,
        conn: Arc::clone(&conn),
    };
    let http = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(http);
    let first = conn.deadline(&limits).unwrap_or_default();
    let timer = tokio::time::sleep_until(conn.clock.instant(first));
    tokio::pin!(timer);
    let mut draining = false;
    loop {
        tokio::select! {
            result = http.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            () = &mut timer => {
                let now = conn.clock.now();
                match conn.deadline(&limits) {
                    Some(at) if at <= now => {
                        tracing::debug!("closing an idle connection (timeout)");
                        break;
                    }
                    Some(at) => timer.as_mut().reset(conn.clock.instant(at)),
                    // A request runs: look again once it could have ended and timed out.
                    None => timer.as_mut().reset(conn.clock.instant(
                        now + limits.header_read_timeout.min(limits.idle_timeout).as_millis() as u64,
                    )),
                }
            }
            () = conn.evict.notified() => {
                if conn.is_idle() {
                    break;
                }
                // A request arrived since it was chosen: finish it, then close.
                http.as_mut().graceful_shutdown();
            }
            changed = stopping.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    http.as_mut().graceful_shutdown();
                }
            }
        }
    }
    registry.remove(conn.id);
}

/// The socket, noting when the first byte of a request's headers arrives on an idle connection.
struct TrackedIo {
    inner: TcpStream,
    conn: Arc<ConnState>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let conn = &this.conn;
        if buf.filled().len() > before
            && conn.is_idle()
            && conn.head_started.load(Ordering::Relaxed) == 0
        {
            conn.head_started.store(conn.clock.now(), Ordering::Release);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The router, marking the connection busy from a request's headers to its response's end.
struct ConnService {
    router: Router,
    conn: Arc<ConnState>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let conn = &self.conn;
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.served.store(true, Ordering::Relaxed);
        conn.head_started.store(0, Ordering::Release);
        // The router is always ready (axum documents `poll_ready` as always `Ready`).
        let inner = tower::Service::call(&mut self.router.clone(), request);
        ResponseFuture {
            inner,
            guard: Some(InFlight(Arc::clone(conn))),
        }
    }
}

pub struct ResponseFuture {
    inner: axum::routing::future::RouteFuture<Infallible>,
    guard: Option<InFlight>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<TrackedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Ok(response) = ready!(Pin::new(&mut this.inner).poll(cx));
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|body| TrackedBody {
            body,
            _guard: guard,
        })))
    }
}

/// A request in flight on its connection; dropped with the response body (or the request).
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_since.store(conn.clock.now(), Ordering::Release);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection marked busy until it has been written.
pub struct TrackedBody {
    body: Body,
    _guard: Option<InFlight>,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
