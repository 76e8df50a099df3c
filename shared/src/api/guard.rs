//! Edge checks on control requests before any operation runs: bodies must be JSON
//! (`application/json`, what botocore, aws-cli and the AWS SDKs send for restJson1), and
//! on a directly served socket (`sluice-local`) the `Host` must name this server, which
//! stops DNS rebinding: a page on `evil.example` whose name is re-pointed at 127.0.0.1
//! reaches the server with `Host: evil.example`.
//!
//! The Host check runs only when the request came over a TCP connection Sluice accepted
//! itself, i.e. when the server inserted `ConnectInfo` (sluice-local does for every
//! connection, with any store). In Lambda no such extension exists and the Host is API
//! Gateway's or a custom domain's, which IAM authorization already guards.

use crate::http::ControlError;
use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Largest body read to learn whether a non-JSON request has one at all.
const MAX_PROBE: usize = 1 << 20;

/// Whether a `Content-Type` value is JSON as restJson1 clients send it (parameters such
/// as `charset` allowed).
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Why a request's content type is refused, if it is; `None` when it is fine whatever
/// the body. No `Content-Type` at all is what bodiless GET and DELETE send, and what
/// older SDKs and the demo feeder send with a body; from a browser (an `Origin` header),
/// a body without one is a cross-site "simple request", so it is refused when a body
/// comes with it.
fn refusal(headers: &HeaderMap) -> Option<String> {
    match headers.get(header::CONTENT_TYPE) {
        Some(value) => {
            let text = value.to_str().unwrap_or("(not text)");
            (!is_json(text)).then(|| {
                format!(
                    "Content-Type {text:?} is not accepted: the MediaPackage API takes JSON request bodies \
                     sent with Content-Type: application/json"
                )
            })
        }
        None => headers.contains_key(header::ORIGIN).then(|| {
            "a request body without Content-Type is not accepted from a browser: \
             send it with Content-Type: application/json"
                .to_owned()
        }),
    }
}

/// Middleware: 415 UnsupportedMediaTypeException for a body that is not JSON.
pub async fn json_bodies_only(request: Request, next: Next) -> Response {
    let Some(message) = refusal(request.headers()) else {
        return next.run(request).await;
    };
    let declared_empty = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    if declared_empty || request.body().is_end_stream() || request.body().size_hint().exact() == Some(0) {
        return next.run(request).await;
    }
    // Chunked or otherwise unsized: read it to know whether there is a body.
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_PROBE).await {
        Ok(bytes) if bytes.is_empty() => next.run(Request::from_parts(parts, Body::empty())).await,
        _ => {
            tracing::warn!(method = %parts.method, path = %parts.uri.path(), "control request with a non-JSON body refused");
            ControlError::UnsupportedMediaType(message).into_response()
        }
    }
}

/// Host names the control API answers to on a direct connection: the configured base
/// URLs' hosts (lowercase, without port).
#[derive(Clone, Debug)]
pub struct Hosts(pub Arc<Vec<String>>);

impl Hosts {
    pub fn from_config(config: &crate::config::Config) -> Hosts {
        let mut hosts: Vec<String> = [&config.ingest_base_url, &config.playback_base_url]
            .iter()
            .filter_map(|url| url.parse::<axum::http::Uri>().ok()?.host().map(normalise))
            .collect();
        hosts.dedup();
        Hosts(Arc::new(hosts))
    }

    /// Whether `host` (a `Host` header value, with or without port) names this server:
    /// a configured host, `localhost`, or an IP address literal (a rebinding attack needs
    /// a name the attacker's DNS answers for; 127.0.0.1, [::1] and a LAN address used
    /// directly are not).
    pub fn allows(&self, host: &str) -> bool {
        let name = normalise(strip_port(host));
        if name == "localhost" || self.0.contains(&name) {
            return true;
        }
        let literal = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(&name);
        literal.parse::<IpAddr>().is_ok()
    }

    fn expected(&self) -> String {
        let mut names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        for loopback in ["localhost", "127.0.0.1", "[::1]"] {
            if !names.contains(&loopback) {
                names.push(loopback);
            }
        }
        names.join(", ")
    }
}

fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `example.com:8080` → `example.com`, `[::1]:8080` → `[::1]`.
fn strip_port(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.contains(':') => name,
        _ => host,
    }
}

