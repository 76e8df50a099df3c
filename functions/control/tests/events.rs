//! The sample events in `events/` go through lambda_http's event parsing and the control
//! router exactly as in Lambda (stage stripped as in the template).

use tower::ServiceExt;

async fn app() -> sluice::app::ControlServices {
    let config = sluice::config::Config::local("https://api.example", sluice::config::StoreConfig::Memory);
    sluice::app::ControlServices::from_config(config).await.unwrap()
}

async fn invoke(app: &sluice::app::ControlServices, event: &str) -> (u16, serde_json::Value) {
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let path = format!("{}/../../events/{event}", env!("CARGO_MANIFEST_DIR"));
    let request = lambda_http::request::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let response = sluice::api::router(app.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn sample_control_events_create_and_list_a_channel() {
    let app = app().await;
    let (status, created) = invoke(&app, "control-create-channel.json").await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["id"], "demo");
    assert_eq!(created["hlsIngest"]["ingestEndpoints"].as_array().unwrap().len(), 2);
    let (status, listed) = invoke(&app, "control-list-channels.json").await;
    assert_eq!(status, 200);
    assert_eq!(listed["channels"][0]["id"], "demo");
}
