//! Optional SigV4 verification of control requests, for `sluice-local` (in AWS, API
//! Gateway's IAM authorization checks signatures before our code runs). Off unless
//! credentials are configured. Builds the canonical request as botocore signs it for a
//! rest-json service (path encoded twice, sorted and re-encoded query, the signed headers,
//! SHA-256 of the body) and compares the signature in constant time; the key derivation
//! and HMAC come from `aws-sigv4`. As API Gateway does, it first refuses a signature that
//! does not sign `host` or whose credential scope names another service than
//! `mediapackage`/`execute-api` or another region than the configured one.

use crate::http::ControlError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Largest control request body accepted for verification.
const MAX_BODY: usize = 1 << 20;
/// Accepted clock skew between signer and server.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// Services a signature may be scoped to: boto3 and aws-cli sign for `mediapackage`;
/// `infra/aws/sluice_signing.py` re-scopes to `execute-api` for API Gateway's IAM check.
pub const SERVICES: [&str; 2] = ["mediapackage", "execute-api"];

/// What signatures are checked against.
#[derive(Debug)]
pub struct Verifier {
    /// Access key id → secret access key.
    pub credentials: Vec<(String, String)>,
    /// The one region a credential scope may name (the configured one, as in ARNs).
    pub region: String,
}

impl Verifier {
    /// `None` when no credentials are configured (no verification).
    pub fn from_config(config: &crate::config::Config) -> Option<Arc<Verifier>> {
        (!config.control_credentials.is_empty()).then(|| {
            Arc::new(Verifier {
                credentials: config.control_credentials.clone(),
                region: config.region.clone(),
            })
        })
    }
}

