//! Sluice: a live video packager and origin (the job of AWS Elemental MediaPackage) for
//! AWS Lambda, S3 and DynamoDB, or one local process.
//!
//! Data flow: encoder → [`http::ingest`] (authenticate, read) → [`ingest`] (store bytes,
//! index unpublished) → [`publish`] (number settled segments by the rules of
//! [`live::publish`]) → [`store`] ports → [`origin`] (manifests from the published index
//! via [`manifest`], segments from objects) → [`http::playback`] → player. Operators use
//! [`api`], the MediaPackage classic control API.
//!
//! Module map, top floor first; no module imports from a floor above it:
//! - HTTP: [`http`] (routes, edges, the error table), [`api`] — the only modules that use the web framework;
//! - flows: [`ingest`], [`origin`], [`publish`], plus [`access_log`], [`metrics`],
//!   [`alarms`], [`secrets`];
//! - pure rules and writers: [`live`], [`manifest`];
//! - ground: [`media`], [`model`], [`time`], [`catalog`] (typed documents), [`store`]
//!   (ports, adapters, [`store::keys`]), [`config`].

pub mod access_log;
pub mod alarms;
pub mod api;
pub mod catalog;
pub mod config;
pub mod http;
pub mod ingest;
pub mod live;
pub mod manifest;
pub mod media;
pub mod metrics;
pub mod model;
pub mod origin;
pub mod publish;
pub mod secrets;
pub mod store;
pub mod time;

use std::sync::Arc;

/// What every handler gets: configuration, the two storage ports and the CDN secrets.
#[derive(Clone)]
pub struct App {
    pub config: Arc<config::Config>,
    pub stores: store::Stores,
    pub secrets: Arc<secrets::Secrets>,
    /// Channels' egress access-log settings, cached briefly for playback.
    pub egress_logs: Arc<access_log::EgressSettings>,
    /// Per-channel ingest-stalled alarms, when configured (AWS store only).
    pub alarms: Option<Arc<alarms::ChannelAlarms>>,
}

impl App {
    /// Builds the storage adapters the configuration names. Call once per process.
    pub async fn from_config(config: config::Config) -> Result<App, store::StoreError> {
        let mut alarms = None;
        let (stores, source): (store::Stores, Arc<dyn secrets::SecretSource>) = match &config.store {
            config::StoreConfig::Memory => (
                store::Stores::memory(),
                Arc::new(secrets::FileSecrets::new("/nonexistent/secrets.json".into())),
            ),
            config::StoreConfig::Local { data_dir } => {
                let local = Arc::new(store::local::LocalStore::open(data_dir)?);
                let stores = store::Stores {
                    objects: local.clone(),
                    index: local,
                };
                (
                    stores,
                    Arc::new(secrets::FileSecrets::new(data_dir.join("secrets.json"))),
                )
            }
            config::StoreConfig::Aws(aws) => {
                let sdk = store::aws::sdk_config().await;
                let s = Arc::new(store::aws::AwsStore::new(&sdk, aws.clone()));
                let stores = store::Stores {
                    objects: s.clone(),
                    index: s,
                };
                if let Some(alarm_config) = &config.channel_alarms {
                    alarms = Some(Arc::new(alarms::ChannelAlarms::new(&sdk, alarm_config.clone())));
                }
                (stores, Arc::new(secrets::AwsSecrets::new(&sdk)))
            }
        };
        let ttl = std::time::Duration::from_secs(config.secret_cache_seconds);
        Ok(App {
            config: Arc::new(config),
            stores,
            secrets: Arc::new(secrets::Secrets::new(source, ttl)),
            egress_logs: Arc::default(),
            alarms,
        })
    }
}