/// Middleware: 403 ForbiddenException for a directly served request whose `Host` is not
/// this server (see the module docs).
pub async fn known_host(State(hosts): State<Hosts>, request: Request, next: Next) -> Response {
    if request.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned())
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if !hosts.allows(&host) => {
            tracing::warn!(host = %host, "control request for a foreign Host refused");
            ControlError::Forbidden(format!(
                "Host {host:?} is not this server: the control API answers requests for {} (any port); \
                 start sluice-local with --base-url to serve another host name",
                hosts.expected()
            ))
            .into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};
    use axum::routing::post;
    use tower::ServiceExt;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn json_content_types_pass_others_are_refused() {
        assert!(refusal(&headers(&[("content-type", "application/json")])).is_none());
        assert!(refusal(&headers(&[("content-type", "Application/JSON; charset=utf-8")])).is_none());
        assert!(refusal(&headers(&[])).is_none());
        for refused in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/x-amz-json-1.1",
            "application/jsonx",
        ] {
            let message = refusal(&headers(&[("content-type", refused)])).expect(refused);
            assert!(message.contains("application/json"), "{message}");
        }
        assert!(refusal(&headers(&[("origin", "https://evil.example")])).is_some());
    }

    async fn status(request: axum::http::Request<Body>) -> (StatusCode, String, String) {
        let router = axum::Router::new()
            .route("/channels", post(|| async { "created" }))
            .layer(axum::middleware::from_fn(json_bodies_only));
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get("x-amzn-ErrorType")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    fn request(content_type: Option<&str>, body: Body) -> axum::http::Request<Body> {
        let mut builder = axum::http::Request::post("/channels");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        builder.body(body).unwrap()
    }

    #[tokio::test]
    async fn non_json_bodies_get_415_in_the_mediapackage_error_shape() {
        let (code, kind, body) = status(request(Some("text/plain"), Body::from(r#"{"id":"x"}"#))).await;
        assert_eq!(
            (code, kind.as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaTypeException")
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(json["message"].as_str().unwrap().contains("text/plain"), "{json}");
        // Unsized (chunked) bodies are read to find out.
        let stream = Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
            bytes::Bytes::from("{}"),
        )]));
        assert_eq!(
            status(request(Some("text/plain"), stream)).await.0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        // JSON, no content type without a browser's Origin, or no body at all: through.
        assert_eq!(
            status(request(Some("application/json"), Body::from("{}"))).await.0,
            StatusCode::OK
        );
        assert_eq!(status(request(None, Body::from("{}"))).await.0, StatusCode::OK);
        assert_eq!(
            status(request(Some("text/plain"), Body::empty())).await.0,
            StatusCode::OK
        );
        let empty_stream = Body::from_stream(futures_util::stream::iter(
            Vec::<Result<bytes::Bytes, std::io::Error>>::new(),
        ));
        assert_eq!(
            status(request(Some("text/plain"), empty_stream)).await.0,
            StatusCode::OK
        );
        let browser = axum::http::Request::post("/channels")
            .header("origin", "https://evil.example")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(status(browser).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    fn hosts() -> Hosts {
        let config = crate::config::Config::local("http://Media.Example.com:8080/", crate::config::StoreConfig::Memory);
        Hosts::from_config(&config)
    }

    #[test]
    fn host_names_of_this_server_and_loopback_are_allowed() {
        let hosts = hosts();
        assert_eq!(hosts.0.as_slice(), ["media.example.com"]);
        for ok in [
            "media.example.com",
            "MEDIA.example.com:9000",
            "media.example.com.",
            "localhost",
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[::1]",
            "192.168.1.20:8080",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "media.example.com.evil.example",
            "localhost.evil",
            "",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
    }

    #[tokio::test]
    async fn foreign_host_is_refused_only_on_direct_connections() {
        let router = axum::Router::new()
            .route("/channels", axum::routing::get(|| async { "listed" }))
            .layer(axum::middleware::from_fn_with_state(hosts(), known_host));
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let call = |host: &'static str, direct: bool| {
            let router = router.clone();
            async move {
                let mut request = axum::http::Request::get("/channels")
                    .header("host", host)
                    .body(Body::empty())
                    .unwrap();
                if direct {
                    request.extensions_mut().insert(ConnectInfo(peer));
                }
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        let (code, body) = call("evil.example:8080", true).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(
            body.contains("media.example.com") && body.contains("ForbiddenException"),
            "{body}"
        );
        assert_eq!(call("127.0.0.1:8080", true).await.0, StatusCode::OK);
        assert_eq!(call("media.example.com:8080", true).await.0, StatusCode::OK);
        // Lambda: no ConnectInfo, API Gateway's host.
        assert_eq!(
            call("abc.execute-api.us-east-1.amazonaws.com", false).await.0,
            StatusCode::OK
        );
    }
}
