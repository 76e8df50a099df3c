//! Optional SigV4 verification of control requests, for `sluice-local` (in AWS, API
//! Gateway's IAM authorization checks signatures before our code runs). Off unless
//! credentials are configured. Builds the canonical request as botocore signs it for a
//! rest-json service (path encoded twice, sorted and re-encoded query, the signed headers,
//! SHA-256 of the body) and compares the signature in constant time; the key derivation
//! and HMAC come from `aws-sigv4`.

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

/// Access key id → secret access key.
pub type Credentials = Arc<Vec<(String, String)>>;

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

fn forbidden(message: &str) -> Response {
    ControlError::Forbidden(message.to_owned()).into_response()
}

/// Middleware: lets a request through only when it is signed with a configured key.
pub async fn verify(State(credentials): State<Credentials>, request: Request, next: Next) -> Response {
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
    let Some(secret) = credentials
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
}
