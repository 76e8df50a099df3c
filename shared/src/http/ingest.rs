//! The ingest edge: `/in/v2/{channel}/{ingest}/…` requests become [`ingest::Upload`]s.
//!
//! Order per request: find channel and ingest endpoint (404), authenticate from headers
//! alone (401 before `100 Continue` is ever sent, because the body is not polled), check
//! the path and declared size (400, 413), read the body with the same cap, then hand the
//! upload to the ingest flow, whose outcome or [`IngestError`] becomes the status here.
//! The request runs detached, with its metrics and access log.

use super::EdgeError;
use crate::app::IngestServices;
use crate::catalog::Catalog;
use crate::ingest::{self, auth, IngestError, Upload};
use crate::model::IngestEndpoint;
use crate::time::UnixMillis;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;

/// The ingest routes.
pub fn router(app: IngestServices) -> Router {
    Router::new()
        .route("/in/v2/{channel}/{ingest}/{*path}", any(handle))
        .with_state(app)
}

async fn handle(
    State(app): State<IngestServices>,
    Path((channel, ingest_id, path)): Path<(String, String, String)>,
    request: crate::http::RequestInfo,
    body: Body,
) -> Response {
    let crate::http::RequestInfo {
        method,
        uri,
        version,
        headers,
        peer,
    } = request;
    use tracing::Instrument;
    let span = tracing::info_span!("ingest", channel = %channel, ingest_endpoint = %ingest_id, path = %path);
    // Run detached: encoders such as ffmpeg close the connection right after the last
    // body byte without waiting for the response, and the server then drops this future.
    // Once the body is complete the upload must still be stored and indexed.
    let started = std::time::Instant::now();
    let request_id = crate::model::random_hex();
    let id = request_id.clone();
    let work = async move {
        let request_id = id;
        let mut reached: Option<crate::model::Channel> = None;
        let mut response = match ingest(
            &app,
            &channel,
            &ingest_id,
            &path,
            &method,
            &uri,
            &headers,
            body,
            &mut reached,
        )
        .await
        {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "ingest rejected");
                e.into_response()
            }
        };
        // Metrics only for uploads a real ingest endpoint accepted.
        let received = response.extensions_mut().remove::<IngressSize>();
        let elapsed = started.elapsed().as_secs_f64();
        let now = UnixMillis::now();
        if let Some(IngressSize(bytes)) = received {
            crate::metrics::emit(|| crate::metrics::ingress(now.0, &channel, &ingest_id, bytes, elapsed * 1000.0));
        }
        // Access logs for every request to a real channel that has them on.
        if let Some(group) = reached.as_ref().and_then(|c| c.ingress_log_group.as_deref()) {
            let declared = || headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok();
            let config = &app.config;
            crate::access_log::Entry {
                log_group: group,
                at: now,
                processing_seconds: elapsed,
                // X-Forwarded-For only where it is configured to be trusted, as for egress.
                client_ip: if config.client_ip_from_forwarded_for {
                    crate::access_log::client_ip(&headers, peer)
                } else {
                    peer
                },
                status: response.status().as_u16(),
                received_bytes: received.map(|r| r.0).or_else(declared).unwrap_or(0),
                sent_bytes: response
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0),
                method: method.as_str(),
                request: crate::access_log::request_url(&headers, &uri),
                protocol: crate::access_log::protocol(version),
                user_agent: crate::access_log::user_agent(&headers),
                account: &config.account_id,
                channel_id: &channel,
                channel_arn: &reached
                    .as_ref()
                    .expect("checked above")
                    .arn(&config.region, &config.account_id),
                domain_name: "",
                request_id: &request_id,
                endpoint_id: &ingest_id,
                endpoint_arn: "-",
            }
            .write();
        }
        response
    };
    let mut response = match tokio::spawn(work.instrument(span)).await {
        Ok(response) => response,
        Err(e) => EdgeError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("ingest task failed: {e}")).into_response(),
    };
    if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(super::playback::REQUEST_ID, v);
    }
    response
}

