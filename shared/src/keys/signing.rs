//! SigV4 signing of key requests, as MediaPackage signs them: for the service
//! `execute-api` (an API Gateway proxy in front of the key server), with credentials
//! from assuming the endpoint's `roleArn` through STS. Locally, requests go unsigned or
//! are signed with configured credentials.

use super::KeyError;
use crate::store::aws::roles::AssumedRoles;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use std::time::SystemTime;

/// How key requests are signed (`SLUICE_KEY_PROVIDER_SIGNING`).
#[derive(Clone, Debug, PartialEq)]
pub enum KeySigning {
    /// Unsigned (the default off AWS: the reference key server needs no signature).
    None,
    /// With credentials from STS AssumeRole of the endpoint's `roleArn` (the default with
    /// the AWS store, as MediaPackage does).
    AssumeRole,
    /// With these credentials, whatever the role (access key id, secret).
    Static(String, String),
}

impl KeySigning {
    /// `none`, `assume-role` or `AKID:SECRET`.
    pub fn parse(value: &str) -> Option<KeySigning> {
        match value {
            "none" => Some(KeySigning::None),
            "assume-role" => Some(KeySigning::AssumeRole),
            other => other
                .split_once(':')
                .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
                .map(|(id, secret)| KeySigning::Static(id.to_owned(), secret.to_owned())),
        }
    }
}

/// Signs key requests.
pub struct Signer {
    mode: KeySigning,
    region: String,
    roles: AssumedRoles,
}

impl Signer {
    /// `sdk`: the process's SDK configuration when it has one (the AWS store); otherwise
    /// it is loaded from the environment on first use.
    pub fn new(mode: KeySigning, region: &str, sdk: Option<crate::store::aws::Sdk>) -> Signer {
        Signer {
            mode,
            region: region.to_owned(),
            roles: AssumedRoles::new(sdk),
        }
    }

    async fn credentials(&self, role_arn: &str, url: &str) -> Result<Option<Credentials>, KeyError> {
        match &self.mode {
            KeySigning::None => Ok(None),
            KeySigning::Static(id, secret) => Ok(Some(Credentials::new(id, secret, None, None, "sluice-config"))),
            KeySigning::AssumeRole => {
                self.roles
                    .credentials(role_arn)
                    .await
                    .map(Some)
                    .map_err(|e| KeyError::Unreachable {
                        url: url.to_owned(),
                        reason: format!("cannot assume the role {role_arn} to sign the key request: {e}"),
                    })
            }
        }
    }

    /// Signs `request` (whose body is `body`) for `execute-api` when signing is on.
    pub async fn sign<B>(&self, request: &mut http::Request<B>, body: &[u8], role_arn: &str) -> Result<(), KeyError> {
        let url = request.uri().to_string();
        let Some(credentials) = self.credentials(role_arn, &url).await? else {
            return Ok(());
        };
        let failed = |reason: String| KeyError::Unreachable {
            url: url.clone(),
            reason: format!("cannot sign the key request: {reason}"),
        };
        let identity = credentials.into();
        let region = region_of(&url).unwrap_or(&self.region);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(e.to_string()))?
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let method = request.method().as_str();
        let signable = SignableRequest::new(method, &url, headers.into_iter(), SignableBody::Bytes(body))
            .map_err(|e| failed(e.to_string()))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| failed(e.to_string()))?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// The region of an API Gateway URL (`https://id.execute-api.REGION.amazonaws.com/…`).
fn region_of(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let rest = host.split_once(".execute-api.")?.1;
    rest.split('.').next().filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_regions() {
        assert_eq!(KeySigning::parse("none"), Some(KeySigning::None));
        assert_eq!(KeySigning::parse("assume-role"), Some(KeySigning::AssumeRole));
        assert_eq!(
            KeySigning::parse("AK:SK"),
            Some(KeySigning::Static("AK".into(), "SK".into()))
        );
        assert_eq!(KeySigning::parse("maybe"), None);
        assert_eq!(
            region_of("https://abc.execute-api.eu-west-1.amazonaws.com/prod/speke"),
            Some("eu-west-1")
        );
        assert_eq!(region_of("http://127.0.0.1:8080/speke/v1"), None);
    }
}
