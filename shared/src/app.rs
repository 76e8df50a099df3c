//! Composition: what each function builds once per process from its configuration, and
//! what each flow may touch. Ingest has the configuration and the storage ports; playback
//! adds the CDN identifier secrets and the egress-log settings cache; control adds the
//! per-channel alarms. Each Lambda builds only its own services (the ingest function opens
//! no Secrets Manager or CloudWatch client); `sluice-local` builds [`App`], all three over
//! one set of storage adapters.

use crate::access_log::EgressSettings;
use crate::alarms::ChannelAlarms;
use crate::config::Config;
use crate::keys::{signing::Signer, speke::SpekeClient, Keys};
use crate::secrets::Secrets;
use crate::store::{StoreError, Stores};
use std::sync::Arc;

/// The ingest function's services.
#[derive(Clone)]
pub struct IngestServices {
    pub config: Arc<Config>,
    pub stores: Stores,
}

/// The playback function's services.
#[derive(Clone)]
pub struct PlaybackServices {
    pub config: Arc<Config>,
    pub stores: Stores,
    /// CDN identifier secrets of endpoints with `authorization`, cached briefly.
    pub secrets: Arc<Secrets>,
    /// Channels' egress access-log settings, cached briefly.
    pub egress_logs: Arc<EgressSettings>,
    /// Content keys of encrypted endpoints, from their SPEKE key providers.
    pub keys: Arc<Keys>,
}

/// The control function's services.
#[derive(Clone)]
pub struct ControlServices {
    pub config: Arc<Config>,
    pub stores: Stores,
    /// Per-channel ingest-stalled alarms, when configured (AWS store only).
    pub alarms: Option<Arc<ChannelAlarms>>,
}

impl IngestServices {
    pub async fn from_config(config: Config) -> Result<IngestServices, StoreError> {
        let (stores, _) = Stores::open(&config.store).await?;
        Ok(IngestServices {
            config: Arc::new(config),
            stores,
        })
    }
}

impl PlaybackServices {
    pub async fn from_config(config: Config) -> Result<PlaybackServices, StoreError> {
        let (stores, sdk) = Stores::open(&config.store).await?;
        Ok(PlaybackServices {
            secrets: Arc::new(Secrets::from_config(&config, sdk.as_ref())),
            egress_logs: Arc::default(),
            keys: key_cache(&config, sdk.as_ref()),
            config: Arc::new(config),
            stores,
        })
    }
}

impl ControlServices {
    pub async fn from_config(config: Config) -> Result<ControlServices, StoreError> {
        let (stores, sdk) = Stores::open(&config.store).await?;
        Ok(ControlServices {
            alarms: ChannelAlarms::from_config(&config, sdk.as_ref()).map(Arc::new),
            config: Arc::new(config),
            stores,
        })
    }
}

/// Every function's services over one set of storage adapters: the local server and tests.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub stores: Stores,
    pub secrets: Arc<Secrets>,
    pub egress_logs: Arc<EgressSettings>,
    pub keys: Arc<Keys>,
    pub alarms: Option<Arc<ChannelAlarms>>,
}

impl App {
    /// Builds the storage adapters the configuration names and the other services. Call
    /// once per process.
    pub async fn from_config(config: Config) -> Result<App, StoreError> {
        let (stores, sdk) = Stores::open(&config.store).await?;
        Ok(App {
            secrets: Arc::new(Secrets::from_config(&config, sdk.as_ref())),
            egress_logs: Arc::default(),
            keys: key_cache(&config, sdk.as_ref()),
            alarms: ChannelAlarms::from_config(&config, sdk.as_ref()).map(Arc::new),
            config: Arc::new(config),
            stores,
        })
    }

    pub fn ingest(&self) -> IngestServices {
        IngestServices {
            config: self.config.clone(),
            stores: self.stores.clone(),
        }
    }

    pub fn playback(&self) -> PlaybackServices {
        PlaybackServices {
            config: self.config.clone(),
            stores: self.stores.clone(),
            secrets: self.secrets.clone(),
            egress_logs: self.egress_logs.clone(),
            keys: self.keys.clone(),
        }
    }

    pub fn control(&self) -> ControlServices {
        ControlServices {
            config: self.config.clone(),
            stores: self.stores.clone(),
            alarms: self.alarms.clone(),
        }
    }
}

/// The key cache over the SPEKE client, bounded by the configured timeout and signing as
/// configured.
fn key_cache(config: &Config, sdk: Option<&crate::store::aws::Sdk>) -> Arc<Keys> {
    let timeout = std::time::Duration::from_millis(config.key_provider_timeout_ms);
    let signer = Signer::new(config.key_provider_signing.clone(), &config.region, sdk.cloned());
    Arc::new(Keys::new(Arc::new(SpekeClient::new(timeout, signer))))
}
