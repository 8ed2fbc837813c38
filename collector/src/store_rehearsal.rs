//! The `rehearsals` sled tree (store code: only `store*` modules touch
//! sled): one `codec` record per restore rehearsal, keyed
//! `agent \0 rehearsal id`. The rehearsal task is its only user; it writes
//! a record and flushes before it answers the agent.

use std::path::PathBuf;

use crate::codec;
use crate::rehearsal::{Key, Record};
use crate::store::{Store, StoreError};

/// The rehearsals tree.
pub struct RehearsalStore {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
}

fn key(agent: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(agent.len() + id.len() + 1);
    k.extend_from_slice(agent.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

impl RehearsalStore {
    /// Opens the tree in the store's database.
    pub fn open(store: &Store) -> Result<RehearsalStore, StoreError> {
        let path = store.path().to_path_buf();
        let db = store.db().clone();
        let tree = db
            .open_tree("rehearsals")
            .map_err(|source| StoreError::Sled {
                path: path.clone(),
                source,
            })?;
        Ok(RehearsalStore { path, db, tree })
    }

    fn err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Every stored record, and how many could not be decoded (skipped).
    pub fn load(&self) -> Result<(Vec<Record>, u64), StoreError> {
        let mut out = Vec::new();
        let mut corrupt = 0;
        for kv in self.tree.iter() {
            let (_, v) = kv.map_err(|e| self.err(e))?;
            match codec::decode::<Record>(&v) {
                Ok(r) => out.push(r),
                Err(_) => corrupt += 1,
            }
        }
        Ok((out, corrupt))
    }

    /// Writes `record` and removes `evicted` in one batch (not durable
    /// until [`RehearsalStore::flush`]).
    pub fn save(&self, record: &Record, evicted: &[Key]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (agent, id) in evicted {
            batch.remove(key(agent, id));
        }
        batch.insert(key(&record.agent, &record.id), codec::encode(record)?);
        self.tree.apply_batch(batch).map_err(|e| self.err(e))
    }

    /// Removes records (trimming at start).
    pub fn remove(&self, keys: &[Key]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (agent, id) in keys {
            batch.remove(key(agent, id));
        }
        self.tree.apply_batch(batch).map_err(|e| self.err(e))
    }

    /// Makes every prior write durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearsal::{Book, RehearsalConfig, Report};

    #[tokio::test]
    async fn records_survive_reopen_and_evictions_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let cfg = RehearsalConfig {
            keep: 1,
            ..RehearsalConfig::default()
        };
        let r = |id: &str| Report {
            agent: "a1".into(),
            rehearsal_id: id.into(),
            name: String::new(),
            scenario: String::new(),
            selector: Default::default(),
            started_ms: 1_000,
            round: 1,
            results: vec![],
            green_ms: Some(5_000),
            finished: true,
        };
        {
            let store = Store::open(&path).unwrap();
            let rs = RehearsalStore::open(&store).unwrap();
            let mut book = Book::default();
            for id in ["one", "two"] {
                let (_, rec, evicted) = book.apply(&r(id), &cfg, 10);
                rs.save(&rec, &evicted).unwrap();
            }
            rs.flush().await.unwrap();
        }
        let store = Store::open(&path).unwrap();
        let rs = RehearsalStore::open(&store).unwrap();
        let (records, corrupt) = rs.load().unwrap();
        assert_eq!(corrupt, 0);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].id, "two");
        assert_eq!(records[0].elapsed_ms(), Some(4_000));
    }
}
