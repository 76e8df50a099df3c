//! Typed configuration, built once at start from the environment (Lambda) or from
//! flags (sluice-local) and passed down explicitly.

use std::path::PathBuf;

/// Default cap on an ingest request body: Lambda's 6 MB payload limit less the
/// base64 overhead of API Gateway (4/3) and headroom for headers.
pub const DEFAULT_MAX_SEGMENT_BYTES: usize = 4 * 1024 * 1024;

/// Which storage adapters to use.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreConfig {
    /// Files + embedded database under a directory (the default).
    Local { data_dir: PathBuf },
    /// S3 + DynamoDB via the standard AWS environment.
    Aws(crate::store::aws::AwsConfig),
    /// In memory (tests).
    Memory,
}

/// Everything the handlers need to know about their deployment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Base URL encoders use, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com/prod`.
    pub ingest_base_url: String,
    /// Base URL players use, e.g. `https://d111.cloudfront.net`.
    pub playback_base_url: String,
    /// Largest ingest request body accepted, in bytes.
    pub max_segment_bytes: usize,
    /// Region and account that appear in ARNs.
    pub region: String,
    pub account_id: String,
    pub store: StoreConfig,
    /// When not empty, control requests must carry a SigV4 signature by one of these
    /// (access key id, secret access key) pairs; otherwise 403. Empty: no check (in AWS,
    /// API Gateway's IAM authorization does it).
    pub control_credentials: Vec<(String, String)>,
    /// MediaPackage's soft quotas: channels per account, origin endpoints per channel.
    /// Creating beyond them is TooManyRequestsException, as in MediaPackage.
    pub max_channels: usize,
    pub max_endpoints_per_channel: usize,
    /// A live rendition whose inputs have delivered nothing for this many target durations
    /// answers its media playlist with 404 (short cache) instead of a stale 200.
    pub stale_after_target_durations: u32,
    /// How long CDN identifier secrets are cached (MediaPackage picks up a rotation
    /// within minutes; both versions are accepted meanwhile).
    pub secret_cache_seconds: u64,
    /// Take the viewer's address for `whitelist` from the last `X-Forwarded-For` entry
    /// (the address CloudFront saw) instead of the connection's peer. On in Lambda.
    pub client_ip_from_forwarded_for: bool,
    /// Per-channel "ingest stalled" CloudWatch alarms (`SLUICE_CHANNEL_ALARMS`), AWS store only.
    pub channel_alarms: Option<crate::alarms::AlarmConfig>,
}

/// Default for [`Config::stale_after_target_durations`].
pub const DEFAULT_STALE_AFTER_TARGET_DURATIONS: u32 = 4;

/// MediaPackage's default channel quota.
pub const DEFAULT_MAX_CHANNELS: usize = 30;
/// MediaPackage's default origin endpoint quota per channel.
pub const DEFAULT_MAX_ENDPOINTS_PER_CHANNEL: usize = 10;

