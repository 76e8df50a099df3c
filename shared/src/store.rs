//! The two storage ports: [`ObjectStore`] for segment and playlist bytes, [`Index`] for
//! the catalog (channels, endpoints, renditions) and the segment index. Nothing above
//! this module names a storage technology; adapters: `memory` (tests), `local` (files +
//! redb, the default), `aws` (S3 + DynamoDB).
//!
//! Write order contract: callers store bytes with [`ObjectStore::put`] (durable when it
//! returns) before they index them with [`Index::insert_segment`].
//!
//! Concurrency contract (any two calls may run at once, in one process or in two Lambda
//! instances): every catalog document carries a version that each write bumps, so a
//! read-modify-write is `get_doc_versioned` + `put_doc(.., Condition::IfVersion(v))`,
//! retried on [`StoreError::ConditionFailed`]. Every write to a rendition's segment index
//! (insert, replace, publish) is conditioned on the version of that rendition's
//! [`SegmentHead`] and bumps it, atomically with the record write (a DynamoDB transaction,
//! a redb write transaction, one lock in memory): a writer that read the index at version
//! `v` either writes against exactly that state or hears [`SlotWrite::HeadMoved`].
//!
//! Expiry contract, the same for every adapter: nothing is removed before the retention
//! (`SLUICE_RETENTION_DAYS`, default 15 days) has passed since it was written, and nothing
//! is promised after it: a reader must treat a record or object older than the retention as
//! possibly gone, and no published answer may need one (every window and playlist is
//! shorter than the retention). Catalog documents never expire. The AWS adapter removes
//! segment records and objects some time after the retention (DynamoDB TTL on
//! `expires_at`, the bucket's lifecycle rule; both run within days, not on the second);
//! `local` and `memory` keep them until the folder or process goes, which the contract
//! allows and which suits one machine and tests. A sweeping local adapter belongs with
//! startover and harvest, which decide how long the oldest segment is needed.

pub mod aws;
#[cfg(feature = "faults")]
pub mod faulty;
pub mod keys;
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
    /// Only replace the version read with [`Index::get_doc_versioned`]: fail when the
    /// item was written since (or deleted).
    IfVersion(u64),
}

/// The publish state of one rendition's segment index: how far the published timeline
/// reaches. Records after it are indexed (durable) but not yet numbered or listed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentHead {
    /// The newest published segment; None before the first one.
    pub published: Option<PublishedEdge>,
}

pub use crate::live::publish::PublishedEdge;

/// The outcome of a write to a rendition's segment index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotWrite {
    Written,
    /// An insert found its slot (partition, start) taken.
    SlotTaken,
    /// The head is no longer at the version the caller read: read again and retry.
    HeadMoved,
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
    async fn get_doc(&self, pk: &str, sk: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_doc_versioned(pk, sk).await?.map(|(doc, _)| doc))
    }
    /// One catalog document with its version (bumped by every write; 0 for documents
    /// written before versions existed).
    async fn get_doc_versioned(&self, pk: &str, sk: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError>;
    /// Writes a catalog document under `condition`, bumping its version.
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

    /// The publish state of a partition and its version (0 when never written).
    async fn segment_head(&self, partition: &str) -> Result<(SegmentHead, u64), StoreError>;
    /// Indexes a segment in its empty slot (partition, start) if the partition's head is
    /// still at `version`, bumping it.
    async fn insert_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError>;
    /// Overwrites the record in its slot (the preferred input taking back a slot the other
    /// input filled first) if the head is still at `version`, bumping it; the caller keeps
    /// the slot's sequence numbers so playlists do not change.
    async fn replace_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError>;
    /// Writes `records` (now numbered and marked published, all of `partition`) and moves
    /// the head to `head`, if the head is still at `version`; all or nothing. At most
    /// [`MAX_PUBLISH`] records.
    async fn publish_segments(
        &self,
        partition: &str,
        records: &[SegmentRecord],
        head: &SegmentHead,
        version: u64,
    ) -> Result<SlotWrite, StoreError>;
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
    /// Opens the adapters a configuration names. For AWS it also answers the SDK
    /// configuration, which the function's other AWS clients are built from.
    pub async fn open(config: &crate::config::StoreConfig) -> Result<(Stores, Option<aws::Sdk>), StoreError> {
        use crate::config::StoreConfig;
        Ok(match config {
            StoreConfig::Memory => (Stores::memory(), None),
            StoreConfig::Local { data_dir } => (Stores::both(Arc::new(local::LocalStore::open(data_dir)?)), None),
            StoreConfig::Aws(settings) => {
                let sdk = aws::sdk_config().await;
                let stores = Stores::both(Arc::new(aws::AwsStore::new(&sdk, settings.clone())));
                (stores, Some(sdk))
            }
        })
    }

    /// In-memory stores for tests.
    pub fn memory() -> Stores {
        Stores::both(Arc::new(memory::MemoryStore::default()))
    }

    /// One adapter that serves as both ports.
    pub fn both<S: ObjectStore + Index + 'static>(store: Arc<S>) -> Stores {
        Stores {
            objects: store.clone(),
            index: store,
        }
    }
}

/// Most records one [`Index::publish_segments`] call writes (a DynamoDB transaction holds
/// 100 items: these plus the head).
pub const MAX_PUBLISH: usize = 50;

