//! The playback edge: `/out/v1/…` routes, CORS preflight, the DASH UTC timing endpoint;
//! a [`Reply`] becomes a response with its cache time and MediaPackage headers (and a byte
//! range, [`range`]); a [`PlaybackError`] its status. Metrics and egress access logs for
//! requests that reached a real endpoint.

use super::{range, EdgeError, RequestInfo};
use crate::app::PlaybackServices;
use crate::model::OriginEndpoint;
use crate::origin::{self, PlaybackError, Reply, ReplyBody, Viewer, SEGMENT_MAX_AGE};
use crate::time::UnixMillis;
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;

/// The request id on every playback and ingest response (MediaPackage v1's header).
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-mediapackage-request-id");

/// Which ingest endpoint delivered a segment's inputs (MediaPackage's `ActiveInput`).
const ACTIVE_INPUT: HeaderName = HeaderName::from_static("x-sluice-active-input");

/// The playback routes.
pub fn router(app: PlaybackServices) -> Router {
    Router::new()
        .route("/out/v1/utc", get(utc_time).head(utc_time))
        .route("/out/v1/{endpoint}/{file}", get(handle).options(preflight))
        .route("/out/v1/{endpoint}/{dir}/{file}", get(handle_nested).options(preflight))
        .with_state(app)
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

async fn handle(
    State(app): State<PlaybackServices>,
    Path((endpoint_id, file)): Path<(String, String)>,
    request: RequestInfo,
) -> Response {
    respond(app, endpoint_id, None, file, request).await
}

async fn handle_nested(
    State(app): State<PlaybackServices>,
    Path((endpoint_id, dir, file)): Path<(String, String, String)>,
    request: RequestInfo,
) -> Response {
    respond(app, endpoint_id, Some(dir), file, request).await
}

async fn respond(
    app: PlaybackServices,
    endpoint_id: String,
    dir: Option<String>,
    file: String,
    request: RequestInfo,
) -> Response {
    let headers = &request.headers;
    let viewer = Viewer::of(headers, request.peer, app.config.client_ip_from_forwarded_for);
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let request_id = crate::model::random_hex();
    let span = tracing::info_span!("playback", endpoint = %endpoint_id, file = %file, request_id = %request_id);
    if let Some(refusal) = refused_query(request.uri.query()) {
        let mut response = EdgeError::new(StatusCode::BAD_REQUEST, refusal).into_response();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, v);
        }
        return response;
    }
    let mut reached: Option<OriginEndpoint> = None;
    let mut response = match origin::serve(&app, &endpoint_id, dir.as_deref(), &file, &viewer, &mut reached)
        .instrument(span)
        .await
    {
        Ok(reply) => range::apply(headers, render(reply)).await,
        Err(e) => {
            let e = EdgeError::from(e);
            tracing::debug!(status = e.status.as_u16(), error = %e.message, "playback error");
            e.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    // Metrics and access logs only for requests that reached a real endpoint (no
    // dimension values made up by whoever sends requests).
    let Some(endpoint) = reached else { return response };
    let channel = &endpoint.channel_id;
    let now = crate::time::UnixMillis::now();
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| axum::body::HttpBody::size_hint(response.body()).exact())
        .unwrap_or(0);
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    crate::metrics::emit(|| crate::metrics::egress(now.0, channel, &endpoint_id, status, bytes, elapsed * 1000.0));
    if let Some(inputs) = response.headers().get(ACTIVE_INPUT).and_then(|v| v.to_str().ok()) {
        for input in inputs.split(',') {
            crate::metrics::emit(|| crate::metrics::active_input(now.0, input, &endpoint_id));
        }
    }
    if let Some((group, channel_arn)) = app.egress_logs.of(&app, channel).await {
        let config = &app.config;
        crate::access_log::Entry {
            log_group: &group,
            at: now,
            processing_seconds: elapsed,
            client_ip: viewer.ip.map(std::net::IpAddr::V4).or(request.peer),
            status,
            received_bytes: 0,
            sent_bytes: bytes,
            method: request.method.as_str(),
            request: crate::access_log::request_url(headers, &request.uri),
            protocol: crate::access_log::protocol(request.version),
            user_agent: crate::access_log::user_agent(headers),
            account: &config.account_id,
            channel_id: channel,
            channel_arn: &channel_arn,
            domain_name: "",
            request_id: &request_id,
            endpoint_id: &endpoint_id,
            endpoint_arn: &endpoint.arn(&config.region, &config.account_id),
        }
        .write();
    }
    response
}

