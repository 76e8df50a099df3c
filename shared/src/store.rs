//! The two storage ports: [`ObjectStore`] for segment and playlist bytes, [`Index`] for
//! the catalog (channels, endpoints, renditions) and the segment index. Nothing above
//! this module names a storage technology; adapters: `memory` (tests), `local` (files +
//! redb, the default), `aws` (S3 + DynamoDB).
//!
//! Write order contract: callers store bytes with [`ObjectStore::put`] (durable when it
//! returns) before they index them with [`Index::insert_segment`].

pub mod aws;
pub mod faulty;
pub mod local;
pub mod memory;

use crate::model::SegmentRecord;
use crate::time::Ticks;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use thiserror::Error;

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A conditional write found the item present (or absent) when it should not be.
    #[error("conditional write failed")]
    ConditionFailed,
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("storage backend: {0}")]
    Backend(String),
}

/// When a catalog write may happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Always write.
    Always,
    /// Only create: fail with [`StoreError::ConditionFailed`] when the item exists.
    IfAbsent,
    /// Only replace: fail when the item does not exist.
    IfPresent,
}

/// Segment and playlist bytes.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores `body` under `key`; durable when this returns Ok.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError>;
    /// The bytes under `key`, or None.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
}

/// The catalog (JSON documents under a partition and sort key) and the segment index.
#[async_trait]
pub trait Index: Send + Sync {
    /// One catalog document.
    async fn get_doc(&self, pk: &str, sk: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes a catalog document under `condition`.
    async fn put_doc(&self, pk: &str, sk: &str, doc: Vec<u8>, condition: Condition) -> Result<(), StoreError>;
    /// Deletes a catalog document; true when it existed.
    async fn delete_doc(&self, pk: &str, sk: &str) -> Result<bool, StoreError>;
    /// Documents of a partition in sort-key order, strictly after `after`, at most `limit`.
    async fn list_docs(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Indexes a segment unless its slot (partition, start) is taken; true when inserted.
    async fn insert_segment(&self, record: &SegmentRecord) -> Result<bool, StoreError>;
    /// Overwrites the record in its slot (the preferred input taking back a slot the other
    /// input filled first); same partition and start, so sequence numbers do not move.
    async fn replace_segment(&self, record: &SegmentRecord) -> Result<(), StoreError>;
    /// The newest `limit` segments of a partition, oldest first.
    async fn latest_segments(&self, partition: &str, limit: usize) -> Result<Vec<SegmentRecord>, StoreError>;
    /// Segments of a partition starting at or after `from`, oldest first, at most `limit`.
    async fn segments_from(&self, partition: &str, from: Ticks, limit: usize)
        -> Result<Vec<SegmentRecord>, StoreError>;
}

/// Both ports, shared by every handler.
#[derive(Clone)]
pub struct Stores {
    pub objects: Arc<dyn ObjectStore>,
    pub index: Arc<dyn Index>,
}

impl Stores {
    /// In-memory stores for tests.
    pub fn memory() -> Stores {
        let store = Arc::new(memory::MemoryStore::default());
        Stores {
            objects: store.clone(),
            index: store,
        }
    }
}

pub(crate) fn encode_record(record: &SegmentRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<SegmentRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("segment record: {e}")))
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every `Index` adapter must show; run by each adapter's tests.
    use super::*;
    use crate::time::UnixMillis;

    pub fn record(rendition: &str, start: u64, sequence: u64) -> SegmentRecord {
        SegmentRecord {
            channel: "ch".into(),
            rendition: rendition.into(),
            start: Ticks(start),
            duration: Ticks(180_000),
            sequence,
            ingest_endpoint: "ie".into(),
            object_key: format!("ch/ie/{rendition}/{start}.ts"),
            size: 1000,
            program_date_time: UnixMillis(0),
            received_at: UnixMillis(0),
            starts_with_keyframe: true,
            source_name: format!("seg_{sequence}.ts"),
            pts_offset: 0,
            discontinuity: false,
            discontinuity_sequence: 0,
            iframes: Vec::new(),
        }
    }

    pub async fn index_contract(index: &dyn Index) {
        // catalog
        index
            .put_doc("channel", "a", b"1".to_vec(), Condition::IfAbsent)
            .await
            .unwrap();
        let again = index.put_doc("channel", "a", b"2".to_vec(), Condition::IfAbsent).await;
        assert!(matches!(again, Err(StoreError::ConditionFailed)));
        let missing = index
            .put_doc("channel", "zz", b"2".to_vec(), Condition::IfPresent)
            .await;
        assert!(matches!(missing, Err(StoreError::ConditionFailed)));
        index
            .put_doc("channel", "b", b"3".to_vec(), Condition::Always)
            .await
            .unwrap();
        index
            .put_doc("channel", "c", b"4".to_vec(), Condition::Always)
            .await
            .unwrap();
        index
            .put_doc("endpoint", "a", b"5".to_vec(), Condition::Always)
            .await
            .unwrap();
        assert_eq!(index.get_doc("channel", "a").await.unwrap(), Some(b"1".to_vec()));
        let page = index.list_docs("channel", None, 2).await.unwrap();
        assert_eq!(page.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let rest = index.list_docs("channel", Some("b"), 10).await.unwrap();
        assert_eq!(rest.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["c"]);
        assert!(index.delete_doc("channel", "a").await.unwrap());
        assert!(!index.delete_doc("channel", "a").await.unwrap());
        assert_eq!(index.get_doc("channel", "a").await.unwrap(), None);

        // segments
        for (i, start) in [0u64, 180_000, 360_000, 540_000].into_iter().enumerate() {
            assert!(index.insert_segment(&record("360p", start, i as u64)).await.unwrap());
        }
        assert!(!index.insert_segment(&record("360p", 180_000, 9)).await.unwrap());
        assert!(index.insert_segment(&record("180p", 0, 0)).await.unwrap());
        let latest = index.latest_segments("ch#360p", 2).await.unwrap();
        assert_eq!(latest.iter().map(|r| r.sequence).collect::<Vec<_>>(), [2, 3]);
        let from = index.segments_from("ch#360p", Ticks(180_000), 2).await.unwrap();
        assert_eq!(from.iter().map(|r| r.start.0).collect::<Vec<_>>(), [180_000, 360_000]);
        assert_eq!(index.latest_segments("ch#none", 5).await.unwrap(), vec![]);
        // Replacing keeps the slot and takes the new record whole.
        let mut preferred = record("360p", 540_000, 3);
        preferred.ingest_endpoint = "primary".into();
        index.replace_segment(&preferred).await.unwrap();
        let latest = index.latest_segments("ch#360p", 1).await.unwrap();
        assert_eq!(latest, vec![preferred]);
        assert_eq!(index.latest_segments("ch#360p", 10).await.unwrap().len(), 4);
    }
}
