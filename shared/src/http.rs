//! HTTP edges shared by the three flows: the error types and their one mapping to
//! status codes and bodies.
//!
//! Control errors use the MediaPackage wire format botocore parses (`x-amzn-ErrorType`
//! header, JSON `message`). Ingest and playback errors are short text bodies a person
//! can act on; playback errors carry a short `Cache-Control` so a CDN does not pin a 404
//! for a segment that is about to exist.
//!
//! [`authorizer`] is API Gateway's authorizer for staged ingest (its answer is a policy,
//! which API Gateway turns into the response).

pub mod authorizer;
pub mod ingest;
pub mod playback;
mod range;

/// Control, ingest and playback on one router (the local server).
pub fn all_routes(app: &crate::App) -> axum::Router {
    crate::api::router(app.control())
        .merge(ingest::router(app.ingest()))
        .merge(playback::router(app.playback()))
        .fallback(no_route)
}

use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A MediaPackage classic API error (spec: the v1 exception shapes).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// A body in a content type the restJson1 API does not take (not a MediaPackage
    /// shape; API Gateway answers the same way).
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ControlError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFoundException"),
            ControlError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "UnprocessableEntityException"),
            ControlError::Forbidden(_) => (StatusCode::FORBIDDEN, "ForbiddenException"),
            ControlError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
            ControlError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaTypeException")
            }
            ControlError::ServiceUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableException"),
            ControlError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerErrorException"),
        }
    }
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "control: storage error");
        match e {
            StoreError::Backend(m) => ControlError::ServiceUnavailable(format!("storage is unavailable: {m}")),
            other => ControlError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let (status, kind) = self.parts();
        let message = self.to_string();
        let body = serde_json::json!({ "message": message, "__type": kind });
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
        response
    }
}

/// An ingest or playback error: a status and a plain-text explanation.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EdgeError {
    pub status: StatusCode,
    pub message: String,
    /// `WWW-Authenticate` challenges for a 401.
    pub challenges: Vec<String>,
}

impl EdgeError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> EdgeError {
        EdgeError {
            status,
            message: message.into(),
            challenges: Vec::new(),
        }
    }

    /// Adds `WWW-Authenticate` challenges (401 responses).
    pub fn with_challenges(mut self, challenges: impl IntoIterator<Item = String>) -> EdgeError {
        self.challenges.extend(challenges);
        self
    }

    pub fn not_found(message: impl Into<String>) -> EdgeError {
        EdgeError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> EdgeError {
        EdgeError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<StoreError> for EdgeError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error");
        EdgeError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage is unavailable, retry: {e}"),
        )
    }
}

impl IntoResponse for EdgeError {
    fn into_response(self) -> Response {
        let mut body = self.message;
        body.push('\n');
        let mut response = (
            self.status,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "max-age=1"),
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            ],
            body,
        )
            .into_response();
        for challenge in self.challenges {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().append(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The answer for a URL no route matches: 400 for a path with `.` or `..` segments
/// (plain or percent-encoded), else 404 naming the URL shapes Sluice serves.
pub async fn no_route(uri: axum::http::Uri) -> EdgeError {
    let path = uri.path();
    let dot_segment = path.split('/').any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        decoded == "." || decoded == ".." || decoded.contains(['/', '\\'])
    });
    if dot_segment {
        return EdgeError::bad_request(format!(
            "{path:?} is not a plain path: `.`, `..` and encoded slashes are refused"
        ));
    }
    EdgeError::not_found(format!(
        "no such URL {path:?}: ingest is /in/v2/{{channel}}/{{ingest endpoint}}/{{file}}, \
         playback /out/v1/{{origin endpoint}}/{{file}}"
    ))
}

/// What ingest and playback read of a request besides its path and body, for access
/// control and access logs. The peer address is known when the server inserts
/// `ConnectInfo` (`sluice-local`); in Lambda it is not.
pub(crate) struct RequestInfo {
    pub method: axum::http::Method,
    pub uri: axum::http::Uri,
    pub version: axum::http::Version,
    pub headers: axum::http::HeaderMap,
    pub peer: Option<std::net::IpAddr>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(RequestInfo {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            peer,
        })
    }
}

/// `s` with every control character (`\n`, `\r`, ESC, NUL, DEL, C1…) written as a Rust
/// escape (`\n`, `\u{1b}`), for text logs: request paths are percent-decoded client input,
/// and a raw newline or terminal escape there would forge log lines or recolour a terminal.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod escape_tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_escaped_and_the_rest_is_kept() {
        assert_eq!(escape_controls("a/b ü.ts"), "a/b ü.ts");
        assert_eq!(
            escape_controls("a\nfake\u{1b}[31m\r\0\u{7f}\u{9b}.ts"),
            "a\\nfake\\u{1b}[31m\\r\\u{0}\\u{7f}\\u{9b}.ts"
        );
        assert!(!escape_controls("x\n\t\u{1b}").chars().any(char::is_control));
    }
}
