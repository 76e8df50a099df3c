//! In-memory adapter for unit tests: both ports over `BTreeMap`s.

use super::{
    check_doc, decode_record, encode_record, Condition, Index, ObjectStore, SegmentHead, SlotWrite, StoreError,
};
use crate::model::SegmentRecord;
use crate::time::Ticks;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

type DocKey = (String, String);

/// Objects, catalog and segment index in memory.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    /// (partition, sort key) → (document, version).
    docs: Mutex<BTreeMap<DocKey, (Vec<u8>, u64)>>,
    /// Segment records and, per partition, the head and its version: one lock, so a
    /// conditional write sees both.
    segments: Mutex<Segments>,
}

#[derive(Default)]
struct Segments {
    records: BTreeMap<(String, u64), Vec<u8>>,
    heads: BTreeMap<String, (SegmentHead, u64)>,
}

impl Segments {
    /// Bumps the head of `partition` if it is at `version`.
    fn claim(&mut self, partition: &str, version: u64) -> bool {
        let head = self.heads.entry(partition.to_owned()).or_default();
        if head.1 != version {
            return false;
        }
        head.1 += 1;
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        lock(&self.objects).insert(key.to_owned(), body);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(lock(&self.objects).get(key).cloned())
    }
}

#[async_trait]
impl Index for MemoryStore {
    async fn get_doc_versioned(&self, pk: &str, sk: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        Ok(lock(&self.docs).get(&(pk.to_owned(), sk.to_owned())).cloned())
    }

    async fn put_doc(&self, pk: &str, sk: &str, doc: Vec<u8>, condition: Condition) -> Result<(), StoreError> {
        let mut docs = lock(&self.docs);
        let key = (pk.to_owned(), sk.to_owned());
        let current = docs.get(&key).map(|(_, v)| *v);
        check_doc(condition, current)?;
        docs.insert(key, (doc, current.unwrap_or(0) + 1));
        Ok(())
    }

    async fn delete_doc(&self, pk: &str, sk: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.docs).remove(&(pk.to_owned(), sk.to_owned())).is_some())
    }

    async fn list_docs(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let docs = lock(&self.docs);
        Ok(docs
            .range((pk.to_owned(), String::new())..)
            .take_while(|((p, _), _)| p == pk)
            .filter(|((_, s), _)| after.is_none_or(|a| s.as_str() > a))
            .take(limit)
            .map(|((_, s), (d, _))| (s.clone(), d.clone()))
            .collect())
    }

    async fn segment_head(&self, partition: &str) -> Result<(SegmentHead, u64), StoreError> {
        Ok(lock(&self.segments).heads.get(partition).copied().unwrap_or_default())
    }

    async fn insert_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError> {
        let mut segments = lock(&self.segments);
        let key = (record.partition(), record.start.0);
        if segments.heads.get(&key.0).map_or(0, |h| h.1) != version {
            return Ok(SlotWrite::HeadMoved);
        }
        if segments.records.contains_key(&key) {
            return Ok(SlotWrite::SlotTaken);
        }
        let doc = encode_record(record)?;
        segments.claim(&key.0, version);
        segments.records.insert(key, doc);
        Ok(SlotWrite::Written)
    }

    async fn replace_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError> {
        let doc = encode_record(record)?;
        let mut segments = lock(&self.segments);
        if !segments.claim(&record.partition(), version) {
            return Ok(SlotWrite::HeadMoved);
        }
        segments.records.insert((record.partition(), record.start.0), doc);
        Ok(SlotWrite::Written)
    }

    async fn publish_segments(
        &self,
        partition: &str,
        records: &[SegmentRecord],
        head: &SegmentHead,
        version: u64,
    ) -> Result<SlotWrite, StoreError> {
        let docs: Vec<((String, u64), Vec<u8>)> = records
            .iter()
            .map(|r| Ok(((r.partition(), r.start.0), encode_record(r)?)))
            .collect::<Result<_, StoreError>>()?;
        let mut segments = lock(&self.segments);
        if !segments.claim(partition, version) {
            return Ok(SlotWrite::HeadMoved);
        }
        if let Some(h) = segments.heads.get_mut(partition) {
            h.0 = *head;
        }
        segments.records.extend(docs);
        Ok(SlotWrite::Written)
    }

    async fn latest_segments(&self, partition: &str, limit: usize) -> Result<Vec<SegmentRecord>, StoreError> {
        let segments = lock(&self.segments);
        let mut out: Vec<SegmentRecord> = segments
            .records
            .range((partition.to_owned(), 0)..=(partition.to_owned(), u64::MAX))
            .rev()
            .take(limit)
            .map(|(_, v)| decode_record(v))
            .collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    async fn segments_from(
        &self,
        partition: &str,
        from: Ticks,
        limit: usize,
    ) -> Result<Vec<SegmentRecord>, StoreError> {
        let segments = lock(&self.segments);
        segments
            .records
            .range((partition.to_owned(), from.0)..=(partition.to_owned(), u64::MAX))
            .take(limit)
            .map(|(_, v)| decode_record(v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_index_meets_the_contract() {
        let store = super::MemoryStore::default();
        super::super::contract::index_contract(&store).await;
    }
}
