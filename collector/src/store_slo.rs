//! The evaluation's durable state, in the collector's sled database
//! (store code: only `store*` modules touch sled).
//!
//! Trees:
//! * `slo` — minute buckets (one record per objective, site and hour),
//!   series states, and each agent's *folded* high-water mark. A fold's
//!   blocks, series and marks are written in **one atomic batch**, so after
//!   a crash the buckets equal the fold of exactly the results up to the
//!   marks, and startup replays the stored results above them.
//! * `incidents` — incidents with their timelines, by id.
//! * `maintenance` — windows created through the API, by name.
//!
//! Keys: blocks `b | hour (order-preserving BE) | objective \0 site`, so
//! retention is a range delete; series `s | agent \0 check`; marks
//! `f | agent`. Values are `codec` records that carry their own identity,
//! so nothing parses keys back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::engine::series::SeriesState;
use crate::engine::{BlockKey, Engine, Persist};
use crate::incidents::Incident;
use crate::maintenance;
use crate::slo::buckets::BlockRecord;
use crate::store::{Store, StoreError};

/// A stored block with its identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredBlock {
    objective: String,
    site: String,
    hour: i64,
    record: BlockRecord,
}

/// What a load found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    pub blocks: u64,
    pub series: u64,
    pub incidents: u64,
    pub windows: u64,
    /// Records that could not be decoded (skipped, logged).
    pub corrupt: u64,
}

/// The evaluation's trees.
pub struct SloStore {
    path: PathBuf,
    db: sled::Db,
    slo: sled::Tree,
    incidents: sled::Tree,
    maintenance: sled::Tree,
}

fn hour_key(hour: i64) -> [u8; 8] {
    ((hour as u64) ^ (1 << 63)).to_be_bytes()
}

fn block_key(k: &BlockKey) -> Vec<u8> {
    let mut v = Vec::with_capacity(10 + k.objective.len() + k.site.len());
    v.push(b'b');
    v.extend_from_slice(&hour_key(k.hour));
    v.extend_from_slice(k.objective.as_bytes());
    v.push(0);
    v.extend_from_slice(k.site.as_bytes());
    v
}

fn series_key(agent: &str, check: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + agent.len() + check.len());
    v.push(b's');
    v.extend_from_slice(agent.as_bytes());
    v.push(0);
    v.extend_from_slice(check.as_bytes());
    v
}

fn folded_key(agent: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + agent.len());
    v.push(b'f');
    v.extend_from_slice(agent.as_bytes());
    v
}

impl SloStore {
    /// Opens the trees in the store's database.
    pub fn open(store: &Store) -> Result<SloStore, StoreError> {
        let path = store.path().to_path_buf();
        let err = |source| StoreError::Sled {
            path: path.clone(),
            source,
        };
        let db = store.db().clone();
        Ok(SloStore {
            slo: db.open_tree("slo").map_err(err)?,
            incidents: db.open_tree("incidents").map_err(err)?,
            maintenance: db.open_tree("maintenance").map_err(err)?,
            db,
            path,
        })
    }

