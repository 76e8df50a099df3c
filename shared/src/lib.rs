//! Sluice: a live video packager and origin (the job of AWS Elemental MediaPackage) for
//! AWS Lambda, S3 and DynamoDB, or one local process.
//!
//! Data flow: encoder → [`ingest`] (auth, store bytes, index) → [`store`] ports →
//! [`origin`] (manifests from the index via [`manifest`], segments from objects) → player.
//! Operators use [`api`], the MediaPackage classic control API. [`media`] and
//! [`manifest`] are pure functions; I/O lives at the edges.

pub mod api;
pub mod catalog;
pub mod config;
pub mod http;
pub mod ingest;
pub mod manifest;
pub mod media;
pub mod metrics;
pub mod model;
pub mod origin;
pub mod store;
pub mod time;

use std::sync::Arc;

/// What every handler gets: configuration and the two storage ports.
#[derive(Clone)]
pub struct App {
    pub config: Arc<config::Config>,
    pub stores: store::Stores,
}

impl App {
    /// Builds the storage adapters the configuration names. Call once per process.
    pub async fn from_config(config: config::Config) -> Result<App, store::StoreError> {
        let stores = match &config.store {
            config::StoreConfig::Memory => store::Stores::memory(),
            config::StoreConfig::Local { data_dir } => {
                let local = Arc::new(store::local::LocalStore::open(data_dir)?);
                store::Stores {
                    objects: local.clone(),
                    index: local,
                }
            }
            config::StoreConfig::Aws(aws) => {
                let s = Arc::new(store::aws::AwsStore::from_env(aws.clone()).await);
                store::Stores {
                    objects: s.clone(),
                    index: s,
                }
            }
        };
        Ok(App {
            config: Arc::new(config),
            stores,
        })
    }

    /// Control, ingest and playback on one router (the local server).
    pub fn all_routes(&self) -> axum::Router {
        api::router(self.clone())
            .merge(ingest::router(self.clone()))
            .merge(origin::router(self.clone()))
    }
}
