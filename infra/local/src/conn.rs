//! The HTTP/1.1 accept loop of `sluice-local`, with connection limits: a bound on open
//! connections, a deadline for each request head, an idle keep-alive timeout and a
//! minimum rate for request bodies. Without them a client that opens connections and
//! sends nothing (or one header byte every few seconds, or half an upload) holds a file
//! descriptor each, and about a thousand of them stop the server from accepting anyone.
//!
//! hyper's own `header_read_timeout` is not used: it starts when a connection goes idle,
//! so it would also be the keep-alive timeout, and encoders that upload a segment every
//! 2 to 6 s need a keep-alive far longer than a request head needs to arrive.

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The limits; a `None` timeout is off.
#[derive(Clone, Debug)]
pub struct Limits {
    /// From accept (or from the first byte of a later request) to the end of its head.
    pub header_timeout: Option<Duration>,
    /// Between the end of a response and the first byte of the next request.
    pub idle_timeout: Option<Duration>,
    /// A request body must deliver `body_min_bytes` (or end) within each such window,
    /// counted from when the handler starts reading it; otherwise 408.
    pub body_timeout: Option<Duration>,
    pub body_min_bytes: u64,
    /// Open connections; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

/// HTTP/1.1 with keep-alive and half-close allowed: ffmpeg shuts down its write side
/// after the last chunk of a PUT, and the request must still be answered, not dropped.
/// The body is only read when a handler reads it, so `Expect: 100-continue` uploads are
/// still answered (401, 404, 413) before `100 Continue` is sent.
/// Shortest time between two "connection limit reached" warnings.
const LIMIT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

pub async fn serve(listener: tokio::net::TcpListener, router: axum::Router, limits: Limits) -> anyhow::Result<()> {
    let limits = Arc::new(limits);
    let router = TowerToHyperService::new(router);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // One warning per minute at most: while a backlog drains, slots free and fill again
    // many times, and a line per refill would be noise.
    let mut warned: Option<std::time::Instant> = None;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_INTERVAL) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit ({}) reached; new connections wait until one closes (see --max-connections)",
                        limits.max_connections
                    );
                    warned = Some(std::time::Instant::now());
                }
                slots.clone().acquire_owned().await?
            }
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (router, limits) = (router.clone(), limits.clone());
        tokio::spawn(async move {
            connection(stream, peer, router, limits).await;
            drop(permit);
        });
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: TowerToHyperService<axum::Router>,
    limits: Arc<Limits>,
) {
    let activity = Arc::new(Activity::new());
    let service = {
        let (activity, limits) = (activity.clone(), limits.clone());
        hyper::service::service_fn(move |request| respond(request, peer, &router, &activity, &limits))
    };
    let io = TokioIo::new(Watched {
        io: stream,
        activity: activity.clone(),
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    loop {
        let (deadline, waiting_for) = activity.deadline(&limits);
        let expired = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = activity.changed.notified() => {}
            () = expired => {
                // Re-checked: the phase may have changed since the deadline was taken.
                if activity.deadline(&limits).0.is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, "closing the connection: {waiting_for} took too long");
                    return;
                }
            }
        }
    }
}

/// One request: the peer address for handlers, the body under the rate limit, a 408 as
/// soon as the body stalls, and the connection marked busy until the response is sent.
fn respond(
    mut request: Request<Incoming>,
    peer: SocketAddr,
    router: &TowerToHyperService<axum::Router>,
    activity: &Arc<Activity>,
    limits: &Limits,
) -> impl Future<Output = Result<Response<Tracked>, Infallible>> + Send + 'static {
    let busy = Busy::start(activity.clone());
    // The peer address, for endpoint whitelists and access logs.
    request.extensions_mut().insert(ConnectInfo(peer));
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let (stalled_tx, stalled_rx) = oneshot::channel();
    let request = request.map(|body| RateLimited {
        inner: body,
        window: limits.body_timeout,
        min_bytes: limits.body_min_bytes.max(1),
        received: 0,
        deadline: None,
        stalled: Some(stalled_tx),
        failed: false,
    });
    let handled = hyper::service::Service::call(router, request);
    let (window, min_bytes) = (limits.body_timeout.unwrap_or_default(), limits.body_min_bytes.max(1));
    async move {
        let mut stalled_rx = stalled_rx;
        let stalled = async {
            match (&mut stalled_rx).await {
                Ok(()) => (),
                // The body ended or was dropped without stalling.
                Err(_) => std::future::pending().await,
            }
        };
        let handled = tokio::select! {
            biased;
            () = stalled => None,
            response = handled => match response {
                Ok(response) => Some(response),
                Err(never) => match never {},
            },
        };
        // The handler may have answered the stall itself (400, 500): it is still a 408.
        let response = match handled {
            Some(response) if stalled_rx.try_recv().is_err() => response,
            _ => {
                tracing::warn!(%peer, %method, %path, "request body stalled; answered 408 and closed the connection");
                body_timeout_response(window, min_bytes)
            }
        };
        Ok(response.map(|body| Tracked {
            inner: body,
            _busy: busy,
        }))
    }
}

