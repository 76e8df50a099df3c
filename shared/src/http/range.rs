//! Byte-range requests on segments (RFC 9110 §14): I-frame playlists address keyframes as
//! byte ranges of TS segments, and players and CDNs fetch them with `Range`. One range per
//! request is served as 206; several ranges are answered with the whole segment (200), which
//! RFC 9110 allows; a range past the end is 416 with the segment's length.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A single byte range: first and last byte, inclusive.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    Range(u64, u64),
    Unsatisfiable,
    /// No usable single range: serve the whole body.
    Whole,
}

/// Resolves a `Range` header value against a body of `len` bytes.
pub(crate) fn resolve(value: &str, len: u64) -> Wanted {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let range = match (first.trim(), last.trim()) {
        ("", "") => return Wanted::Whole,
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Wanted::Unsatisfiable,
            Ok(n) => (len.saturating_sub(n), len.saturating_sub(1)),
            Err(_) => return Wanted::Whole,
        },
        (first, last) => {
            let (Ok(first), last) = (first.parse::<u64>(), last) else {
                return Wanted::Whole;
            };
            let last = if last.is_empty() {
                len.saturating_sub(1)
            } else {
                match last.parse::<u64>() {
                    Ok(l) if l >= first => l.min(len.saturating_sub(1)),
                    _ => return Wanted::Whole,
                }
            };
            (first, last)
        }
    };
    if len == 0 || range.0 >= len {
        return Wanted::Unsatisfiable;
    }
    Wanted::Range(range.0, range.1)
}

/// Applies the request's `Range` to a complete 200 segment response.
pub(crate) async fn apply(request: &HeaderMap, response: Response) -> Response {
    let Some(value) = request.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return response;
    };
    if response.status() != StatusCode::OK || !response.headers().contains_key(header::ACCEPT_RANGES) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("segment body: {e}")).into_response();
        }
    };
    let len = bytes.len() as u64;
    match resolve(value, len) {
        Wanted::Whole => Response::from_parts(parts, Body::from(bytes)),
        Wanted::Unsatisfiable => {
            let mut response = (
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("range {value:?} is outside the segment's {len} bytes"),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            response
        }
        Wanted::Range(first, last) => {
            parts.status = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}")) {
                parts.headers.insert(header::CONTENT_RANGE, v);
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(bytes.slice(first as usize..=last as usize)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_rfc_9110_says() {
        assert_eq!(resolve("bytes=0-99", 1000), Wanted::Range(0, 99));
        assert_eq!(resolve("bytes=500-", 1000), Wanted::Range(500, 999));
        assert_eq!(resolve("bytes=-100", 1000), Wanted::Range(900, 999));
        assert_eq!(resolve("bytes=900-5000", 1000), Wanted::Range(900, 999));
        assert_eq!(resolve("bytes=-5000", 1000), Wanted::Range(0, 999));
        assert_eq!(resolve("bytes=1000-", 1000), Wanted::Unsatisfiable);
        assert_eq!(resolve("bytes=-0", 1000), Wanted::Unsatisfiable);
        assert_eq!(resolve("bytes=0-1,5-9", 1000), Wanted::Whole);
        assert_eq!(resolve("bytes=9-1", 1000), Wanted::Whole);
        assert_eq!(resolve("items=0-1", 1000), Wanted::Whole);
        assert_eq!(resolve("bytes=x-1", 1000), Wanted::Whole);
    }
}
