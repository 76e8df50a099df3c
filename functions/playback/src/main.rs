//! The playback Lambda, behind a Function URL in RESPONSE_STREAM mode (CloudFront in
//! front): every response is streamed, so segments larger than 6 MB work and no body is
//! base64-encoded. It builds the storage adapters and the CDN identifier secrets.

use lambda_http::{run_with_streaming_response, tracing, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = sluice::config::Config::from_env()?;
    let app = sluice::app::PlaybackServices::from_config(config).await?;
    run_with_streaming_response(sluice::http::playback::router(app).fallback(sluice::http::no_route)).await
}
