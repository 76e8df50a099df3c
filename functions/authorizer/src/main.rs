//! The staged-ingest authorizer Lambda: builds the configuration and the storage adapters
//! (nothing else) from the environment once, then answers every API Gateway authorizer
//! request with the library's decision.

use lambda_http::{lambda_runtime, service_fn, tracing, Error, LambdaEvent};
use sluice::http::authorizer::{authorize, AuthorizerRequest};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = sluice::config::Config::from_env()?;
    let app = &sluice::app::IngestServices::from_config(config).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<AuthorizerRequest>| async move {
        authorize(app, event.payload).await.map_err(Error::from)
    }))
    .await
}