#[allow(clippy::too_many_arguments)] // the request's parts, and the channel it reached
async fn ingest(
    app: &IngestServices,
    channel_id: &str,
    ingest_id: &str,
    path: &str,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Body,
    reached: &mut Option<crate::model::Channel>,
) -> Result<Response, EdgeError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let channel = catalog.channel(channel_id).await?.ok_or_else(|| {
        EdgeError::not_found(format!("no channel {channel_id:?}; create it with CreateChannel first"))
    })?;
    *reached = Some(channel.clone());
    let endpoint = channel.ingest_endpoint(ingest_id).ok_or_else(|| {
        EdgeError::not_found(format!(
            "channel {channel_id:?} has no ingest endpoint {ingest_id:?}; use a URL from DescribeChannel"
        ))
    })?;
    let target = auth::Target::new(uri, &app.config.ingest_base_url);
    authenticate(endpoint, method, target, headers)?;

    match *method {
        Method::PUT | Method::POST => {}
        Method::OPTIONS => {
            return Ok((
                StatusCode::OK,
                [
                    (header::ALLOW, "OPTIONS, PUT, POST, DELETE, MKCOL"),
                    (header::HeaderName::from_static("dav"), "1"),
                ],
            )
                .into_response())
        }
        Method::DELETE => return Ok(StatusCode::NO_CONTENT.into_response()),
        _ if method.as_str() == "MKCOL" => return Ok(StatusCode::CREATED.into_response()),
        _ => {
            return Err(EdgeError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not supported on ingest; use PUT or POST"),
            ))
        }
    }
    let path = ingest::check_path(&channel, endpoint, path)?;
    let body = read_body(headers, body, app.config.max_segment_bytes).await?;
    let upload = Upload {
        channel: &channel,
        endpoint,
        path: &path,
        body,
        now: UnixMillis::now(),
    };
    let size = upload.body.len() as u64;
    let status = match ingest::accept(app, upload).await? {
        ingest::Accepted::Stored => StatusCode::CREATED,
        ingest::Accepted::Unchanged => StatusCode::NO_CONTENT,
    };
    let mut response = status.into_response();
    response.extensions_mut().insert(IngressSize(size));
    Ok(response)
}

/// Body bytes of an accepted upload, for the `IngressBytes` metric.
#[derive(Clone, Copy)]
struct IngressSize(u64);

fn authenticate(
    endpoint: &IngestEndpoint,
    method: &Method,
    target: auth::Target,
    headers: &HeaderMap,
) -> Result<(), EdgeError> {
    let now = UnixMillis::now().as_secs();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let stale = match auth::check(authorization, method.as_str(), &target, endpoint, now) {
        auth::AuthResult::Ok => return Ok(()),
        auth::AuthResult::Stale => true,
        auth::AuthResult::Denied => false,
    };
    let message = if authorization.is_some() && !stale {
        "wrong ingest credentials: use the username and password of this ingest endpoint from DescribeChannel"
    } else {
        "ingest needs HTTP Digest or Basic authentication with this ingest endpoint's username and password"
    };
    Err(EdgeError::new(StatusCode::UNAUTHORIZED, message).with_challenges(auth::challenges(endpoint, now, stale)))
}

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, EdgeError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || EdgeError::new(StatusCode::PAYLOAD_TOO_LARGE, too_large_message(declared, limit));
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let source_is_limit =
                std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if source_is_limit || e.to_string().contains("length limit") {
                Err(too_large())
            } else {
                Err(EdgeError::bad_request(format!("could not read the request body: {e}")))
            }
        }
    }
}

/// What a 413 says: the limit, where it comes from, and what to change in the encoder.
fn too_large_message(declared: Option<u64>, limit: usize) -> String {
    let body = declared.map_or("the request body".to_owned(), |n| {
        format!("the request body ({n} bytes)")
    });
    // How long a segment may last at a given bit rate to fit.
    let seconds_at = |mbps: f64| limit as f64 * 8.0 / (mbps * 1e6);
    format!(
        "{body} is larger than this deployment's ingest limit of {limit} bytes (SLUICE_MAX_SEGMENT_BYTES; \
         in AWS at most 4500000, because a Lambda request carries at most 6 MB and API Gateway base64-encodes \
         binary bodies). Make segments shorter or the bit rate lower: {limit} bytes hold {:.1} s at 8 Mbit/s \
         or {:.1} s at 15 Mbit/s (ffmpeg -hls_time, MediaLive HLS output group \"Segment length\"). \
         In AWS, a stack deployed with StagedIngest=Enabled takes segments up to 10 MB (API Gateway writes \
         them to S3); sluice-local takes --max-segment-bytes",
        seconds_at(8.0),
        seconds_at(15.0)
    )
}

impl From<IngestError> for EdgeError {
    fn from(e: IngestError) -> EdgeError {
        let (status, message) = match e {
            IngestError::Invalid(m) => (StatusCode::BAD_REQUEST, m),
            IngestError::Conflict(m) | IngestError::NotYet(m) => (StatusCode::CONFLICT, m),
            IngestError::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            IngestError::Corrupt(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
            IngestError::Store(e) => return EdgeError::from(e),
        };
        EdgeError::new(status, message)
    }
}
