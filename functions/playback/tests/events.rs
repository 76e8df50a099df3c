//! The sample function-URL event (payload 2.0, as CloudFront sends it) goes through
//! lambda_http's parsing and the playback router.

use tower::ServiceExt;

#[tokio::test]
async fn sample_playback_event_reaches_the_origin() {
    let config = sluice::config::Config::local("https://cdn.example", sluice::config::StoreConfig::Memory);
    let app = sluice::app::PlaybackServices::from_config(config).await.unwrap();
    let path = format!("{}/../../events/playback-multivariant.json", env!("CARGO_MANIFEST_DIR"));
    let request = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(request.uri().path(), "/out/v1/demo-hls/index.m3u8");
    let response = sluice::http::playback::router(app).oneshot(request).await.unwrap();
    // No endpoint exists in the empty store: the origin answers with its own 404 and a
    // short cache lifetime, which shows the route matched.
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["cache-control"], "max-age=1");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("no origin endpoint \"demo-hls\""));
}
