//! A fault-injecting wrapper around both storage ports, for tests of what ingest and
//! playback do when S3 or DynamoDB fail: calls fail before reaching the store, fail after
//! the store did the work (the ambiguous case: a write happened but the caller hears an
//! error), or stall and then fail as a timeout would. `sluice-local` wraps its stores
//! when `SLUICE_FAULTS` names a settings file; the file is read at most every 200 ms, so
//! a test turns faults on and off while the server runs. A missing file means no faults.
//!
//! Settings (JSON, each a probability per call except `slow_ms`):
//! `{"fail": 0.1, "fail_after": 0.05, "slow": 0.02, "slow_ms": 1500}`.

use super::{Condition, Index, ObjectStore, SegmentHead, SlotWrite, StoreError, Stores};
use crate::model::SegmentRecord;
use crate::time::Ticks;
use async_trait::async_trait;
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Settings {
    fail: f64,
    fail_after: f64,
    slow: f64,
    slow_ms: u64,
}

/// What one call suffers.
#[derive(PartialEq)]
enum Fault {
    None,
    Before,
    After,
    Timeout(Duration),
}

struct Faults {
    path: PathBuf,
    state: Mutex<(Instant, Settings, u64)>,
}

impl Faults {
    fn settings(&self) -> Settings {
        let mut state = self.state.lock().expect("faults lock");
        if state.0.elapsed() >= Duration::from_millis(200) {
            state.1 = std::fs::read(&self.path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            state.0 = Instant::now();
        }
        state.1
    }

    /// A uniform number in [0, 1) (xorshift; no need for a good generator here).
    fn roll(&self) -> f64 {
        let mut state = self.state.lock().expect("faults lock");
        let mut x = state.2;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.2 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick(&self) -> Fault {
        let s = self.settings();
        let r = self.roll();
        if r < s.fail {
            Fault::Before
        } else if r < s.fail + s.fail_after {
            Fault::After
        } else if r < s.fail + s.fail_after + s.slow {
            Fault::Timeout(Duration::from_millis(s.slow_ms))
        } else {
            Fault::None
        }
    }

    async fn run<T, F>(&self, operation: &str, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let injected = |what: &str| {
            tracing::warn!(operation, fault = what, "injected storage fault");
            Err(StoreError::Backend(format!("injected fault ({what}) in {operation}")))
        };
        match self.pick() {
            Fault::None => call.await,
            Fault::Before => injected("failed before the call"),
            Fault::Timeout(wait) => {
                tokio::time::sleep(wait).await;
                injected("timed out")
            }
            Fault::After => {
                let _ = call.await;
                injected("failed after the call")
            }
        }
    }
}

/// Stores wrapped so that calls fail as the settings file says.
pub fn wrap(stores: Stores, settings_file: PathBuf) -> Stores {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let faults = Arc::new(Faults {
        path: settings_file,
        state: Mutex::new((Instant::now() - Duration::from_secs(1), Settings::default(), seed)),
    });
    Stores {
        objects: Arc::new(FaultyObjects {
            inner: stores.objects,
            faults: faults.clone(),
        }),
        index: Arc::new(FaultyIndex {
            inner: stores.index,
            faults,
        }),
    }
}

struct FaultyObjects {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

#[async_trait]
impl ObjectStore for FaultyObjects {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.faults
            .run("put object", self.inner.put(key, body, content_type))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.faults.run("get object", self.inner.get(key)).await
    }
}

struct FaultyIndex {
    inner: Arc<dyn Index>,
    faults: Arc<Faults>,
}

#[async_trait]
impl Index for FaultyIndex {
    async fn get_doc_versioned(&self, pk: &str, sk: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        self.faults.run("get doc", self.inner.get_doc_versioned(pk, sk)).await
    }

    async fn put_doc(&self, pk: &str, sk: &str, doc: Vec<u8>, condition: Condition) -> Result<(), StoreError> {
        self.faults
            .run("put doc", self.inner.put_doc(pk, sk, doc, condition))
            .await
    }

    async fn delete_doc(&self, pk: &str, sk: &str) -> Result<bool, StoreError> {
        self.faults.run("delete doc", self.inner.delete_doc(pk, sk)).await
    }

    async fn list_docs(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.faults
            .run("list docs", self.inner.list_docs(pk, after, limit))
            .await
    }

    async fn segment_head(&self, partition: &str) -> Result<(SegmentHead, u64), StoreError> {
        self.faults
            .run("segment head", self.inner.segment_head(partition))
            .await
    }

    async fn insert_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError> {
        self.faults
            .run("insert segment", self.inner.insert_segment(record, version))
            .await
    }

    async fn replace_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError> {
        self.faults
            .run("replace segment", self.inner.replace_segment(record, version))
            .await
    }

    async fn publish_segments(
        &self,
        partition: &str,
        records: &[SegmentRecord],
        head: &SegmentHead,
        version: u64,
    ) -> Result<SlotWrite, StoreError> {
        self.faults
            .run(
                "publish segments",
                self.inner.publish_segments(partition, records, head, version),
            )
            .await
    }

    async fn latest_segments(&self, partition: &str, limit: usize) -> Result<Vec<SegmentRecord>, StoreError> {
        self.faults
            .run("latest segments", self.inner.latest_segments(partition, limit))
            .await
    }

    async fn segments_from(
        &self,
        partition: &str,
        from: Ticks,
        limit: usize,
    ) -> Result<Vec<SegmentRecord>, StoreError> {
        self.faults
            .run("segments from", self.inner.segments_from(partition, from, limit))
            .await
    }
}
