//! Local adapter, the default when no AWS is configured: objects are files under
//! `{data_dir}/objects/` (written to a temporary name, fsynced, renamed), the catalog
//! and segment index live in one embedded redb database at `{data_dir}/index.redb`.
//! redb calls are synchronous and short; they run on the blocking pool.

use super::{
    check_doc, decode_head, decode_record, encode_head, encode_record, Condition, Index, ObjectStore, SegmentHead,
    SlotWrite, StoreError,
};
use crate::model::SegmentRecord;
use crate::time::Ticks;
use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DOCS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("catalog");
const SEGMENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("segments");
/// Version of each catalog document (absent for documents written before versions).
const DOC_VERSIONS: TableDefinition<(&str, &str), u64> = TableDefinition::new("catalog_versions");
/// Per segment partition: the [`SegmentHead`] (JSON) and its version.
const HEADS: TableDefinition<&str, &[u8]> = TableDefinition::new("segment_heads");
const HEAD_VERSIONS: TableDefinition<&str, u64> = TableDefinition::new("segment_head_versions");

/// Files plus an embedded database under one directory.
#[derive(Clone)]
pub struct LocalStore {
    objects_dir: PathBuf,
    db: Arc<Database>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Creates the data folder (if missing) and its objects folder owner-only (0700), and the
/// database owner-read/write (0600) before redb opens it: `index.redb` holds ingest
/// passwords. Existing objects folders and databases are narrowed to the same modes; an
/// existing data folder is left as it is (it may be a folder the operator shares).
fn private_files(objects_dir: &Path, db_path: &Path) -> Result<(), StoreError> {
    let failed = |what: &Path, e: std::io::Error| StoreError::Backend(format!("cannot create {}: {e}", what.display()));
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        dirs.mode(0o700);
    }
    dirs.create(objects_dir).map_err(|e| failed(objects_dir, e))?;
    let mut file = std::fs::OpenOptions::new();
    file.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        file.mode(0o600);
        file.open(db_path).map_err(|e| failed(db_path, e))?;
        std::fs::set_permissions(objects_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| failed(objects_dir, e))?;
        std::fs::set_permissions(db_path, std::fs::Permissions::from_mode(0o600)).map_err(|e| failed(db_path, e))?;
    }
    #[cfg(not(unix))]
    file.open(db_path).map_err(|e| failed(db_path, e))?;
    Ok(())
}

impl LocalStore {
    /// Opens (creating if needed) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<LocalStore, StoreError> {
        let objects_dir = data_dir.join("objects");
        let db_path = data_dir.join("index.redb");
        private_files(&objects_dir, &db_path)?;
        let db = Database::create(&db_path).map_err(|e| {
            let hint = match e {
                redb::DatabaseError::DatabaseAlreadyOpen => {
                    " (another process has this data directory open: the local store serves one process; \
                     run several processes against SLUICE_STORE=aws, with an emulator if need be)"
                }
                _ => "",
            };
            StoreError::Backend(format!("cannot open {}: {e}{hint}", db_path.display()))
        })?;
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(DOCS).map_err(backend)?;
        txn.open_table(SEGMENTS).map_err(backend)?;
        txn.open_table(DOC_VERSIONS).map_err(backend)?;
        txn.open_table(HEADS).map_err(backend)?;
        txn.open_table(HEAD_VERSIONS).map_err(backend)?;
        txn.commit().map_err(backend)?;
        Ok(LocalStore {
            objects_dir,
            db: Arc::new(db),
        })
    }

    fn object_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let safe = key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
        if !safe {
            return Err(StoreError::Backend(format!("unsafe object key {key:?}")));
        }
        Ok(self.objects_dir.join(key))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(backend)?
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        let path = self.object_path(key)?;
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(backend)?
        .map_err(backend)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.object_path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }
}

/// Bumps the head version of `partition` inside `txn` if it is at `version`.
fn claim(txn: &redb::WriteTransaction, partition: &str, version: u64) -> Result<bool, StoreError> {
    let mut versions = txn.open_table(HEAD_VERSIONS).map_err(backend)?;
    let current = versions.get(partition).map_err(backend)?.map_or(0, |v| v.value());
    if current != version {
        return Ok(false);
    }
    versions.insert(partition, version + 1).map_err(backend)?;
    Ok(true)
}

