//! In-memory adapter for unit tests: both ports over `BTreeMap`s.

use super::{decode_record, encode_record, Condition, Index, ObjectStore, StoreError};
use crate::model::SegmentRecord;
use crate::time::Ticks;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Objects, catalog and segment index in memory.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    docs: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    segments: Mutex<BTreeMap<(String, u64), Vec<u8>>>,
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
    async fn get_doc(&self, pk: &str, sk: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.docs).get(&(pk.to_owned(), sk.to_owned())).cloned())
    }

    async fn put_doc(&self, pk: &str, sk: &str, doc: Vec<u8>, condition: Condition) -> Result<(), StoreError> {
        let mut docs = lock(&self.docs);
        let key = (pk.to_owned(), sk.to_owned());
        let exists = docs.contains_key(&key);
        match condition {
            Condition::IfAbsent if exists => return Err(StoreError::ConditionFailed),
            Condition::IfPresent if !exists => return Err(StoreError::ConditionFailed),
            _ => {}
        }
        docs.insert(key, doc);
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
            .map(|((_, s), d)| (s.clone(), d.clone()))
            .collect())
    }

    async fn insert_segment(&self, record: &SegmentRecord) -> Result<bool, StoreError> {
        let mut segments = lock(&self.segments);
        let key = (record.partition(), record.start.0);
        if segments.contains_key(&key) {
            return Ok(false);
        }
        segments.insert(key, encode_record(record)?);
        Ok(true)
    }

    async fn replace_segment(&self, record: &SegmentRecord) -> Result<(), StoreError> {
        let key = (record.partition(), record.start.0);
        lock(&self.segments).insert(key, encode_record(record)?);
        Ok(())
    }

    async fn latest_segments(&self, partition: &str, limit: usize) -> Result<Vec<SegmentRecord>, StoreError> {
        let segments = lock(&self.segments);
        let mut out: Vec<SegmentRecord> = segments
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
