//! The DynamoDB half of the AWS adapter: the catalog and the segment index (see the
//! parent module for the table layout).

use super::{backend, sdk_error, AwsStore, HEAD_SK};
use crate::model::SegmentRecord;
use crate::store::{
    decode_head, decode_record, encode_head, encode_record, Condition, Index, SegmentHead, SlotWrite, StoreError,
};
use crate::time::Ticks;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use std::collections::HashMap;

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
        for record in records.iter().take(crate::store::MAX_PUBLISH) {
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
