//! AWS adapter: objects in S3, catalog and segment index in DynamoDB.
//!
//! Tables (see template.yaml): catalog `pk` (S) + `sk` (S) holding a JSON `doc`;
//! segments `pk` (S, `{channel}#{rendition}`) + `sk` (N, start in 90 kHz ticks) holding a
//! JSON `doc` and a TTL attribute `expires_at` (epoch seconds).
//! The SDK uses rustls with ring (no aws-lc C build) and honours the standard AWS
//! environment, including `AWS_ENDPOINT_URL` for emulators.

use super::{decode_record, encode_record, Condition, Index, ObjectStore, StoreError};
use crate::model::SegmentRecord;
use crate::time::Ticks;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use bytes::Bytes;
use std::collections::HashMap;

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

/// The SDK configuration from the standard AWS environment, with a rustls HTTPS client.
pub async fn sdk_config() -> aws_config::SdkConfig {
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

impl AwsStore {
    /// The PutItem of a segment record, with its TTL; the caller adds any condition.
    fn put_segment(
        &self,
        record: &SegmentRecord,
    ) -> Result<aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder, StoreError> {
        let doc = String::from_utf8(encode_record(record)?).map_err(backend)?;
        let expires_at = record.received_at.as_secs() + self.config.segment_ttl_seconds;
        Ok(self
            .ddb
            .put_item()
            .table_name(&self.config.segments_table)
            .item("pk", AttributeValue::S(record.partition()))
            .item("sk", AttributeValue::N(record.start.0.to_string()))
            .item("doc", AttributeValue::S(doc))
            .item("expires_at", AttributeValue::N(expires_at.to_string())))
    }

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

    /// Creates the bucket and both tables when missing (for emulators and first runs;
    /// in AWS the SAM template creates them).
    pub async fn create_resources(&self) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        if self.s3.head_bucket().bucket(&self.config.bucket).send().await.is_err() {
            self.s3
                .create_bucket()
                .bucket(&self.config.bucket)
                .send()
                .await
                .map_err(|e| backend(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        }
        let tables = [
            (&self.config.catalog_table, ScalarAttributeType::S),
            (&self.config.segments_table, ScalarAttributeType::N),
        ];
        for (table, sk_type) in tables {
            if self.ddb.describe_table().table_name(table).send().await.is_ok() {
                continue;
            }
            let attr = |name: &str, ty: ScalarAttributeType| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ty)
                    .build()
                    .map_err(backend)
            };
            let key = |name: &str, ty: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(ty)
                    .build()
                    .map_err(backend)
            };
            self.ddb
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
                .attribute_definitions(attr("sk", sk_type)?)
                .key_schema(key("pk", KeyType::Hash)?)
                .key_schema(key("sk", KeyType::Range)?)
                .send()
                .await
                .map_err(sdk_error)?;
        }
        Ok(())
    }

    fn doc_of(item: &HashMap<String, AttributeValue>) -> Result<Vec<u8>, StoreError> {
        match item.get("doc") {
            Some(AttributeValue::S(s)) => Ok(s.as_bytes().to_vec()),
            _ => Err(StoreError::Corrupt("item without a string `doc` attribute".into())),
        }
    }

    fn record_of(item: &HashMap<String, AttributeValue>) -> Result<SegmentRecord, StoreError> {
        decode_record(&Self::doc_of(item)?)
    }

    async fn query_segments(
        &self,
        partition: &str,
        from: Option<Ticks>,
        forward: bool,
        limit: usize,
    ) -> Result<Vec<SegmentRecord>, StoreError> {
        let mut out = Vec::with_capacity(limit);
        let mut start_key = None;
        while out.len() < limit {
            let mut q = self
                .ddb
                .query()
                .table_name(&self.config.segments_table)
                .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
                .scan_index_forward(forward)
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start_key.take());
            q = match from {
                Some(from) => q
                    .key_condition_expression("pk = :pk AND sk >= :from")
                    .expression_attribute_values(":from", AttributeValue::N(from.0.to_string())),
                None => q.key_condition_expression("pk = :pk"),
            };
            let page = q.send().await.map_err(sdk_error)?;
            for item in page.items() {
                out.push(Self::record_of(item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        if !forward {
            out.reverse();
        }
        Ok(out)
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

#[async_trait]
impl Index for AwsStore {
    async fn get_doc(&self, pk: &str, sk: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.config.catalog_table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item.as_ref().map(Self::doc_of).transpose()
    }

    async fn put_doc(&self, pk: &str, sk: &str, doc: Vec<u8>, condition: Condition) -> Result<(), StoreError> {
        let doc = String::from_utf8(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut put = self
            .ddb
            .put_item()
            .table_name(&self.config.catalog_table)
            .item("pk", AttributeValue::S(pk.to_owned()))
            .item("sk", AttributeValue::S(sk.to_owned()))
            .item("doc", AttributeValue::S(doc));
        put = match condition {
            Condition::Always => put,
            Condition::IfAbsent => put.condition_expression("attribute_not_exists(pk)"),
            Condition::IfPresent => put.condition_expression("attribute_exists(pk)"),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::ConditionFailed)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn delete_doc(&self, pk: &str, sk: &str) -> Result<bool, StoreError> {
        let out = self
            .ddb
            .delete_item()
            .table_name(&self.config.catalog_table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn list_docs(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut start_key = None;
        while out.len() < limit {
            let mut q = self
                .ddb
                .query()
                .table_name(&self.config.catalog_table)
                .consistent_read(true)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start_key.take());
            q = match after {
                Some(after) => q
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", AttributeValue::S(after.to_owned())),
                None => q.key_condition_expression("pk = :pk"),
            };
            let page = q.send().await.map_err(sdk_error)?;
            for item in page.items() {
                let sk = match item.get("sk") {
                    Some(AttributeValue::S(s)) => s.clone(),
                    _ => return Err(StoreError::Corrupt("catalog item without string sk".into())),
                };
                out.push((sk, Self::doc_of(item)?));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn insert_segment(&self, record: &SegmentRecord) -> Result<bool, StoreError> {
        let result = self
            .put_segment(record)?
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn replace_segment(&self, record: &SegmentRecord) -> Result<(), StoreError> {
        self.put_segment(record)?.send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn latest_segments(&self, partition: &str, limit: usize) -> Result<Vec<SegmentRecord>, StoreError> {
        self.query_segments(partition, None, false, limit).await
    }

    async fn segments_from(
        &self,
        partition: &str,
        from: Ticks,
        limit: usize,
    ) -> Result<Vec<SegmentRecord>, StoreError> {
        self.query_segments(partition, Some(from), true, limit).await
    }
}
