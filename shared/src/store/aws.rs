//! AWS adapter: objects in S3, catalog and segment index in DynamoDB.
//!
//! Tables (see template.yaml): catalog `pk` (S) + `sk` (S) holding a JSON `doc`;
//! segments `pk` (S, `{channel}#{rendition}`) + `sk` (N, start in 90 kHz ticks) holding a
//! JSON `doc` and a TTL attribute `expires_at` (epoch seconds). Each segment partition also
//! holds its [`SegmentHead`] at `sk = -1` (JSON `doc`, version `ver`), which every segment
//! write updates in the same `TransactWriteItems` call. Catalog items carry a version `ver`
//! that every write bumps (`UpdateItem ... ADD ver 1`).
//! The SDK uses rustls with ring (no aws-lc C build) and honours the standard AWS
//! environment, including `AWS_ENDPOINT_URL` for emulators.

mod dynamodb;
pub mod roles;

use super::{ObjectStore, StoreError};
use async_trait::async_trait;
use bytes::Bytes;

/// Where the AWS adapter keeps things.
#[derive(Clone, Debug, PartialEq)]
pub struct AwsConfig {
    pub bucket: String,
    pub catalog_table: String,
    pub segments_table: String,
    /// How long segment records live before DynamoDB's TTL removes them.
    pub segment_ttl_seconds: i64,
}

/// S3 + DynamoDB.
#[derive(Clone)]
pub struct AwsStore {
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    config: AwsConfig,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn sdk_error<E: std::error::Error + Send + Sync + 'static>(e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError {
    StoreError::Backend(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

/// How long one storage call may take before ingest and playback answer 503: under API
/// Gateway's 29 s integration timeout, so an encoder hears a 503 with a message rather
/// than a gateway timeout, and long enough for a 4 MB S3 PUT with a retry.
const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// The SDK configuration the other AWS clients of a function (Secrets Manager,
/// CloudWatch) are built from, so they share its HTTP client and timeouts.
pub type Sdk = aws_config::SdkConfig;

/// The SDK configuration from the standard AWS environment, with a rustls HTTPS client.
pub async fn sdk_config() -> Sdk {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .load()
        .await
}

/// Sort key of a partition's head item: below every segment start.
const HEAD_SK: &str = "-1";

impl AwsStore {
    /// Builds SDK clients from the standard AWS environment. Call once per process.
    pub async fn from_env(config: AwsConfig) -> AwsStore {
        AwsStore::new(&sdk_config().await, config)
    }

    /// Builds the clients from an SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig, config: AwsConfig) -> AwsStore {
        let s3_config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        AwsStore {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            config,
        }
    }
}

#[async_trait]
impl ObjectStore for AwsStore {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.s3
            .put_object()
            .bucket(&self.config.bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .map_err(|e| backend(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let result = self.s3.get_object().bucket(&self.config.bucket).key(key).send().await;
        match result {
            Ok(out) => {
                let data = out.body.collect().await.map_err(backend)?;
                Ok(Some(data.into_bytes()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(backend(aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }
}

#[cfg(test)]
mod tests;
