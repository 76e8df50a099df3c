//! Credentials of assumed IAM roles (STS AssumeRole), cached per role until shortly before
//! they expire: what SPEKE key requests are signed with.

use super::Sdk;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::sync::OnceCell;

/// Assumed credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

pub struct AssumedRoles {
    sdk: OnceCell<Sdk>,
    cache: Mutex<HashMap<String, Credentials>>,
}

impl AssumedRoles {
    /// `sdk`: the process's SDK configuration when it has one; otherwise it is loaded from
    /// the standard AWS environment on first use.
    pub fn new(sdk: Option<Sdk>) -> AssumedRoles {
        AssumedRoles {
            sdk: OnceCell::new_with(sdk),
            cache: Mutex::default(),
        }
    }

    /// Credentials of `role_arn`, or why STS refused them.
    pub async fn credentials(&self, role_arn: &str) -> Result<Credentials, String> {
        let fresh = |c: &Credentials| c.expiry().is_none_or(|at| at > SystemTime::now() + RENEW_BEFORE);
        if let Some(c) = self
            .cache
            .lock()
            .expect("credentials")
            .get(role_arn)
            .filter(|c| fresh(c))
        {
            return Ok(c.clone());
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
}