impl LocalStore {
    /// One write transaction on the segment tables: `f` returns what to answer and
    /// whether to commit.
    async fn segment_txn(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<SlotWrite, StoreError> + Send + 'static,
    ) -> Result<SlotWrite, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let outcome = f(&txn)?;
            if outcome == SlotWrite::Written {
                txn.commit().map_err(backend)?;
            } else {
                txn.abort().map_err(backend)?;
            }
            Ok(outcome)
        })
        .await
    }
}

#[async_trait]
impl Index for LocalStore {
    async fn get_doc_versioned(&self, pk: &str, sk: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(DOCS).map_err(backend)?;
            let Some(doc) = table.get((pk.as_str(), sk.as_str())).map_err(backend)? else {
                return Ok(None);
            };
            let versions = txn.open_table(DOC_VERSIONS).map_err(backend)?;
            let version = versions
                .get((pk.as_str(), sk.as_str()))
                .map_err(backend)?
                .map_or(0, |v| v.value());
            Ok(Some((doc.value().to_vec(), version)))
        })
        .await
    }

    async fn put_doc(&self, pk: &str, sk: &str, doc: Vec<u8>, condition: Condition) -> Result<(), StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut table = txn.open_table(DOCS).map_err(backend)?;
                let mut versions = txn.open_table(DOC_VERSIONS).map_err(backend)?;
                let key = (pk.as_str(), sk.as_str());
                let current = match table.get(key).map_err(backend)? {
                    Some(_) => Some(versions.get(key).map_err(backend)?.map_or(0, |v| v.value())),
                    None => None,
                };
                check_doc(condition, current)?;
                table.insert(key, doc.as_slice()).map_err(backend)?;
                versions.insert(key, current.unwrap_or(0) + 1).map_err(backend)?;
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn delete_doc(&self, pk: &str, sk: &str) -> Result<bool, StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let existed = {
                let mut table = txn.open_table(DOCS).map_err(backend)?;
                let removed = table.remove((pk.as_str(), sk.as_str())).map_err(backend)?.is_some();
                // The version stays, so a writer holding an older version still fails.
                removed
            };
            txn.commit().map_err(backend)?;
            Ok(existed)
        })
        .await
    }

    async fn list_docs(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let pk = pk.to_owned();
        let after = after.map(str::to_owned);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(DOCS).map_err(backend)?;
            let lower = after.clone().unwrap_or_default();
            let mut out = Vec::new();
            for entry in table.range((pk.as_str(), lower.as_str())..).map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let (p, s) = k.value();
                if p != pk {
                    break;
                }
                if after.as_deref() == Some(s) {
                    continue;
                }
                out.push((s.to_owned(), v.value().to_vec()));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn segment_head(&self, partition: &str) -> Result<(SegmentHead, u64), StoreError> {
        let partition = partition.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let versions = txn.open_table(HEAD_VERSIONS).map_err(backend)?;
            let version = versions
                .get(partition.as_str())
                .map_err(backend)?
                .map_or(0, |v| v.value());
            let heads = txn.open_table(HEADS).map_err(backend)?;
            let head = match heads.get(partition.as_str()).map_err(backend)? {
                Some(doc) => decode_head(doc.value())?,
                None => SegmentHead::default(),
            };
            Ok((head, version))
        })
        .await
    }

    async fn insert_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError> {
        let partition = record.partition();
        let start = record.start.0;
        let doc = encode_record(record)?;
        self.segment_txn(move |txn| {
            let mut table = txn.open_table(SEGMENTS).map_err(backend)?;
            if !claim(txn, &partition, version)? {
                return Ok(SlotWrite::HeadMoved);
            }
            if table.get((partition.as_str(), start)).map_err(backend)?.is_some() {
                return Ok(SlotWrite::SlotTaken);
            }
            table
                .insert((partition.as_str(), start), doc.as_slice())
                .map_err(backend)?;
            Ok(SlotWrite::Written)
        })
        .await
    }

    async fn replace_segment(&self, record: &SegmentRecord, version: u64) -> Result<SlotWrite, StoreError> {
        let partition = record.partition();
        let start = record.start.0;
        let doc = encode_record(record)?;
        self.segment_txn(move |txn| {
            if !claim(txn, &partition, version)? {
                return Ok(SlotWrite::HeadMoved);
            }
            let mut table = txn.open_table(SEGMENTS).map_err(backend)?;
            table
                .insert((partition.as_str(), start), doc.as_slice())
                .map_err(backend)?;
            Ok(SlotWrite::Written)
        })
        .await
    }

    async fn publish_segments(
        &self,
        partition: &str,
        records: &[SegmentRecord],
        head: &SegmentHead,
        version: u64,
    ) -> Result<SlotWrite, StoreError> {
        let partition = partition.to_owned();
        let docs: Vec<(u64, Vec<u8>)> = records
            .iter()
            .map(|r| Ok((r.start.0, encode_record(r)?)))
            .collect::<Result<_, StoreError>>()?;
        let head = encode_head(head)?;
        self.segment_txn(move |txn| {
            if !claim(txn, &partition, version)? {
                return Ok(SlotWrite::HeadMoved);
            }
            let mut table = txn.open_table(SEGMENTS).map_err(backend)?;
            for (start, doc) in &docs {
                table
                    .insert((partition.as_str(), *start), doc.as_slice())
                    .map_err(backend)?;
            }
            let mut heads = txn.open_table(HEADS).map_err(backend)?;
            heads.insert(partition.as_str(), head.as_slice()).map_err(backend)?;
            Ok(SlotWrite::Written)
        })
        .await
    }

    async fn latest_segments(&self, partition: &str, limit: usize) -> Result<Vec<SegmentRecord>, StoreError> {
        let partition = partition.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(SEGMENTS).map_err(backend)?;
            let range = table
                .range((partition.as_str(), 0u64)..=(partition.as_str(), u64::MAX))
                .map_err(backend)?;
            let mut out = Vec::with_capacity(limit);
            for entry in range.rev().take(limit) {
                let (_, v) = entry.map_err(backend)?;
                out.push(decode_record(v.value())?);
            }
            out.reverse();
            Ok(out)
        })
        .await
    }

    async fn segments_from(
        &self,
        partition: &str,
        from: Ticks,
        limit: usize,
    ) -> Result<Vec<SegmentRecord>, StoreError> {
        let partition = partition.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(SEGMENTS).map_err(backend)?;
            let range = table
                .range((partition.as_str(), from.0)..=(partition.as_str(), u64::MAX))
                .map_err(backend)?;
            let mut out = Vec::with_capacity(limit);
            for entry in range.take(limit) {
                let (_, v) = entry.map_err(backend)?;
                out.push(decode_record(v.value())?);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_index_meets_the_contract_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LocalStore::open(dir.path()).unwrap();
            super::super::contract::index_contract(&store).await;
            store
                .put("ch/ie/360p/0.ts", Bytes::from_static(b"abc"), "video/mp2t")
                .await
                .unwrap();
        }
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get("ch/ie/360p/0.ts").await.unwrap(),
            Some(Bytes::from_static(b"abc"))
        );
        assert_eq!(store.get("ch/ie/360p/1.ts").await.unwrap(), None);
        assert_eq!(store.latest_segments("ch#360p", 10).await.unwrap().len(), 4);
        assert!(store.put("../escape", Bytes::new(), "x").await.is_err());
    }

    #[cfg(unix)]
    #[test]
    fn data_folder_and_database_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        drop(LocalStore::open(&data).unwrap());
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("objects")), 0o700);
        assert_eq!(mode(&data.join("index.redb")), 0o600);
        // Files left readable by an older version are narrowed on the next open.
        std::fs::set_permissions(data.join("index.redb"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(data.join("objects"), std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(LocalStore::open(&data).unwrap());
        assert_eq!(mode(&data.join("objects")), 0o700);
        assert_eq!(mode(&data.join("index.redb")), 0o600);
    }
}
