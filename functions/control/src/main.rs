//! The control Lambda: builds the configuration, the storage adapters and the channel
//! alarms from the environment once, then hands every API Gateway request to the
//! library's control router.

use lambda_http::{run, tracing, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = sluice::config::Config::from_env()?;
    let app = sluice::app::ControlServices::from_config(config).await?;
    run(sluice::api::router(app).fallback(sluice::http::no_route)).await
}
