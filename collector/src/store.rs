//! The collector's durable store — the only collector code that touches
//! sled — and the task that owns it.
//!
//! Invariants:
//! * **Idempotent by (agent, sequence).** Results are stored in chunks:
//!   the fresh results of one batch, at most [`CHUNK_RESULTS`] per chunk,
//!   ascending, as one value under `agent_id \0 first_seq(BE)` in the
//!   `result_chunks` tree (one sled insert per chunk instead of one per
//!   result; readers find the chunk holding a sequence by the last key at
//!   or below it). Each agent has a persisted high-water mark
//!   (`hwm`): every sequence `<= hwm` is stored or was announced as
//!   dropped. A result with `seq <= hwm` is a duplicate and is counted,
//!   not stored again — across restarts too, because the hwm is persisted
//!   in the same flush as the results (agent records changed since the
//!   last flush are written by [`Store::flush`] just before it syncs).
//! * **Flushed before acknowledged.** The store task applies a group of
//!   commands, calls `flush_async`, and only then answers; the ingest
//!   session sends the ack after that answer.
//! * **Gaps are announced, never silent.** Agents send oldest first and
//!   delete only acknowledged results, so a sequence missing between the
//!   hwm and a result of a batch was dropped by the agent — which says so:
//!   each batch carries the agent's `dropped_through` mark, and a missing
//!   sequence at or below it is counted in `gap_results` (announced,
//!   matching the agent's `dropped_total`), one above it in `lost_results`
//!   (a loss nobody accounted for; always 0 unless something is broken).
//!   Batches without the mark (old agents) count every gap as announced.
//!   A new buffer origin above the hwm (a recreated agent buffer) moves the
//!   hwm up and counts a `buffer_reset`.
//! * One task owns the store ([`spawn`]); handlers talk to it over a bounded
//!   channel. When the channel is full, handlers wait, which
//!   back-pressures agents through HTTP/2 flow control; nothing is dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::codec;
use crate::live::Live;
use crate::model::{Footprint, Hello, ResultRecord};

/// sled page cache; its default is 1 GiB.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;
/// Commands the store task accepts before handlers wait.
pub const CHANNEL_CAPACITY: usize = 1024;
/// Most commands applied in one group commit.
const MAX_GROUP: usize = 256;
/// Most results in one stored chunk. Keeps a chunk (~130 bytes a result)
/// well below the size at which sled 0.34 writes a value as a separate
/// blob file.
pub const CHUNK_RESULTS: usize = 32;
/// The results tree (chunks). The first layout, one key per result in a
/// tree named `results`, predates any release and is not read.
const RESULTS_TREE: &str = "result_chunks";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {path}: {source}; check the directory is writable and the disk has space")]
    Sled {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("store record: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("the store task has stopped")]
    Stopped,
}

/// What the collector persists about each agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub hwm: u64,
    pub origin: u64,
    pub version: String,
    pub labels: BTreeMap<String, String>,
    pub footprint: Footprint,
    pub first_seen_unix_ms: i64,
    pub last_seen_unix_ms: i64,
    pub stored: u64,
    pub duplicates: u64,
    /// Results the agent announced as dropped (gaps below a batch).
    pub gap_results: u64,
    pub buffer_resets: u64,
    /// Collector time minus agent time at the last hello/heartbeat, ms.
    pub clock_offset_ms: i64,
    /// Missing sequences the agent did not announce as dropped.
    pub lost_results: u64,
}

/// The sled database and the agents' states.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    results: sled::Tree,
    agents_tree: sled::Tree,
    agents: HashMap<String, AgentState>,
    /// Agents whose record changed since the last flush.
    dirty: HashSet<String>,
}

pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn result_key(agent: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(agent.len() + 9);
    k.extend_from_slice(agent.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Outcome of one ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    pub hwm: u64,
    pub stored: u64,
    pub duplicates: u64,
    /// Missing sequences announced as dropped by the agent.
    pub gap: u64,
    /// Missing sequences not announced.
    pub lost: u64,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let sled_err = |source| StoreError::Sled {
            path: path.to_path_buf(),
            source,
        };
        // The one place this crate opens sled (clippy.toml disallows it elsewhere).
        #[allow(clippy::disallowed_methods)]
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .flush_every_ms(Some(1000))
            .open()
            .map_err(sled_err)?;
        let results = db.open_tree(RESULTS_TREE).map_err(sled_err)?;
        let agents_tree = db.open_tree("agents").map_err(sled_err)?;
        let mut agents = HashMap::new();
        for kv in agents_tree.iter() {
            let (k, v) = kv.map_err(sled_err)?;
            let id = String::from_utf8_lossy(&k).into_owned();
            agents.insert(id, codec::decode::<AgentState>(&v)?);
        }
        Ok(Store {
            path: path.to_path_buf(),
            db,
            results,
            agents_tree,
            agents,
            dirty: HashSet::new(),
        })
    }

    /// The database, for the other store modules (`store_slo`).
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// Every agent's state.
    pub fn agents(&self) -> &HashMap<String, AgentState> {
        &self.agents
    }

    /// Marks an agent's record for the next [`Store::flush`].
    fn save_agent(&mut self, id: &str) -> Result<(), StoreError> {
        if !self.dirty.contains(id) {
            self.dirty.insert(id.to_string());
        }
        Ok(())
    }

    /// Writes the records of the agents changed since the last flush.
    fn write_dirty(&mut self) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for id in self.dirty.drain() {
            if let Some(state) = self.agents.get(&id) {
                batch.insert(id.as_bytes(), codec::encode(state)?);
            }
        }
        self.agents_tree
            .apply_batch(batch)
            .map_err(|e| StoreError::Sled {
                path: self.path.clone(),
                source: e,
            })
    }

    /// Registers a hello; returns the agent's high-water mark.
    pub fn hello(&mut self, hello: &Hello, now_ms: i64) -> Result<u64, StoreError> {
        let state = self
            .agents
            .entry(hello.agent_id.clone())
            .or_insert_with(|| AgentState {
                first_seen_unix_ms: now_ms,
                ..AgentState::default()
            });
        if hello.buffer_origin_seq > state.hwm.saturating_add(1) {
            if state.hwm > 0 {
                state.buffer_resets += 1;
                tracing::warn!(agent = %hello.agent_id, old_hwm = state.hwm, new_origin = hello.buffer_origin_seq,
                    "agent buffer was recreated; results it held and had not delivered are lost at the agent");
            }
            state.hwm = hello.buffer_origin_seq - 1;
        }
        state.origin = hello.buffer_origin_seq;
        state.version = hello.version.clone();
        state.labels = hello.labels.clone();
        state.footprint = hello.footprint;
        state.last_seen_unix_ms = now_ms;
        state.clock_offset_ms = now_ms - hello.footprint.sent_at_unix_ms;
        let hwm = state.hwm;
        self.save_agent(&hello.agent_id)?;
        Ok(hwm)
    }

    /// Records a heartbeat's footprint (persisted with the next flush).
    pub fn heartbeat(
        &mut self,
        agent: &str,
        footprint: Footprint,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(state) = self.agents.get_mut(agent) {
            state.footprint = footprint;
            state.last_seen_unix_ms = now_ms;
            state.clock_offset_ms = now_ms - footprint.sent_at_unix_ms;
        }
        self.save_agent(agent)
    }

    /// Stores a batch (ascending sequences, validated by ingest) and
    /// returns the new high-water mark. `dropped_through` is the agent's
    /// announcement (see the module doc). Not durable until [`Store::flush`].
    pub fn ingest(
        &mut self,
        agent: &str,
        results: &[ResultRecord],
        dropped_through: Option<u64>,
        now_ms: i64,
    ) -> Result<Ingested, StoreError> {
        let mut out = Ingested::default();
        let state = self.agents.entry(agent.to_string()).or_default();
        let mut hwm = state.hwm;
        // Results arrive ascending (ingest validated it): the fresh ones
        // are a suffix, stored as chunks.
        let mut fresh_from = results.len();
        for (i, r) in results.iter().enumerate() {
            if r.seq <= hwm {
                out.duplicates += 1;
                continue;
            }
            fresh_from = fresh_from.min(i);
            if r.seq > hwm + 1 {
                let missing = r.seq - hwm - 1;
                let announced =
                    dropped_through.map_or(missing, |d| (r.seq - 1).min(d).saturating_sub(hwm));
                out.gap += announced;
                out.lost += missing - announced;
            }
            hwm = r.seq;
            out.stored += 1;
        }
        if out.stored > 0 {
            let mut batch = sled::Batch::default();
            for chunk in results[fresh_from..].chunks(CHUNK_RESULTS) {
                batch.insert(result_key(agent, chunk[0].seq), codec::encode(&chunk)?);
            }
            self.results
                .apply_batch(batch)
                .map_err(|e| StoreError::Sled {
                    path: self.path.clone(),
                    source: e,
                })?;
        }
        let state = self.agents.entry(agent.to_string()).or_default();
        state.hwm = hwm;
        state.stored += out.stored;
        state.duplicates += out.duplicates;
        state.gap_results += out.gap;
        state.lost_results += out.lost;
        state.last_seen_unix_ms = now_ms;
        out.hwm = hwm;
        self.save_agent(agent)?;
        Ok(out)
    }

    /// Makes every prior write durable (agent records included).
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        self.write_dirty()?;
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(|e| self.sled_err(e))
    }

    /// Up to `limit` stored results of `agent` with sequence > `after`.
    pub fn results_after(
        &self,
        agent: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ResultRecord>, StoreError> {
        let first = after.saturating_add(1);
        let end = result_key(agent, u64::MAX);
        // The chunk holding `first` starts at or below it.
        let from = match self
            .results
            .range(result_key(agent, 0)..=result_key(agent, first))
            .next_back()
        {
            Some(kv) => kv.map_err(|e| self.sled_err(e))?.0.to_vec(),
            None => result_key(agent, first),
        };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for kv in self.results.range(from..=end) {
            let (_, v) = kv.map_err(|e| self.sled_err(e))?;
            let chunk: Vec<ResultRecord> = codec::decode(&v)?;
            for r in chunk.into_iter().filter(|r| r.seq >= first) {
                out.push(r);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Deletes results that started before `cutoff_ms`. Sequences rise with
    /// time per agent, so each agent's scan stops at its first newer result
    /// (a chunk holding both is rewritten with its newer results).
    pub fn prune(&mut self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        for id in ids {
            let start = result_key(&id, 0);
            let end = result_key(&id, u64::MAX);
            let mut batch = sled::Batch::default();
            for kv in self.results.range(start..=end) {
                let (k, v) = kv.map_err(|e| self.sled_err(e))?;
                let chunk: Vec<ResultRecord> = codec::decode(&v)?;
                let old = chunk
                    .iter()
                    .take_while(|r| r.started_unix_ms < cutoff_ms)
                    .count();
                if old == 0 {
                    break;
                }
                batch.remove(k);
                removed += old as u64;
                if old < chunk.len() {
                    let rest = &chunk[old..];
                    batch.insert(result_key(&id, rest[0].seq), codec::encode(&rest)?);
                    break;
                }
            }
            self.results
                .apply_batch(batch)
                .map_err(|e| self.sled_err(e))?;
        }
        Ok(removed)
    }
}

/// Requests to the store task.
pub enum Command {
    Hello {
        hello: Hello,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    Ingest {
        agent: String,
        results: Vec<ResultRecord>,
        dropped_through: Option<u64>,
        reply: oneshot::Sender<Result<Ingested, StoreError>>,
    },
    Heartbeat {
        agent: String,
        footprint: Footprint,
    },
    Results {
        agent: String,
        after: u64,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<ResultRecord>, StoreError>>,
    },
    Prune {
        cutoff_ms: i64,
    },
}

/// A handle to the store task. Cheap to clone.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Command>,
}

impl StoreHandle {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Stopped)?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// Registers a hello (durably); returns the high-water mark to ack.
    pub async fn hello(&self, hello: Hello) -> Result<u64, StoreError> {
        self.call(|reply| Command::Hello { hello, reply }).await
    }

    /// Stores a batch durably; returns what happened.
    pub async fn ingest(
        &self,
        agent: String,
        results: Vec<ResultRecord>,
        dropped_through: Option<u64>,
    ) -> Result<Ingested, StoreError> {
        self.call(|reply| Command::Ingest {
            agent,
            results,
            dropped_through,
            reply,
        })
        .await
    }

    /// Records a heartbeat (fire and forget; waits only for queue space).
    pub async fn heartbeat(&self, agent: String, footprint: Footprint) {
        let _ = self.tx.send(Command::Heartbeat { agent, footprint }).await;
    }

    /// Reads stored results.
    pub async fn results(
        &self,
        agent: String,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ResultRecord>, StoreError> {
        self.call(|reply| Command::Results {
            agent,
            after,
            limit,
            reply,
        })
        .await
    }

    /// Asks the task to delete results older than `cutoff_ms`.
    pub async fn prune(&self, cutoff_ms: i64) {
        let _ = self.tx.send(Command::Prune { cutoff_ms }).await;
    }
}

enum Pending {
    Hello(
        oneshot::Sender<Result<u64, StoreError>>,
        Result<u64, StoreError>,
    ),
    Ingest(
        oneshot::Sender<Result<Ingested, StoreError>>,
        Result<Ingested, StoreError>,
    ),
}

/// Results of one agent that just became durable, for the evaluator.
#[derive(Debug, Clone)]
pub struct StoredResults {
    pub agent: String,
    pub agent_labels: BTreeMap<String, String>,
    pub results: Vec<ResultRecord>,
}

/// Spawns the store task. It ends when every handle is dropped, after a
/// final flush. `live` is updated after each durable group.
pub fn spawn(store: Store, live: Arc<Mutex<Live>>) -> (StoreHandle, tokio::task::JoinHandle<()>) {
    spawn_observed(store, live, None)
}

/// As [`spawn`]; after each durable group (and after answering ingest)
/// the newly stored results are also sent to `observer` (the evaluator).
/// When that bounded channel is full the store task waits: the evaluator
/// back-pressures ingest rather than missing results.
pub fn spawn_observed(
    mut store: Store,
    live: Arc<Mutex<Live>>,
    observer: Option<mpsc::Sender<StoredResults>>,
) -> (StoreHandle, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Command>(CHANNEL_CAPACITY);
    {
        let mut l = live.lock().unwrap_or_else(|p| p.into_inner());
        for (id, state) in store.agents() {
            l.update_agent(id, state);
        }
    }
    let task = tokio::spawn(async move {
        let mut cmds = Vec::with_capacity(MAX_GROUP);
        while rx.recv_many(&mut cmds, MAX_GROUP).await > 0 {
            let now = now_unix_ms();
            let mut pending = Vec::new();
            let mut stored: Vec<(String, Vec<ResultRecord>)> = Vec::new();
            let mut touched: Vec<String> = Vec::new();
            for cmd in cmds.drain(..) {
                match cmd {
                    Command::Hello { hello, reply } => {
                        let r = store.hello(&hello, now);
                        touched.push(hello.agent_id);
                        pending.push(Pending::Hello(reply, r));
                    }
                    Command::Ingest {
                        agent,
                        mut results,
                        dropped_through,
                        reply,
                    } => {
                        for r in &mut results {
                            r.received_unix_ms = now;
                        }
                        let hwm_before = store.agents().get(&agent).map_or(0, |s| s.hwm);
                        let r = store.ingest(&agent, &results, dropped_through, now);
                        if r.as_ref().is_ok_and(|ing| ing.stored > 0) {
                            let fresh: Vec<ResultRecord> =
                                results.into_iter().filter(|x| x.seq > hwm_before).collect();
                            stored.push((agent.clone(), fresh));
                        }
                        touched.push(agent);
                        pending.push(Pending::Ingest(reply, r));
                    }
                    Command::Heartbeat { agent, footprint } => {
                        if let Err(e) = store.heartbeat(&agent, footprint, now) {
                            tracing::error!(error = %e, "heartbeat not recorded");
                        }
                        touched.push(agent);
                    }
                    Command::Results {
                        agent,
                        after,
                        limit,
                        reply,
                    } => {
                        let _ = reply.send(store.results_after(&agent, after, limit));
                    }
                    Command::Prune { cutoff_ms } => match store.prune(cutoff_ms) {
                        Ok(n) if n > 0 => {
                            tracing::info!(removed = n, "retention: pruned old results")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "retention prune failed"),
                    },
                }
            }
            let flushed = store.flush().await;
            if let Err(e) = &flushed {
                tracing::error!(error = %e, "store flush failed; nothing in this group is acknowledged");
            }
            {
                let mut l = live.lock().unwrap_or_else(|p| p.into_inner());
                if flushed.is_ok() {
                    for (agent, results) in &stored {
                        l.record_results(agent, results);
                    }
                }
                for p in &pending {
                    if let Pending::Ingest(_, Ok(ing)) = p {
                        l.duplicates(ing.duplicates);
                    }
                }
                touched.sort_unstable();
                touched.dedup();
                for id in &touched {
                    if let Some(state) = store.agents().get(id) {
                        l.update_agent(id, state);
                    }
                }
            }
            for p in pending {
                match p {
                    Pending::Hello(reply, r) => {
                        let _ = reply.send(match (&flushed, r) {
                            (Ok(()), r) => r,
                            (Err(_), _) => Err(StoreError::Stopped),
                        });
                    }
                    Pending::Ingest(reply, r) => {
                        let _ = reply.send(match (&flushed, r) {
                            (Ok(()), r) => r,
                            (Err(_), _) => Err(StoreError::Stopped),
                        });
                    }
                }
            }
            if let (Some(tx), Ok(())) = (&observer, &flushed) {
                for (agent, results) in stored {
                    let agent_labels = store
                        .agents()
                        .get(&agent)
                        .map(|s| s.labels.clone())
                        .unwrap_or_default();
                    let group = StoredResults {
                        agent,
                        agent_labels,
                        results,
                    };
                    if tx.send(group).await.is_err() {
                        tracing::debug!("evaluator stopped; it replays from the store on start");
                    }
                }
            }
        }
        if let Err(e) = store.flush().await {
            tracing::error!(error = %e, "final store flush failed");
        }
    });
    (StoreHandle { tx }, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, Phases};

    fn rec(seq: u64) -> ResultRecord {
        ResultRecord {
            seq,
            check: "home".into(),
            kind: "page".into(),
            labels: BTreeMap::new(),
            started_unix_ms: 1_000 * seq as i64,
            duration_us: 10,
            phases: Phases::default(),
            outcome: Outcome::Ok,
            http_status: Some(200),
            error: String::new(),
            value: None,
            confirmation: false,
            tls_cert_days_left: None,
            received_unix_ms: 0,
        }
    }

    fn hello(origin: u64) -> Hello {
        Hello {
            agent_id: "a1".into(),
            version: "0".into(),
            labels: BTreeMap::new(),
            buffer_origin_seq: origin,
            footprint: Footprint::default(),
        }
    }

    #[tokio::test]
    async fn duplicates_are_dropped_across_reopen_and_gaps_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.hello(&hello(100), 0).unwrap(), 99);
        let r = s
            .ingest("a1", &[rec(100), rec(101), rec(102)], None, 0)
            .unwrap();
        assert_eq!((r.hwm, r.stored, r.duplicates, r.gap), (102, 3, 0, 0));
        s.flush().await.unwrap();
        drop(s);
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.hello(&hello(100), 0).unwrap(), 102);
        let r = s
            .ingest("a1", &[rec(101), rec(102), rec(103), rec(110)], None, 0)
            .unwrap();
        assert_eq!((r.hwm, r.stored, r.duplicates, r.gap), (110, 2, 2, 6));
        let seqs: Vec<u64> = s
            .results_after("a1", 0, 100)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, vec![100, 101, 102, 103, 110]);
        assert_eq!(s.agents()["a1"].gap_results, 6);
    }

    #[tokio::test]
    async fn announced_gaps_are_told_apart_from_losses() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("store")).unwrap();
        s.hello(&hello(1), 0).unwrap();
        s.ingest("a1", &[rec(1), rec(2)], Some(0), 0).unwrap();
        // 3..=5 dropped by the agent and announced (dropped_through 5);
        // 6 and 7 missing without an announcement; 9 inside the batch is
        // missing too and above the mark.
        let r = s.ingest("a1", &[rec(8), rec(10)], Some(5), 0).unwrap();
        assert_eq!((r.hwm, r.stored, r.gap, r.lost), (10, 2, 3, 3));
        let a = &s.agents()["a1"];
        assert_eq!((a.gap_results, a.lost_results), (3, 3));
        // An announcement covering the whole gap: all announced.
        let r = s.ingest("a1", &[rec(20)], Some(19), 0).unwrap();
        assert_eq!((r.gap, r.lost), (9, 0));
        // Duplicates never count as gaps.
        let r = s
            .ingest("a1", &[rec(19), rec(20), rec(21)], Some(19), 0)
            .unwrap();
        assert_eq!((r.duplicates, r.stored, r.gap, r.lost), (2, 1, 0, 0));
    }

    #[tokio::test]
    async fn a_recreated_agent_buffer_moves_the_hwm_and_counts_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("store")).unwrap();
        s.hello(&hello(10), 0).unwrap();
        s.ingest("a1", &[rec(10), rec(11)], None, 0).unwrap();
        assert_eq!(s.hello(&hello(5_000), 0).unwrap(), 4_999);
        assert_eq!(s.agents()["a1"].buffer_resets, 1);
        let r = s.ingest("a1", &[rec(5_000)], None, 0).unwrap();
        assert_eq!((r.stored, r.gap), (1, 0));
    }

    #[tokio::test]
    async fn reads_start_mid_chunk_and_cross_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("store")).unwrap();
        s.hello(&hello(1), 0).unwrap();
        s.ingest("a1", &(1..=100).map(rec).collect::<Vec<_>>(), None, 0)
            .unwrap();
        s.ingest("a1", &(101..=110).map(rec).collect::<Vec<_>>(), None, 0)
            .unwrap();
        fn seqs(s: &Store, after: u64, limit: usize) -> Vec<u64> {
            s.results_after("a1", after, limit)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect()
        }
        assert_eq!(seqs(&s, 40, 10), (41..=50).collect::<Vec<_>>());
        assert_eq!(seqs(&s, 60, 1000), (61..=110).collect::<Vec<_>>());
        assert_eq!(seqs(&s, 0, 3), vec![1, 2, 3]);
        assert!(seqs(&s, 110, 10).is_empty());
        assert!(s.results_after("a2", 0, 10).unwrap().is_empty());
        // 100 results in chunks of CHUNK_RESULTS, then one chunk of 10.
        assert_eq!(s.results.len(), 100_usize.div_ceil(CHUNK_RESULTS) + 1);
        assert_eq!(s.prune(1_000 * 50 + 1).unwrap(), 50);
        assert_eq!(seqs(&s, 0, 1), vec![51]);
    }

    #[tokio::test]
    async fn prune_removes_only_old_results() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("store")).unwrap();
        s.hello(&hello(1), 0).unwrap();
        s.ingest("a1", &(1..=10).map(rec).collect::<Vec<_>>(), None, 0)
            .unwrap();
        assert_eq!(s.prune(5_500).unwrap(), 5);
        let seqs: Vec<u64> = s
            .results_after("a1", 0, 100)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, vec![6, 7, 8, 9, 10]);
    }
}