    fn err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Loads everything into a fresh engine.
    pub fn load(&self, engine: &mut Engine, now_ms: i64) -> Result<Loaded, StoreError> {
        let mut n = Loaded::default();
        for kv in self.slo.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            match k.first() {
                Some(b'b') => match codec::decode::<StoredBlock>(&v) {
                    Ok(b) => {
                        let key = BlockKey {
                            objective: b.objective,
                            site: b.site,
                            hour: b.hour,
                        };
                        engine.restore_block(&key, b.record, now_ms);
                        n.blocks += 1;
                    }
                    Err(_) => n.corrupt += 1,
                },
                Some(b's') => match codec::decode::<SeriesState>(&v) {
                    Ok(s) => {
                        engine.restore_series(s);
                        n.series += 1;
                    }
                    Err(_) => n.corrupt += 1,
                },
                Some(b'f') => {
                    let agent = String::from_utf8_lossy(&k[1..]).into_owned();
                    match <[u8; 8]>::try_from(v.as_ref()) {
                        Ok(b) => engine.restore_folded(&agent, u64::from_be_bytes(b)),
                        Err(_) => n.corrupt += 1,
                    }
                }
                _ => n.corrupt += 1,
            }
        }
        let mut incidents = Vec::new();
        for kv in self.incidents.iter() {
            let (_, v) = kv.map_err(|e| self.err(e))?;
            match codec::decode::<Incident>(&v) {
                Ok(i) => incidents.push(i),
                Err(_) => n.corrupt += 1,
            }
        }
        n.incidents = incidents.len() as u64;
        engine.restore_incidents(incidents);
        let mut windows = Vec::new();
        for kv in self.maintenance.iter() {
            let (_, v) = kv.map_err(|e| self.err(e))?;
            match codec::decode::<maintenance::Window>(&v) {
                Ok(w) => windows.push(w),
                Err(_) => n.corrupt += 1,
            }
        }
        n.windows = windows.len() as u64;
        engine.restore_windows(windows);
        if n.corrupt > 0 {
            tracing::error!(
                corrupt = n.corrupt,
                "evaluation state: undecodable records skipped"
            );
        }
        Ok(n)
    }

    /// One block, with its minutes (to fold late data into an old hour).
    pub fn load_block(&self, key: &BlockKey) -> Result<Option<BlockRecord>, StoreError> {
        match self.slo.get(block_key(key)).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => Ok(Some(codec::decode::<StoredBlock>(&v)?.record)),
        }
    }

    /// Writes what changed: buckets, series and marks in one atomic batch;
    /// then incidents. Not durable until [`SloStore::flush`].
    pub fn save(&self, p: Persist) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, record) in p.blocks {
            let k = block_key(&key);
            let v = codec::encode(&StoredBlock {
                objective: key.objective,
                site: key.site,
                hour: key.hour,
                record,
            })?;
            batch.insert(k, v);
        }
        for s in &p.series {
            batch.insert(series_key(&s.agent, &s.check), codec::encode(s)?);
        }
        for (agent, seq) in &p.folded {
            batch.insert(folded_key(agent), seq.to_be_bytes().to_vec());
        }
        self.slo.apply_batch(batch).map_err(|e| self.err(e))?;
        let mut batch = sled::Batch::default();
        for i in &p.incidents {
            batch.insert(&i.id.to_be_bytes(), codec::encode(i)?);
        }
        for id in &p.removed_incidents {
            batch.remove(&id.to_be_bytes());
        }
        self.incidents.apply_batch(batch).map_err(|e| self.err(e))
    }

    /// Stores an API maintenance window.
    pub fn put_window(&self, w: &maintenance::Window) -> Result<(), StoreError> {
        self.maintenance
            .insert(w.name.as_bytes(), codec::encode(w)?)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn remove_window(&self, name: &str) -> Result<(), StoreError> {
        self.maintenance
            .remove(name.as_bytes())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Deletes blocks of hours before `hour`.
    pub fn prune_blocks(&self, hour: i64) -> Result<u64, StoreError> {
        let mut end = vec![b'b'];
        end.extend_from_slice(&hour_key(hour));
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for kv in self.slo.range(vec![b'b']..end) {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            batch.remove(k);
            n += 1;
        }
        self.slo.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(n)
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::EngineConfig;
    use crate::model::{Outcome, Phases, ResultRecord};

    const T0: i64 = 1_710_504_000_000;

    fn rec(seq: u64, at: i64, o: Outcome) -> ResultRecord {
        ResultRecord {
            seq,
            check: "login".into(),
            kind: "login".into(),
            labels: BTreeMap::from([("objective".to_string(), "authentication".to_string())]),
            started_unix_ms: at,
            duration_us: 1_000,
            phases: Phases::default(),
            outcome: o,
            http_status: None,
            error: String::new(),
            value: None,
            confirmation: false,
            tls_cert_days_left: None,
            received_unix_ms: at + 10,
        }
    }

    #[tokio::test]
    async fn state_survives_reopen_and_old_blocks_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let labels = BTreeMap::from([("site".to_string(), "x".to_string())]);
        let now = T0 + 10 * 86_400_000;
        let reports = {
            let store = Store::open(&path).unwrap();
            let ss = SloStore::open(&store).unwrap();
            let mut e = Engine::new(EngineConfig::default());
            let rs: Vec<_> = (0..200)
                .map(|i| {
                    rec(
                        i + 1,
                        T0 + i as i64 * 3_600_000,
                        if i % 7 == 0 {
                            Outcome::Failed
                        } else {
                            Outcome::Ok
                        },
                    )
                })
                .collect();
            e.fold("a1", &labels, &rs, now);
            e.evaluate(now);
            ss.save(e.take_persist()).unwrap();
            ss.flush().await.unwrap();
            e.reports(now)
        };
        let store = Store::open(&path).unwrap();
        let ss = SloStore::open(&store).unwrap();
        let mut e = Engine::new(EngineConfig::default());
        let n = ss.load(&mut e, now).unwrap();
        assert_eq!((n.blocks, n.series, n.corrupt), (200, 1, 0));
        assert_eq!(e.folded("a1"), 200);
        assert_eq!(e.reports(now), reports);
        // Late data into an hour older than the minute horizon: load it.
        let key = BlockKey {
            objective: "authentication".into(),
            site: "x".into(),
            hour: T0 / 3_600_000,
        };
        let late = rec(201, T0 + 60_000, Outcome::Ok);
        assert_eq!(
            e.missing_detail("x", std::slice::from_ref(&late)),
            vec![key.clone()]
        );
        let block = ss.load_block(&key).unwrap().unwrap();
        e.hydrate(&key, block);
        e.fold("a1", &labels, &[late], now);
        ss.save(e.take_persist()).unwrap();
        let block = ss.load_block(&key).unwrap().unwrap();
        assert_eq!(block.minutes.len(), 2);
        assert_eq!(ss.prune_blocks(T0 / 3_600_000 + 100).unwrap(), 100);
    }
}
