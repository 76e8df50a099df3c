//! The CDN identifier secrets of endpoints with `authorization` (MediaPackage's CDN
//! authorization): a port with a Secrets Manager adapter and a local one, and a short
//! cache in front, so playback does not call Secrets Manager on every request.
//!
//! A secret holds `{"MediaPackageCDNIdentifier": "<value>"}`; a request is accepted with
//! the value of the current version or of the one before (`AWSCURRENT`, `AWSPREVIOUS`),
//! so rotating the secret never locks the CDN out.

use async_trait::async_trait;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The JSON key of the CDN identifier in the secret's string.
pub const SECRET_KEY: &str = "MediaPackageCDNIdentifier";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0:?} was not found")]
    NotFound(String),
    #[error("secret {0:?} is not JSON with a {SECRET_KEY} string")]
    Malformed(String),
    #[error("secrets backend: {0}")]
    Backend(String),
}

/// Where CDN identifier secrets come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The secret strings of the current and, if any, the previous version.
    async fn versions(&self, secret: &str) -> Result<Vec<String>, SecretError>;
}

/// The CDN identifier values a secret accepts now, from its version strings.
pub fn identifiers(secret: &str, versions: &[String]) -> Result<Vec<String>, SecretError> {
    let mut out = Vec::new();
    for (i, text) in versions.iter().enumerate() {
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            // A broken previous version must not lock the CDN out of the current one.
            Err(_) if i > 0 => continue,
            Err(_) => return Err(SecretError::Malformed(secret.into())),
        };
        match value.get(SECRET_KEY).and_then(|v| v.as_str()) {
            Some(id) if !id.is_empty() => out.push(id.to_owned()),
            _ if i > 0 => {}
            _ => return Err(SecretError::Malformed(secret.into())),
        }
    }
    Ok(out)
}

/// Secrets Manager: `GetSecretValue` for the `AWSCURRENT` and `AWSPREVIOUS` stages.
pub struct AwsSecrets {
    client: aws_sdk_secretsmanager::Client,
}

impl AwsSecrets {
    pub fn new(sdk: &aws_config::SdkConfig) -> AwsSecrets {
        AwsSecrets {
            client: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }
}

#[async_trait]
impl SecretSource for AwsSecrets {
    async fn versions(&self, secret: &str) -> Result<Vec<String>, SecretError> {
        let mut out = Vec::new();
        for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
            let result = self
                .client
                .get_secret_value()
                .secret_id(secret)
                .version_stage(stage)
                .send()
                .await;
            match result {
                Ok(value) => out.extend(value.secret_string().map(str::to_owned)),
                Err(e) => {
                    let not_found = e
                        .as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception());
                    match (stage, not_found) {
                        ("AWSCURRENT", true) => return Err(SecretError::NotFound(secret.into())),
                        // A secret never rotated has no previous version.
                        (_, true) => {}
                        _ => {
                            return Err(SecretError::Backend(
                                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
                            ))
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `sluice-local`: secrets in `{data_dir}/secrets.json`, read on every lookup:
/// `{"<secret arn or name>": ["<current secret string>", "<previous secret string>"]}`.
pub struct FileSecrets {
    path: PathBuf,
}

impl FileSecrets {
    pub fn new(path: PathBuf) -> FileSecrets {
        FileSecrets { path }
    }
}

#[async_trait]
impl SecretSource for FileSecrets {
    async fn versions(&self, secret: &str) -> Result<Vec<String>, SecretError> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SecretError::NotFound(secret.into())),
            Err(e) => return Err(SecretError::Backend(format!("{}: {e}", self.path.display()))),
        };
        let all: HashMap<String, Vec<String>> =
            serde_json::from_str(&text).map_err(|e| SecretError::Backend(format!("{}: {e}", self.path.display())))?;
        all.get(secret)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(secret.into()))
    }
}

/// Caches each secret's accepted identifiers for `ttl`.
pub struct Secrets {
    source: Arc<dyn SecretSource>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

impl Secrets {
    /// The source the configuration's store implies (Secrets Manager with the AWS store, a
    /// `secrets.json` in the data folder with the local one, none in memory), cached for
    /// `secret_cache_seconds`.
    pub fn from_config(config: &crate::config::Config, sdk: Option<&crate::store::aws::Sdk>) -> Secrets {
        use crate::config::StoreConfig;
        let source: Arc<dyn SecretSource> = match (&config.store, sdk) {
            (StoreConfig::Aws(_), Some(sdk)) => Arc::new(AwsSecrets::new(sdk)),
            (StoreConfig::Local { data_dir }, _) => Arc::new(FileSecrets::new(data_dir.join("secrets.json"))),
            _ => Arc::new(FileSecrets::new("/nonexistent/secrets.json".into())),
        };
        Secrets::new(source, Duration::from_secs(config.secret_cache_seconds))
    }

    pub fn new(source: Arc<dyn SecretSource>, ttl: Duration) -> Secrets {
        Secrets {
            source,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The CDN identifiers `secret` accepts (current, then previous).
    pub async fn cdn_identifiers(&self, secret: &str) -> Result<Vec<String>, SecretError> {
        if let Some((at, ids)) = self.cache.lock().expect("cache lock").get(secret) {
            if at.elapsed() < self.ttl {
                return Ok(ids.clone());
            }
        }
        let ids = identifiers(secret, &self.source.versions(secret).await?)?;
        if !self.ttl.is_zero() {
            self.cache
                .lock()
                .expect("cache lock")
                .insert(secret.to_owned(), (Instant::now(), ids.clone()));
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_previous_values_are_accepted() {
        let v = |s: &str| format!("{{\"{SECRET_KEY}\": \"{s}\"}}");
        assert_eq!(identifiers("s", &[v("new"), v("old")]).unwrap(), ["new", "old"]);
        assert_eq!(identifiers("s", &[v("only")]).unwrap(), ["only"]);
        // A broken previous version is skipped; a broken current one is an error.
        assert_eq!(identifiers("s", &[v("new"), "junk".into()]).unwrap(), ["new"]);
        assert!(matches!(
            identifiers("s", &["junk".into()]),
            Err(SecretError::Malformed(_))
        ));
        assert!(matches!(
            identifiers("s", &["{\"other\": \"x\"}".into()]),
            Err(SecretError::Malformed(_))
        ));
    }
}
