//! SPEKE key requests signed by `keys::signing` pass the SigV4 verifier of the control API
//! (`api::sigv4`, scoped to `execute-api`, which API Gateway's IAM authorization checks).

use axum::body::Body;
use sluice::keys::signing::{KeySigning, Signer};
use tower::ServiceExt;

/// A key request signed here passes the SigV4 verifier of the control API (scoped to
/// `execute-api`, which it accepts); a changed body does not.
#[tokio::test]
async fn signatures_pass_the_local_verifier() {
    let signer = Signer::new(
        KeySigning::Static("AKIDKEYS".into(), "secret".into()),
        "us-east-1",
        None,
    );
    let verifier = std::sync::Arc::new(sluice::api::sigv4::Verifier {
        credentials: vec![("AKIDKEYS".into(), "secret".into())],
        region: "us-east-1".into(),
    });
    let app = axum::Router::new()
        .route("/speke/v1", axum::routing::post(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(
            verifier,
            sluice::api::sigv4::verify,
        ));
    let body = b"<cpix:CPIX id=\"x\"/>".to_vec();
    // The headers the SPEKE client sets; hyper adds Host from the URL when it sends.
    let request = |body: Vec<u8>| {
        http::Request::post("http://127.0.0.1:8080/speke/v1")
            .header("content-type", "application/xml")
            .header("user-agent", "sluice/test")
            .body(body)
            .unwrap()
    };
    let sent = |mut r: http::Request<Vec<u8>>| {
        r.headers_mut().insert("host", "127.0.0.1:8080".parse().unwrap());
        r
    };
    let mut signed = request(body.clone());
    signer
        .sign(&mut signed, &body, "arn:aws:iam::123456789012:role/k")
        .await
        .unwrap();
    let auth = signed.headers()["authorization"].to_str().unwrap().to_owned();
    assert!(auth.contains("/us-east-1/execute-api/aws4_request"), "{auth}");
    assert!(signed.headers().contains_key("x-amz-date"));
    assert!(auth.contains("SignedHeaders=") && auth.contains("host"), "{auth}");
    let answer = app.clone().oneshot(sent(signed).map(Body::from)).await.unwrap();
    assert_eq!(answer.status(), 200);
    let mut tampered = request(body.clone());
    signer.sign(&mut tampered, &body, "r").await.unwrap();
    let tampered = sent(tampered).map(|_| Body::from("<cpix:CPIX id=\"y\"/>"));
    assert_eq!(app.oneshot(tampered).await.unwrap().status(), 403);
    let unsigned = Signer::new(KeySigning::None, "us-east-1", None);
    let mut plain = request(body.clone());
    unsigned.sign(&mut plain, &body, "r").await.unwrap();
    assert!(!plain.headers().contains_key("authorization"));
}
