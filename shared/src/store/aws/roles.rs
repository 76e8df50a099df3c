//! Credentials of assumed IAM roles (STS AssumeRole), cached per role until shortly before
//! they expire: what SPEKE key requests are signed with. Requests that find no fresh
//! credentials at once wait for one AssumeRole call per role (a playlist asks for the keys
//! of up to 16 key periods at once).

use super::Sdk;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::OnceCell;

/// Assumed credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

pub struct AssumedRoles {
    sdk: OnceCell<Sdk>,
    cache: Mutex<HashMap<String, Credentials>>,
    /// One lock per role, held while its credentials are being assumed.
    assuming: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AssumedRoles {
    /// `sdk`: the process's SDK configuration when it has one; otherwise it is loaded from
    /// the standard AWS environment on first use.
    pub fn new(sdk: Option<Sdk>) -> AssumedRoles {
        AssumedRoles {
            sdk: OnceCell::new_with(sdk),
            cache: Mutex::default(),
            assuming: Mutex::default(),
        }
    }

    /// Credentials of `role_arn`, or why STS refused them.
    pub async fn credentials(&self, role_arn: &str) -> Result<Credentials, String> {
        if let Some(c) = self.cached(role_arn) {
            return Ok(c);
        }
        let lock = {
            let mut assuming = self.assuming.lock().expect("credentials");
            assuming.entry(role_arn.to_owned()).or_default().clone()
        };
        let _assuming = lock.lock().await;
        // Assumed by whoever held the lock before.
        if let Some(c) = self.cached(role_arn) {
            return Ok(c);
        }
        let sdk = self.sdk.get_or_init(super::sdk_config).await;
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name("sluice-key-request")
            .configure(sdk)
            .build()
            .await;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| aws_sdk_sts::error::DisplayErrorContext(&e).to_string())?;
        self.cache
            .lock()
            .expect("credentials")
            .insert(role_arn.to_owned(), credentials.clone());
        Ok(credentials)
    }

    /// The cached credentials of `role_arn` if they are fresh.
    fn cached(&self, role_arn: &str) -> Option<Credentials> {
        let fresh = |c: &Credentials| c.expiry().is_none_or(|at| at > SystemTime::now() + RENEW_BEFORE);
        let cache = self.cache.lock().expect("credentials");
        cache.get(role_arn).filter(|c| fresh(c)).cloned()
    }
}