pub(crate) fn encode_head(head: &SegmentHead) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(head).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode_head(bytes: &[u8]) -> Result<SegmentHead, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("segment head: {e}")))
}

/// The version check shared by the adapters that hold versions themselves.
pub(crate) fn check_doc(condition: Condition, current: Option<u64>) -> Result<(), StoreError> {
    let ok = match condition {
        Condition::Always => true,
        Condition::IfAbsent => current.is_none(),
        Condition::IfPresent => current.is_some(),
        Condition::IfVersion(v) => current == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed)
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

    /// [`SegmentRecord::example`] with its sequence number (and a file name that says it).
    pub fn record(rendition: &str, start: u64, sequence: u64) -> SegmentRecord {
        SegmentRecord {
            sequence,
            source_name: format!("seg_{sequence}.ts"),
            ..SegmentRecord::example(rendition, start)
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

        // versions: every write bumps; IfVersion takes only the version read
        let (doc, v1) = index.get_doc_versioned("channel", "b").await.unwrap().unwrap();
        assert_eq!(doc, b"3".to_vec());
        index
            .put_doc("channel", "b", b"6".to_vec(), Condition::IfVersion(v1))
            .await
            .unwrap();
        let stale = index
            .put_doc("channel", "b", b"7".to_vec(), Condition::IfVersion(v1))
            .await;
        assert!(matches!(stale, Err(StoreError::ConditionFailed)));
        let (doc, v2) = index.get_doc_versioned("channel", "b").await.unwrap().unwrap();
        assert_eq!((doc, v2 > v1), (b"6".to_vec(), true));
        let gone = index
            .put_doc("channel", "a", b"8".to_vec(), Condition::IfVersion(v2))
            .await;
        assert!(matches!(gone, Err(StoreError::ConditionFailed)));

        // segments: every write is conditioned on the partition head's version
        assert_eq!(
            index.segment_head("ch#360p").await.unwrap(),
            (SegmentHead::default(), 0)
        );
        let mut version = 0;
        for (i, start) in [0u64, 180_000, 360_000, 540_000].into_iter().enumerate() {
            let written = index.insert_segment(&record("360p", start, i as u64), version).await;
            assert_eq!(written.unwrap(), SlotWrite::Written);
            let (head, next) = index.segment_head("ch#360p").await.unwrap();
            assert!(next > version, "an insert bumps the head version");
            assert_eq!(head, SegmentHead::default(), "an insert publishes nothing");
            version = next;
        }
        let stale = index.insert_segment(&record("360p", 720_000, 4), version - 1).await;
        assert_eq!(stale.unwrap(), SlotWrite::HeadMoved);
        let taken = index.insert_segment(&record("360p", 180_000, 9), version).await;
        assert_eq!(taken.unwrap(), SlotWrite::SlotTaken);
        assert_eq!(index.segment_head("ch#360p").await.unwrap().1, version);
        let other = index.insert_segment(&record("180p", 0, 0), 0).await;
        assert_eq!(other.unwrap(), SlotWrite::Written);
        let latest = index.latest_segments("ch#360p", 2).await.unwrap();
        assert_eq!(latest.iter().map(|r| r.sequence).collect::<Vec<_>>(), [2, 3]);
        let from = index.segments_from("ch#360p", Ticks(180_000), 2).await.unwrap();
        assert_eq!(from.iter().map(|r| r.start.0).collect::<Vec<_>>(), [180_000, 360_000]);
        assert_eq!(index.latest_segments("ch#none", 5).await.unwrap(), vec![]);

        // publishing numbers records and moves the head, all or nothing
        let mut first_two = index.segments_from("ch#360p", Ticks(0), 2).await.unwrap();
        assert!(first_two.iter().all(|r| !r.published));
        for r in &mut first_two {
            r.published = true;
        }
        let head = SegmentHead {
            published: Some(PublishedEdge::of(&first_two[1])),
        };
        let stale = index.publish_segments("ch#360p", &first_two, &head, version - 1).await;
        assert_eq!(stale.unwrap(), SlotWrite::HeadMoved);
        assert!(index
            .latest_segments("ch#360p", 4)
            .await
            .unwrap()
            .iter()
            .all(|r| !r.published));
        let done = index.publish_segments("ch#360p", &first_two, &head, version).await;
        assert_eq!(done.unwrap(), SlotWrite::Written);
        let (now, next) = index.segment_head("ch#360p").await.unwrap();
        assert_eq!(now, head);
        assert!(next > version);
        version = next;
        let flags: Vec<bool> = index
            .latest_segments("ch#360p", 4)
            .await
            .unwrap()
            .iter()
            .map(|r| r.published)
            .collect();
        assert_eq!(flags, [true, true, false, false]);

        // Replacing keeps the slot and takes the new record whole.
        let mut preferred = record("360p", 540_000, 3);
        preferred.ingest_endpoint = "primary".into();
        let stale = index.replace_segment(&preferred, version - 1).await;
        assert_eq!(stale.unwrap(), SlotWrite::HeadMoved);
        assert_eq!(
            index.replace_segment(&preferred, version).await.unwrap(),
            SlotWrite::Written
        );
        let latest = index.latest_segments("ch#360p", 1).await.unwrap();
        assert_eq!(latest, vec![preferred]);
        assert_eq!(index.latest_segments("ch#360p", 10).await.unwrap().len(), 4);
        assert!(index.segment_head("ch#360p").await.unwrap().1 > version);
    }
}