fn body_timeout_response(window: Duration, min_bytes: u64) -> Response<axum::body::Body> {
    let message = format!(
        "request body too slow: fewer than {min_bytes} bytes arrived in {} s, so the server stopped waiting \
         and closed the connection; check the sender's network and retry the upload\n",
        window.as_secs_f64()
    );
    let mut response = Response::new(axum::body::Body::from(message));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// What a connection is doing, for its deadline.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Nothing received since `since` (the accept, or the end of the last response).
    Waiting { since: Instant, first: bool },
    /// Part of a request head received; the whole head is due `header_timeout` after `since`.
    Head { since: Instant },
    /// Requests being answered: no connection deadline (the body rate limit applies).
    Busy(usize),
}

struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                first: true,
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, next: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let before = std::mem::discriminant(&*phase);
        *phase = next(*phase);
        if std::mem::discriminant(&*phase) != before {
            self.changed.notify_one();
        }
    }

    fn received_bytes(&self) {
        self.update(|phase| match phase {
            // The first request's head is due `header_timeout` after the accept.
            Phase::Waiting { since, first: true } => Phase::Head { since },
            Phase::Waiting { first: false, .. } => Phase::Head { since: Instant::now() },
            other => other,
        });
    }

    fn deadline(&self, limits: &Limits) -> (Option<Instant>, &'static str) {
        match *self.phase.lock().unwrap_or_else(|e| e.into_inner()) {
            Phase::Waiting { since, first: true } => (
                limits.header_timeout.map(|t| since + t),
                "the first request after connecting",
            ),
            Phase::Waiting { since, first: false } => (
                limits.idle_timeout.map(|t| since + t),
                "the next request on a keep-alive connection",
            ),
            Phase::Head { since } => (limits.header_timeout.map(|t| since + t), "the request head"),
            Phase::Busy(_) => (None, "the response"),
        }
    }
}

/// Marks the connection busy from the request head to the end of the response body.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Busy {
        activity.update(|phase| match phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Waiting {
                since: Instant::now(),
                first: false,
            },
        });
    }
}

/// The socket, noting when bytes arrive.
struct Watched {
    io: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received_bytes();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request body that must deliver `min_bytes` (or end) within each `window` once the
/// handler starts reading it. When it does not, it fails and tells `respond`, which
/// answers 408 whatever the handler makes of the error.
struct RateLimited {
    inner: Incoming,
    window: Option<Duration>,
    min_bytes: u64,
    received: u64,
    deadline: Option<Pin<Box<Sleep>>>,
    stalled: Option<oneshot::Sender<()>>,
    failed: bool,
}

#[derive(Debug)]
struct Stalled {
    window: Duration,
    min_bytes: u64,
}

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body too slow: fewer than {} bytes in {} s",
            self.min_bytes,
            self.window.as_secs_f64()
        )
    }
}

impl std::error::Error for Stalled {}

impl Body for RateLimited {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        if let (None, Some(window)) = (&this.deadline, this.window) {
            // The window starts when the handler first reads (and `100 Continue` is sent).
            this.deadline = Some(Box::pin(tokio::time::sleep(window)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(window), Some(deadline)) = (frame.data_ref(), this.window, &mut this.deadline)
                {
                    this.received += data.len() as u64;
                    if this.received >= this.min_bytes {
                        this.received = 0;
                        deadline.as_mut().reset(Instant::now() + window);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.deadline = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let expired = this.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.failed = true;
                if let Some(tx) = this.stalled.take() {
                    let _ = tx.send(());
                }
                Poll::Ready(Some(Err(Box::new(Stalled {
                    window: this.window.unwrap_or_default(),
                    min_bytes: this.min_bytes,
                }))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps the connection busy until hyper has sent (or dropped) it.
struct Tracked {
    inner: axum::body::Body,
    _busy: Busy,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
