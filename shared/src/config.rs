//! Typed configuration, built once at start from the environment (Lambda) or from
//! flags (sluice-local) and passed down explicitly.

use std::path::PathBuf;

/// Default cap on an ingest request body: Lambda's 6 MB payload limit less the
/// base64 overhead of API Gateway (4/3) and headroom for headers.
pub const DEFAULT_MAX_SEGMENT_BYTES: usize = 4 * 1024 * 1024;

/// `sluice-local`'s default cap, where no Lambda limit applies: 6 s segments at
/// 40 Mbit/s (MediaLive's default HLS segment length at a high 4K rate) fit.
pub const LOCAL_MAX_SEGMENT_BYTES: usize = 32 * 1024 * 1024;

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
    /// The nonce of the fixed Digest challenge API Gateway sends for staged ingest
    /// (`SLUICE_STAGED_DIGEST_NONCE`); the staged-ingest authorizer accepts it. Empty: none.
    pub staged_digest_nonce: String,
    /// Per-channel "ingest stalled" CloudWatch alarms (`SLUICE_CHANNEL_ALARMS`), AWS store only.
    pub channel_alarms: Option<crate::alarms::AlarmConfig>,
    /// How long a request to a SPEKE key provider may take before the last key is used
    /// instead (`SLUICE_KEY_PROVIDER_TIMEOUT_MS`).
    pub key_provider_timeout_ms: u64,
    /// How key requests are signed (`SLUICE_KEY_PROVIDER_SIGNING`: `none`, `assume-role`
    /// or `AKID:SECRET`); by default assume-role with the AWS store, else none.
    pub key_provider_signing: crate::keys::signing::KeySigning,
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
    /// A configuration for tests: every default, with this base URL and store.
    pub fn local(base_url: &str, store: StoreConfig) -> Config {
        let base = base_url.to_owned();
        let mut config = Config::from_settings(|name| (name == "SLUICE_BASE_URL").then(|| base.clone()))
            .expect("the defaults and a base URL are a valid configuration");
        config.store = store;
        config
    }

    /// Reads `SLUICE_*` variables (documented in the README): the Lambda functions.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_settings(|name| std::env::var(name).ok())
    }

    /// The one builder: every setting by its `SLUICE_*` name, from the environment (Lambda)
    /// or from flags over the environment (`sluice-local`), so defaults, parsing and the
    /// messages for bad values are the same wherever a setting comes from. An empty value
    /// counts as unset.
    pub fn from_settings(setting: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &str| setting(name).filter(|v| !v.is_empty());
        let base = var("SLUICE_BASE_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let number = |name: &str, default: usize, what: &str| -> Result<usize, ConfigError> {
            var(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| ConfigError(format!("{name}={v:?} is not a number{what}")))
            })
        };
        let store: StoreConfig = match var("SLUICE_STORE").as_deref().unwrap_or("local") {
            "local" => StoreConfig::Local {
                data_dir: var("SLUICE_DATA_DIR").unwrap_or_else(|| "sluice-data".into()).into(),
            },
            "memory" => StoreConfig::Memory,
            "aws" => {
                let need = |name: &str| var(name).ok_or_else(|| ConfigError(format!("SLUICE_STORE=aws needs {name}")));
                let days = number("SLUICE_RETENTION_DAYS", 15, " of days")?;
                StoreConfig::Aws(crate::store::aws::AwsConfig {
                    bucket: need("SLUICE_BUCKET")?,
                    catalog_table: need("SLUICE_CATALOG_TABLE")?,
                    segments_table: need("SLUICE_SEGMENTS_TABLE")?,
                    segment_ttl_seconds: number("SLUICE_SEGMENT_TTL_SECONDS", days * 86_400, " of seconds")? as i64,
                })
            }
            other => {
                return Err(ConfigError(format!(
                    "SLUICE_STORE={other:?}: expected local, aws or memory"
                )))
            }
        };
        let aws_store = matches!(store, StoreConfig::Aws(_));
        Ok(Config {
            ingest_base_url: var("SLUICE_INGEST_BASE_URL")
                .unwrap_or_else(|| base.clone())
                .trim_end_matches('/')
                .to_owned(),
            playback_base_url: var("SLUICE_PLAYBACK_BASE_URL")
                .unwrap_or(base)
                .trim_end_matches('/')
                .to_owned(),
            max_segment_bytes: number("SLUICE_MAX_SEGMENT_BYTES", DEFAULT_MAX_SEGMENT_BYTES, " of bytes")?,
            region: var("SLUICE_REGION")
                .or_else(|| var("AWS_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            account_id: var("SLUICE_ACCOUNT_ID").unwrap_or_else(|| "000000000000".into()),
            store,
            control_credentials: parse_credentials(&var("SLUICE_CONTROL_CREDENTIALS").unwrap_or_default())?,
            max_channels: number("SLUICE_MAX_CHANNELS", DEFAULT_MAX_CHANNELS, "")?,
            max_endpoints_per_channel: number(
                "SLUICE_MAX_ENDPOINTS_PER_CHANNEL",
                DEFAULT_MAX_ENDPOINTS_PER_CHANNEL,
                "",
            )?,
            stale_after_target_durations: number(
                "SLUICE_STALE_AFTER_TARGET_DURATIONS",
                DEFAULT_STALE_AFTER_TARGET_DURATIONS as usize,
                "",
            )?
            .min(u32::MAX as usize) as u32,
            secret_cache_seconds: number("SLUICE_SECRET_CACHE_SECONDS", 60, " of seconds")? as u64,
            client_ip_from_forwarded_for: var("SLUICE_CLIENT_IP").as_deref() == Some("x-forwarded-for"),
            staged_digest_nonce: var("SLUICE_STAGED_DIGEST_NONCE").unwrap_or_default(),
            key_provider_timeout_ms: number("SLUICE_KEY_PROVIDER_TIMEOUT_MS", 2000, " of milliseconds")?
                .clamp(1, 60_000) as u64,
            key_provider_signing: match var("SLUICE_KEY_PROVIDER_SIGNING") {
                Some(value) => crate::keys::signing::KeySigning::parse(&value).ok_or_else(|| {
                    ConfigError(format!(
                        "SLUICE_KEY_PROVIDER_SIGNING={value:?}: expected none, assume-role or ACCESS_KEY_ID:SECRET"
                    ))
                })?,
                None if aws_store => crate::keys::signing::KeySigning::AssumeRole,
                None => crate::keys::signing::KeySigning::None,
            },
            channel_alarms: match var("SLUICE_CHANNEL_ALARMS") {
                None => None,
                Some(prefix) => Some(crate::alarms::AlarmConfig {
                    prefix,
                    topic_arn: var("SLUICE_ALARM_TOPIC_ARN"),
                    stalled_seconds: number("SLUICE_INGEST_STALLED_SECONDS", 120, " of seconds")?.min(86_400) as u32,
                }),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_settings(|name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_are_mediapackage_s() {
        let config = settings(&[]).unwrap();
        assert_eq!(config.max_channels, 30);
        assert_eq!(config.max_endpoints_per_channel, 10);
        assert_eq!(config.max_segment_bytes, DEFAULT_MAX_SEGMENT_BYTES);
        assert_eq!(
            config.store,
            StoreConfig::Local {
                data_dir: "sluice-data".into()
            }
        );
        assert_eq!(config.ingest_base_url, "http://127.0.0.1:8080");
        assert!(config.control_credentials.is_empty() && config.channel_alarms.is_none());
    }

    #[test]
    fn every_setting_is_read_by_name_and_empty_is_unset() {
        let config = settings(&[
            ("SLUICE_BASE_URL", "http://example.com/"),
            ("SLUICE_PLAYBACK_BASE_URL", "https://cdn.example.com"),
            ("SLUICE_MAX_CHANNELS", "3"),
            ("SLUICE_MAX_SEGMENT_BYTES", ""),
            ("SLUICE_STORE", "aws"),
            ("SLUICE_BUCKET", "b"),
            ("SLUICE_CATALOG_TABLE", "c"),
            ("SLUICE_SEGMENTS_TABLE", "s"),
            ("SLUICE_RETENTION_DAYS", "2"),
            ("SLUICE_CONTROL_CREDENTIALS", "AKID:secret"),
        ])
        .unwrap();
        assert_eq!(config.ingest_base_url, "http://example.com");
        assert_eq!(config.playback_base_url, "https://cdn.example.com");
        assert_eq!(config.max_channels, 3);
        assert_eq!(config.max_segment_bytes, DEFAULT_MAX_SEGMENT_BYTES);
        let StoreConfig::Aws(aws) = &config.store else {
            panic!("{:?}", config.store)
        };
        assert_eq!(aws.segment_ttl_seconds, 2 * 86_400);
        assert_eq!(config.control_credentials, [("AKID".to_owned(), "secret".to_owned())]);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let message = |pairs: &[(&str, &str)]| settings(pairs).unwrap_err().to_string();
        assert!(message(&[("SLUICE_MAX_CHANNELS", "lots")]).contains("SLUICE_MAX_CHANNELS=\"lots\" is not a number"));
        assert!(message(&[("SLUICE_STORE", "disk")]).contains("expected local, aws or memory"));
        assert!(message(&[("SLUICE_STORE", "aws")]).contains("SLUICE_STORE=aws needs SLUICE_BUCKET"));
        assert!(message(&[("SLUICE_CONTROL_CREDENTIALS", "nocolon")]).contains("ACCESS_KEY_ID:SECRET"));
    }
}
