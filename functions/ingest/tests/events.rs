//! The sample ingest event (API Gateway REST, base64 body, Basic auth) goes through
//! lambda_http's parsing and the ingest router: stored when the credentials match.

use tower::ServiceExt;

#[tokio::test]
async fn sample_ingest_event_stores_the_master_playlist() {
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let config = sluice::config::Config::local("https://api.example", sluice::config::StoreConfig::Memory);
    let app = sluice::app::IngestServices::from_config(config).await.unwrap();
    let channel = sluice::model::Channel {
        id: "demo".into(),
        guid: "0".repeat(32),
        created_at: sluice::time::UnixMillis(0),
        description: None,
        tags: Default::default(),
        ingest_endpoints: vec![sluice::model::IngestEndpoint {
            id: "INGEST_ENDPOINT_ID".into(),
            username: "USERNAME".into(),
            password: "PASSWORD".into(),
        }],
        egress_log_group: None,
        ingress_log_group: None,
    };
    sluice::catalog::Catalog(app.stores.index.as_ref())
        .put(
            sluice::catalog::CHANNELS,
            "demo",
            &channel,
            sluice::store::Condition::Always,
        )
        .await
        .unwrap();
    let path = format!("{}/../../events/ingest-put-master.json", env!("CARGO_MANIFEST_DIR"));
    let event = std::fs::read_to_string(path).unwrap();
    let request = lambda_http::request::from_str(&event).unwrap();
    let response = sluice::http::ingest::router(app.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let stored = app
        .stores
        .objects
        .get("demo/INGEST_ENDPOINT_ID/channel.m3u8")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.starts_with(b"#EXTM3U\n"), "the base64 body was decoded");

    let wrong = event.replace("Basic VVNFUk5BTUU6UEFTU1dPUkQ=", "Basic VVNFUk5BTUU6bm9wZQ==");
    let request = lambda_http::request::from_str(&wrong).unwrap();
    let response = sluice::http::ingest::router(app).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 401);
}