/// MediaPackage's playback query parameters that Sluice does not implement yet. A player
/// or CDN that sends one expects a different manifest than the full live one, so they are
/// refused rather than ignored; other parameters (CDN tokens, cache busters) are ignored,
/// as MediaPackage ignores them.
const NOT_YET: [(&str, &str); 4] = [
    ("start", "time-shift windows (start/end)"),
    ("end", "time-shift windows (start/end)"),
    ("aws.manifestfilter", "manifest filtering"),
    (
        "aws.manifestsettings",
        "manifest settings (a MediaPackage v2 parameter)",
    ),
];

/// The message refusing a query that names a parameter of [`NOT_YET`], if it does.
fn refused_query(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find_map(|(name, _)| {
        let (_, what) = NOT_YET.iter().find(|(n, _)| name.eq_ignore_ascii_case(n))?;
        Some(format!(
            "query parameter {name:?} asks for {what}, which Sluice does not support yet; \
             request the manifest without it for the live window"
        ))
    })
}

/// The response for a reply: manifests cached for their time, segments immutable and
/// range-capable, every answer readable cross-origin.
fn render(reply: Reply) -> Response {
    let Reply {
        content_type,
        body,
        max_age,
        last_sequence,
        last_updated,
        active_input,
    } = reply;
    let (body, length) = match body {
        ReplyBody::Text(text) => (axum::body::Body::from(text), None),
        ReplyBody::Parts(parts) => {
            // Streamed in order without joining them, with the Content-Length a streamed
            // body does not carry.
            let length: usize = parts.iter().map(Bytes::len).sum();
            let parts: Vec<Result<Bytes, std::convert::Infallible>> = parts.into_iter().map(Ok).collect();
            (
                axum::body::Body::from_stream(futures_util::stream::iter(parts)),
                Some(length),
            )
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let cache = format!("max-age={}", max_age.unwrap_or(u64::from(SEGMENT_MAX_AGE)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cache).expect("ASCII"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    if max_age.is_none() {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Some(seq) = last_sequence {
        headers.insert(
            HeaderName::from_static("x-mediapackage-manifest-last-sequence"),
            HeaderValue::from(seq),
        );
    }
    if let Some(at) = last_updated {
        headers.insert(
            HeaderName::from_static("x-mediapackage-manifest-last-updated"),
            HeaderValue::from(at.0),
        );
    }
    if let Some(inputs) = active_input {
        let value = HeaderValue::from_str(&inputs).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        headers.insert(ACTIVE_INPUT, value);
    }
    response
}

impl From<PlaybackError> for EdgeError {
    fn from(e: PlaybackError) -> EdgeError {
        let (status, message) = match e {
            PlaybackError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            PlaybackError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            PlaybackError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            PlaybackError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
            PlaybackError::Store(e) => return EdgeError::from(e),
        };
        EdgeError::new(status, message)
    }
}

/// `GET /out/v1/utc`: the server's clock for DASH `UTCTiming` (ISO 8601, also in `Date`).
pub async fn utc_time() -> Response {
    let now = UnixMillis::now();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
            (
                header::DATE,
                now.to_datetime().format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            ),
        ],
        now.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::refused_query;

    #[test]
    fn unimplemented_parameters_are_refused_and_others_ignored() {
        for query in [
            "start=1503091134",
            "end=2017-08-18T21%3A18%3A54%2B00%3A00",
            "aws.manifestfilter=video_height%3A1-720",
            "AWS.ManifestFilter=audio_language%3Afr",
            "token=abc&aws.manifestsettings=time_delay%3A30",
            "st%61rt=1",
        ] {
            assert!(refused_query(Some(query)).is_some(), "{query}");
        }
        for query in [
            None,
            Some(""),
            Some("m=1700000000"),
            Some("token=abc&starting=1"),
            Some("x"),
        ] {
            assert_eq!(refused_query(query), None, "{query:?}");
        }
    }
}
