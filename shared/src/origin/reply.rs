//! How playback answers are shaped: content types, cache times, the request id and the
//! `X-Sluice-Active-Input` header, chunked segment bodies.

use crate::model::SegmentRecord;
use crate::time::Ticks;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// Segments are immutable once listed: cache them for the longest startover window.
pub const SEGMENT_MAX_AGE: u32 = 1_209_600;

pub(crate) const HLS_TYPE: &str = "application/vnd.apple.mpegurl";

/// The request id on every playback and ingest response (MediaPackage v1's header).
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-mediapackage-request-id");

/// When the newest segment listed was received, in epoch milliseconds (MediaPackage's
/// `X-MediaPackage-Manifest-Last-Updated`).
pub(crate) fn with_last_updated(mut response: Response, at: Option<crate::time::UnixMillis>) -> Response {
    if let Some(at) = at {
        response.headers_mut().insert(
            HeaderName::from_static("x-mediapackage-manifest-last-updated"),
            HeaderValue::from(at.0),
        );
    }
    response
}

/// Half an output segment duration, at least one second (spec §6.7).
pub(crate) fn playlist_max_age(input: Ticks, k: u64) -> u64 {
    ((input.as_secs_f64() * k as f64) / 2.0).floor().max(1.0) as u64
}

pub(crate) fn playlist_response(body: String, max_age: u64, last_sequence: Option<u64>) -> Response {
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HLS_TYPE.to_owned()),
            (header::CACHE_CONTROL, format!("max-age={max_age}")),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
        ],
        body,
    )
        .into_response();
    if let Some(seq) = last_sequence {
        response.headers_mut().insert(
            HeaderName::from_static("x-mediapackage-manifest-last-sequence"),
            HeaderValue::from(seq),
        );
    }
    response
}

/// Which ingest endpoint delivered a segment's inputs (MediaPackage's `ActiveInput`).
pub(crate) const ACTIVE_INPUT: HeaderName = HeaderName::from_static("x-sluice-active-input");

/// The ingest endpoints of `records`, in order, without repeats, comma-separated.
pub(crate) fn active_input<'a>(records: impl Iterator<Item = &'a SegmentRecord>) -> HeaderValue {
    let mut ids: Vec<&str> = Vec::new();
    for record in records {
        if !ids.contains(&record.ingest_endpoint.as_str()) {
            ids.push(&record.ingest_endpoint);
        }
    }
    HeaderValue::from_str(&ids.join(",")).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// A segment response that streams `parts` in order without joining them, with its
/// `Content-Length` (a streamed body does not carry one).
pub(crate) fn chunked_segment(content_type: &'static str, parts: impl IntoIterator<Item = Bytes>) -> Response {
    let parts: Vec<Result<Bytes, std::convert::Infallible>> = parts.into_iter().map(Ok).collect();
    let length: usize = parts.iter().flatten().map(Bytes::len).sum();
    let mut response = segment_response(
        content_type,
        axum::body::Body::from_stream(futures_util::stream::iter(parts)),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// A segment: immutable once listed, cached for the longest startover window.
pub(crate) fn segment_response(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CACHE_CONTROL, format!("max-age={SEGMENT_MAX_AGE}")),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
        ],
        body.into(),
    )
        .into_response()
}
