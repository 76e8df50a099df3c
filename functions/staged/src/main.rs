//! The staged-ingest Lambda: builds the configuration and the storage adapters (nothing
//! else) from the environment once, then hands every S3 "Object Created" event of a staged
//! upload (through EventBridge) to the library's ingest flow.

use lambda_http::{lambda_runtime, service_fn, tracing, Error, LambdaEvent};
use sluice::events::{object_created, ObjectCreatedEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = sluice::config::Config::from_env()?;
    let app = &sluice::app::IngestServices::from_config(config).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ObjectCreatedEvent>| async move {
        object_created(app, event.payload).await.map_err(Error::from)
    }))
    .await
}