/// Characters SigV4 leaves unencoded (RFC 3986 unreserved).
fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signature a request should carry, from its parts and the signer's secret.
#[allow(clippy::too_many_arguments)]
pub fn expected_signature(
    method: &str,
    raw_path: &str,
    query: &str,
    headers: &[(String, String)],
    signed_headers: &str,
    body: &[u8],
    amz_date: &str,
    scope: (&str, &str, &str),
    secret: &str,
) -> Option<String> {
    let (date, region, service) = scope;
    let canonical_headers: String = signed_headers
        .split(';')
        .map(|name| {
            let values: Vec<String> = headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            format!("{name}:{}\n", values.join(","))
        })
        .collect();
    let payload = hex(&Sha256::digest(body));
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload}",
        uri_encode(raw_path, true),
        canonical_query(query)
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let time = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .ok()?
        .and_utc();
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, time.into(), region, service);
    Some(aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a signature's SignedHeaders or credential scope is refused, before its value is
/// checked (API Gateway's wording): `host` must be signed, so a signature cannot be
/// replayed against another host; the scope must name a service Sluice answers for and
/// the configured region.
fn scope_refusal(signed_headers: &str, region: &str, service: &str, configured_region: &str) -> Option<String> {
    if !signed_headers.split(';').any(|h| h == "host") {
        return Some(format!(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization (SignedHeaders={signed_headers})"
        ));
    }
    if !SERVICES.contains(&service) {
        return Some(format!(
            "Credential should be scoped to correct service: 'mediapackage' or 'execute-api', not '{service}'"
        ));
    }
    if region != configured_region {
        return Some(format!(
            "Credential should be scoped to a valid region, not '{region}': this server is in '{configured_region}'; \
             configure the client with region {configured_region}"
        ));
    }
    None
}

fn forbidden(message: &str) -> Response {
    ControlError::Forbidden(message.to_owned()).into_response()
}

/// Middleware: lets a request through only when it is signed with a configured key.
pub async fn verify(State(verifier): State<Arc<Verifier>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(authorization) = header("authorization") else {
        return forbidden("missing Authentication Token: sign requests with SigV4");
    };
    let Some(params) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return forbidden("only AWS4-HMAC-SHA256 signatures are accepted");
    };
    let field = |key: &str| {
        params
            .split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (field("Credential"), field("SignedHeaders"), field("Signature"))
    else {
        return forbidden("Authorization header lacks Credential, SignedHeaders or Signature");
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return forbidden("malformed Credential scope");
    };
    if let Some(refusal) = scope_refusal(signed_headers, region, service, &verifier.region) {
        tracing::warn!(
            access_key,
            region,
            service,
            "control request with a refused SigV4 scope"
        );
        return forbidden(&refusal);
    }
    let Some(secret) = verifier
        .credentials
        .iter()
        .find(|(id, _)| id == access_key)
        .map(|(_, s)| s.clone())
    else {
        return forbidden("The security token included in the request is invalid (unknown access key)");
    };
    let Some(amz_date) = header("x-amz-date") else {
        return forbidden("missing X-Amz-Date");
    };
    let skew_ok = chrono::NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ")
        .map(|t| (t.and_utc().timestamp() - crate::time::UnixMillis::now().as_secs()).abs() <= MAX_SKEW_SECS)
        .unwrap_or(false);
    if !skew_ok || !amz_date.starts_with(date) {
        return forbidden("Signature expired or X-Amz-Date is not within 15 minutes of the server time");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return forbidden("request body too large to verify");
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
        .collect();
    let expected = expected_signature(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &headers,
        signed_headers,
        &bytes,
        &amz_date,
        (date, region, service),
        &secret,
    );
    let matches =
        expected.is_some_and(|e| bool::from(subtle::ConstantTimeEq::ct_eq(e.as_bytes(), signature.as_bytes())));
    if !matches {
        tracing::warn!(access_key, "control request with a wrong SigV4 signature");
        return forbidden("The request signature we calculated does not match the signature you provided");
    }
    tracing::info!(access_key, service, "control request signature verified");
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_aws_sigv4_test_suite_get_vanilla() {
        // AWS Signature Version 4 test suite, "get-vanilla".
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let signature = expected_signature(
            "GET",
            "/",
            "",
            &headers,
            "host;x-amz-date",
            b"",
            "20150830T123600Z",
            ("20150830", "us-east-1", "service"),
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        );
        assert_eq!(
            signature.as_deref(),
            Some("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
    }

    #[test]
    fn scope_must_sign_host_and_name_the_service_and_configured_region() {
        assert_eq!(
            scope_refusal("host;x-amz-date", "us-east-1", "mediapackage", "us-east-1"),
            None
        );
        assert_eq!(
            scope_refusal("content-type;host;x-amz-date", "us-east-1", "execute-api", "us-east-1"),
            None
        );
        let no_host = scope_refusal("x-amz-date", "us-east-1", "mediapackage", "us-east-1").unwrap();
        assert!(no_host.contains("'Host'"), "{no_host}");
        // "x-host" is not "host".
        assert!(scope_refusal("x-host;x-amz-date", "us-east-1", "mediapackage", "us-east-1").is_some());
        let service = scope_refusal("host", "us-east-1", "s3", "us-east-1").unwrap();
        assert!(service.contains("'s3'"), "{service}");
        let region = scope_refusal("host", "eu-west-1", "mediapackage", "us-east-1").unwrap();
        assert!(
            region.contains("'eu-west-1'") && region.contains("us-east-1"),
            "{region}"
        );
    }

    /// Signs a GET /channels as botocore does, with `signed` headers, `region` and `service`.
    fn signed_request(signed: &str, region: &str, service: &str, secret: &str) -> axum::http::Request<Body> {
        let now = chrono::DateTime::from_timestamp(crate::time::UnixMillis::now().as_secs(), 0).unwrap();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = now.format("%Y%m%d").to_string();
        let headers = vec![
            ("host".to_string(), "127.0.0.1:8080".to_string()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        let signature = expected_signature(
            "GET",
            "/channels",
            "",
            &headers,
            signed,
            b"",
            &amz_date,
            (&date, region, service),
            secret,
        )
        .unwrap();
        axum::http::Request::get("/channels")
            .header("host", "127.0.0.1:8080")
            .header("x-amz-date", &amz_date)
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=AKID/{date}/{region}/{service}/aws4_request, SignedHeaders={signed}, Signature={signature}"),
            )
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn verify_refuses_unsigned_host_foreign_service_and_region_with_403() {
        use tower::ServiceExt;
        let verifier = Arc::new(Verifier {
            credentials: vec![("AKID".into(), "secret".into())],
            region: "us-east-1".into(),
        });
        let router = axum::Router::new()
            .route("/channels", axum::routing::get(|| async { "listed" }))
            .layer(axum::middleware::from_fn_with_state(verifier, verify));
        let call = |request: axum::http::Request<Body>| {
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await.unwrap();
                let status = response.status().as_u16();
                let kind = response
                    .headers()
                    .get("x-amzn-ErrorType")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                (status, kind, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(
            call(signed_request("host;x-amz-date", "us-east-1", "mediapackage", "secret"))
                .await
                .0,
            200
        );
        assert_eq!(
            call(signed_request("host;x-amz-date", "us-east-1", "execute-api", "secret"))
                .await
                .0,
            200
        );
        for (request, expected) in [
            (
                signed_request("x-amz-date", "us-east-1", "mediapackage", "secret"),
                "'Host'",
            ),
            (
                signed_request("host;x-amz-date", "eu-west-1", "mediapackage", "secret"),
                "'eu-west-1'",
            ),
            (signed_request("host;x-amz-date", "us-east-1", "s3", "secret"), "'s3'"),
            (
                signed_request("host;x-amz-date", "us-east-1", "mediapackage", "wrong"),
                "does not match",
            ),
        ] {
            let (status, kind, body) = call(request).await;
            assert_eq!((status, kind.as_deref()), (403, Some("ForbiddenException")), "{body}");
            assert!(body.contains(expected), "{expected}: {body}");
        }
    }
}
