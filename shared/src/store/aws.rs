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

use super::{
    decode_head, decode_record, encode_head, encode_record, Condition, Index, ObjectStore, SegmentHead, SlotWrite,
    StoreError,
};
use crate::model::SegmentRecord;
use crate::time::Ticks;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
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

/// Sort key of a partition's head item: below every segment start.
const HEAD_SK: &str = "-1";

impl AwsStore {
    /// The Put of a segment record, with its TTL; `only_new` adds the empty-slot condition.
    fn put_segment(&self, record: &SegmentRecord, only_new: bool) -> Result<TransactWriteItem, StoreError> {
        let doc = String::from_utf8(encode_record(record)?).map_err(backend)?;
        let expires_at = record.received_at.as_secs() + self.config.segment_ttl_seconds;
        let mut put = Put::builder()
            .table_name(&self.config.segments_table)
            .item("pk", AttributeValue::S(record.partition()))
            .item("sk", AttributeValue::N(record.start.0.to_string()))
            .item("doc", AttributeValue::S(doc))
            .item("expires_at", AttributeValue::N(expires_at.to_string()));
        if only_new {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(backend)?).build())
    }

    /// The Update that moves a partition's head from `version` to `version + 1`, setting
    /// its document when given. It expires with the segments it describes.
    fn bump_head(
        &self,
        partition: &str,
        version: u64,
        head: Option<&SegmentHead>,
    ) -> Result<TransactWriteItem, StoreError> {
        let expires_at = crate::time::UnixMillis::now().as_secs() + self.config.segment_ttl_seconds;
        let mut update = Update::builder()
            .table_name(&self.config.segments_table)
            .key("pk", AttributeValue::S(partition.to_owned()))
            .key("sk", AttributeValue::N(HEAD_SK.into()))
            .expression_attribute_values(":next", AttributeValue::N((version + 1).to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()));
        let mut set = "SET ver = :next, expires_at = :exp".to_owned();
        if let Some(head) = head {
            let doc = String::from_utf8(encode_head(head)?).map_err(backend)?;
            update = update.expression_attribute_values(":doc", AttributeValue::S(doc));
            set.push_str(", doc = :doc");
        }
        update = if version == 0 {
            update.condition_expression("attribute_not_exists(ver)")
        } else {
            update
                .condition_expression("ver = :ver")
                .expression_attribute_values(":ver", AttributeValue::N(version.to_string()))
        };
        let update = update.update_expression(set).build().map_err(backend)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs a transaction whose first item is the head bump: a failed head condition (or a
    /// conflicting transaction) is [`SlotWrite::HeadMoved`], a failed condition on a later
    /// item [`SlotWrite::SlotTaken`].
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<SlotWrite, StoreError> {
        let result = self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(SlotWrite::Written),
            Err(e) => e,
        };
        let Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                cancelled,
            ),
        ) = e.as_service_error()
        else {
            if e.as_service_error()
                .is_some_and(|s| s.meta().code() == Some("TransactionConflictException"))
            {
                return Ok(SlotWrite::HeadMoved);
            }
            return Err(sdk_error(e));
        };
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        match codes.as_slice() {
            [first, ..] if *first != "None" => Ok(SlotWrite::HeadMoved),
            [_, rest @ ..] if rest.contains(&"ConditionalCheckFailed") => Ok(SlotWrite::SlotTaken),
            _ if codes.contains(&"TransactionConflict") => Ok(SlotWrite::HeadMoved),
            _ => Err(StoreError::Backend(format!(
                "segment index transaction cancelled: {codes:?}"
            ))),
        }
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

    /// The `ver` attribute; 0 for items written before versions existed.
    fn version_of(item: &HashMap<String, AttributeValue>) -> Result<u64, StoreError> {
        match item.get("ver") {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("item version {n:?} is not a number"))),
            Some(_) => Err(StoreError::Corrupt("item version is not a number".into())),
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
                .consistent_read(true)
                .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
                .scan_index_forward(forward)
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start_key.take());
            q = match from {
                Some(from) => q
                    .key_condition_expression("pk = :pk AND sk >= :from")
                    .expression_attribute_values(":from", AttributeValue::N(from.0.to_string())),
                // Segment starts are >= 0; the head item sits at -1.
                None => q
                    .key_condition_expression("pk = :pk AND sk >= :zero")
                    .expression_attribute_values(":zero", AttributeValue::N("0".into())),
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
    async fn get_doc_versioned(&self, pk: &str, sk: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
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
        let Some(item) = out.item.as_ref() else { return Ok(None) };
        Ok(Some((Self::doc_of(item)?, Self::version_of(item)?)))
    }

    async fn put_doc(&self, pk: &str, sk: &str, doc: Vec<u8>, condition: Condition) -> Result<(), StoreError> {
        let doc = String::from_utf8(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let put = self
            .ddb
            .update_item()
            .table_name(&self.config.catalog_table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .update_expression("SET doc = :doc ADD ver :one")
            .expression_attribute_values(":doc", AttributeValue::S(doc))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        let put = match condition {
            Condition::Always => put,
            Condition::IfAbsent => put.condition_expression("attribute_not_exists(pk)"),
            Condition::IfPresent => put.condition_expression("attribute_exists(pk)"),
            Condition::IfVersion(0) => put.condition_expression("attribute_exists(pk) AND attribute_not_exists(ver)"),
            Condition::IfVersion(v) => put
                .condition_expression("ver = :ver")
                .expression_attribute_values(":ver", AttributeValue::N(v.to_string())),
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

    async fn segment_head(&self, partition: &str) -> Result<(SegmentHead, u64), StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.config.segments_table)
            .key("pk", AttributeValue::S(partition.to_owned()))
            .key("sk", AttributeValue::N(HEAD_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = out.item.as_ref() else {
            return Ok((SegmentHead::default(), 0));
        };
        let head = match item.get("doc") {
            Some(AttributeValue::S(doc)) => decode_head(doc.as_bytes())?,
            _ => SegmentHead::default(),
        };
        Ok((head, Self::version_of(item)?))
    }

    async fn insert_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError> {
        let items = vec![
            self.bump_head(&record.partition(), version, None)?,
            self.put_segment(record, true)?,
        ];
        self.transact(items).await
    }

    async fn replace_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError> {
        let items = vec![
            self.bump_head(&record.partition(), version, None)?,
            self.put_segment(record, false)?,
        ];
        self.transact(items).await
    }

    async fn publish_segments(
        &self,
        partition: &str,
        records: &[SegmentRecord],
        head: &SegmentHead,
        version: u64,
    ) -> Result<SlotWrite, StoreError> {
        let mut items = vec![self.bump_head(partition, version, Some(head))?];
        for record in records.iter().take(super::MAX_PUBLISH) {
            items.push(self.put_segment(record, false)?);
        }
        self.transact(items).await
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

#[cfg(test)]
mod tests {
    //! The storage contract against S3 + DynamoDB in moto (`tests/e2e/moto_serial.py`, which
    //! the test command's Python environment can run). Without moto on this machine the test
    //! says so and passes, unless `SLUICE_REQUIRE_MOTO=1` (the test command sets it).
    use super::*;
    use std::process::{Child, Command, Stdio};

    struct Moto(Child);

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn start_moto() -> Option<(Moto, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/moto_serial.py");
        let child = Command::new("python3")
            .args([script, "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut moto = Moto(child);
        for _ in 0..150 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some((moto, format!("http://127.0.0.1:{port}")));
            }
            if moto.0.try_wait().ok().flatten().is_some() {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }

    #[tokio::test]
    async fn aws_index_meets_the_contract_on_moto() {
        let Some((_moto, endpoint)) = start_moto() else {
            assert!(
                std::env::var("SLUICE_REQUIRE_MOTO").as_deref() != Ok("1"),
                "SLUICE_REQUIRE_MOTO=1 but moto could not be started (python3 with moto[server])"
            );
            eprintln!("moto is not available here: the AWS adapter contract test did not run");
            return;
        };
        let creds = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test");
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(endpoint)
            .load()
            .await;
        let store = AwsStore::new(
            &sdk,
            AwsConfig {
                bucket: "contract".into(),
                catalog_table: "contract-catalog".into(),
                segments_table: "contract-segments".into(),
                segment_ttl_seconds: 3600,
            },
        );
        store.create_resources().await.unwrap();
        super::super::contract::index_contract(&store).await;
        store
            .put("ch/ie/360p/0.ts", Bytes::from_static(b"abc"), "video/mp2t")
            .await
            .unwrap();
        assert_eq!(
            store.get("ch/ie/360p/0.ts").await.unwrap(),
            Some(Bytes::from_static(b"abc"))
        );
        assert_eq!(store.get("ch/ie/360p/1.ts").await.unwrap(), None);
    }
}
