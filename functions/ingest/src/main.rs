//! The ingest Lambda: builds the configuration and the storage adapters (nothing else)
//! from the environment once, then hands every API Gateway request to the library's
//! ingest router.

use lambda_http::{run, tracing, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = sluice::config::Config::from_env()?;
    let app = sluice::app::IngestServices::from_config(config).await?;
    run(sluice::http::ingest::router(app).fallback(sluice::http::no_route)).await
}