/// Parses `AKID:SECRET[,AKID:SECRET...]`.
pub fn parse_credentials(value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    value
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            pair.trim()
                .split_once(':')
                .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
                .ok_or_else(|| ConfigError("control credentials must look like ACCESS_KEY_ID:SECRET[,...]".into()))
        })
        .collect()
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// A configuration for tests and the local server.
    pub fn local(base_url: &str, store: StoreConfig) -> Config {
        Config {
            ingest_base_url: base_url.trim_end_matches('/').to_owned(),
            playback_base_url: base_url.trim_end_matches('/').to_owned(),
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            store,
            control_credentials: Vec::new(),
            max_channels: DEFAULT_MAX_CHANNELS,
            max_endpoints_per_channel: DEFAULT_MAX_ENDPOINTS_PER_CHANNEL,
            stale_after_target_durations: DEFAULT_STALE_AFTER_TARGET_DURATIONS,
            secret_cache_seconds: 60,
            client_ip_from_forwarded_for: false,
            channel_alarms: None,
        }
    }

    /// Reads `SLUICE_*` variables (documented in the README).
    pub fn from_env() -> Result<Config, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let base = var("SLUICE_BASE_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let store = match var("SLUICE_STORE").as_deref().unwrap_or("local") {
            "local" => StoreConfig::Local {
                data_dir: var("SLUICE_DATA_DIR").unwrap_or_else(|| "sluice-data".into()).into(),
            },
            "memory" => StoreConfig::Memory,
            "aws" => {
                let need = |name: &str| var(name).ok_or_else(|| ConfigError(format!("SLUICE_STORE=aws needs {name}")));
                let days = var("SLUICE_RETENTION_DAYS").unwrap_or_else(|| "15".into());
                let days: i64 = days
                    .parse()
                    .map_err(|_| ConfigError(format!("SLUICE_RETENTION_DAYS={days:?} is not a number of days")))?;
                let ttl = var("SLUICE_SEGMENT_TTL_SECONDS").unwrap_or_else(|| (days * 86_400).to_string());
                StoreConfig::Aws(crate::store::aws::AwsConfig {
                    bucket: need("SLUICE_BUCKET")?,
                    catalog_table: need("SLUICE_CATALOG_TABLE")?,
                    segments_table: need("SLUICE_SEGMENTS_TABLE")?,
                    segment_ttl_seconds: ttl.parse().map_err(|_| {
                        ConfigError(format!("SLUICE_SEGMENT_TTL_SECONDS={ttl:?} is not a number of seconds"))
                    })?,
                })
            }
            other => {
                return Err(ConfigError(format!(
                    "SLUICE_STORE={other:?}: expected local, aws or memory"
                )))
            }
        };
        let number = |name: &str, default: usize| -> Result<usize, ConfigError> {
            var(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| ConfigError(format!("{name}={v:?} is not a number")))
            })
        };
        let max = var("SLUICE_MAX_SEGMENT_BYTES").unwrap_or_else(|| DEFAULT_MAX_SEGMENT_BYTES.to_string());
        Ok(Config {
            ingest_base_url: var("SLUICE_INGEST_BASE_URL")
                .unwrap_or_else(|| base.clone())
                .trim_end_matches('/')
                .to_owned(),
            playback_base_url: var("SLUICE_PLAYBACK_BASE_URL")
                .unwrap_or(base)
                .trim_end_matches('/')
                .to_owned(),
            max_segment_bytes: max
                .parse()
                .map_err(|_| ConfigError(format!("SLUICE_MAX_SEGMENT_BYTES={max:?} is not a number of bytes")))?,
            region: var("SLUICE_REGION")
                .or_else(|| var("AWS_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            account_id: var("SLUICE_ACCOUNT_ID").unwrap_or_else(|| "000000000000".into()),
            store,
            control_credentials: parse_credentials(&var("SLUICE_CONTROL_CREDENTIALS").unwrap_or_default())?,
            max_channels: number("SLUICE_MAX_CHANNELS", DEFAULT_MAX_CHANNELS)?,
            max_endpoints_per_channel: number("SLUICE_MAX_ENDPOINTS_PER_CHANNEL", DEFAULT_MAX_ENDPOINTS_PER_CHANNEL)?,
            stale_after_target_durations: number(
                "SLUICE_STALE_AFTER_TARGET_DURATIONS",
                DEFAULT_STALE_AFTER_TARGET_DURATIONS as usize,
            )? as u32,
            secret_cache_seconds: number("SLUICE_SECRET_CACHE_SECONDS", 60)? as u64,
            client_ip_from_forwarded_for: var("SLUICE_CLIENT_IP").as_deref() == Some("x-forwarded-for"),
            channel_alarms: match var("SLUICE_CHANNEL_ALARMS") {
                None => None,
                Some(prefix) => Some(crate::alarms::AlarmConfig {
                    prefix,
                    topic_arn: var("SLUICE_ALARM_TOPIC_ARN"),
                    stalled_seconds: number("SLUICE_INGEST_STALLED_SECONDS", 120)?.min(86_400) as u32,
                }),
            },
        })
    }
}
