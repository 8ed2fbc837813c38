//! Buffer tests, including a model-based test: a random sequence of
//! operations is applied both to the buffer and to an in-memory queue
//! with the same bounds, and the two must agree after every step.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};

use super::*;

fn limits(max_entries: u64, max_bytes: u64) -> Limits {
    Limits {
        max_entries,
        max_bytes,
    }
}

fn payload(seq: u64) -> Vec<u8> {
    format!("result-{seq}").into_bytes()
}

fn entry_size(seq: u64) -> u64 {
    (8 + HEADER_LEN + payload(seq).len()) as u64
}

fn append_n(b: &Buffer, n: usize) -> Vec<u64> {
    let entries: Vec<_> = (0..n)
        .map(|_| {
            let seq = b.next_seq();
            (seq, 1_700_000_000_000i64, payload(seq))
        })
        .collect();
    b.append(&entries).unwrap();
    entries.iter().map(|e| e.0).collect()
}

#[tokio::test]
async fn sequences_survive_reopen_and_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    let (b, report) = Buffer::open(&path, limits(100, 1 << 20)).unwrap();
    assert!(report.moved_aside.is_none());
    let first = append_n(&b, 5);
    assert_eq!(first[0], b.origin_seq());
    b.ack_through(*first.last().unwrap()).unwrap();
    b.flush().await.unwrap();
    assert_eq!(b.stats().unwrap().entries, 0);
    drop(b);
    let (b, _) = Buffer::open(&path, limits(100, 1 << 20)).unwrap();
    let second = append_n(&b, 1);
    assert_eq!(
        second[0],
        first.last().unwrap() + 1,
        "an emptied buffer must not reissue a sequence"
    );
}

#[tokio::test]
async fn corrupt_directory_is_moved_aside_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("conf"), b"\x00garbage that is not a sled config").unwrap();
    std::fs::write(path.join("db"), vec![0xffu8; 4096]).unwrap();
    let (b, report) = Buffer::open(&path, limits(10, 1 << 20)).unwrap();
    let aside = report
        .moved_aside
        .expect("the corrupt buffer is moved aside");
    assert!(aside.exists());
    assert!(report.reason.is_some());
    append_n(&b, 2);
    b.flush().await.unwrap();
    assert_eq!(b.stats().unwrap().entries, 2);
}

#[tokio::test]
async fn drop_oldest_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(10, 1 << 20)).unwrap();
    let seqs = append_n(&b, 25);
    let stats = b.stats().unwrap();
    assert_eq!(stats.entries, 10);
    assert_eq!(stats.dropped.get("buffer_full"), Some(&15));
    assert_eq!(stats.oldest_seq, Some(seqs[15]));
    let read = b.read_after(0, 100, usize::MAX).unwrap();
    assert_eq!(
        read.iter().map(|e| e.seq).collect::<Vec<_>>(),
        seqs[15..].to_vec()
    );
    assert_eq!(read[0].payload.as_ref(), payload(seqs[15]).as_slice());
}

#[tokio::test]
async fn byte_bound_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(1_000, 300)).unwrap();
    append_n(&b, 50);
    let stats = b.stats().unwrap();
    assert!(stats.bytes <= 300, "{stats:?}");
    assert!(stats.entries > 0);
    assert_eq!(stats.entries + stats.dropped_total(), 50);
}

/// Model-based test: random appends, reads, acks and reopens against an
/// in-memory queue with the same bounds.
#[tokio::test]
async fn model_random_operations_agree_with_an_in_memory_queue() {
    for seed in 0..8u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buf");
        let lim = limits(rng.random_range(5..60), rng.random_range(200..3000));
        let (mut b, _) = Buffer::open(&path, lim).unwrap();
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut model_bytes = 0u64;
        let mut model_dropped = 0u64;
        let mut acked = 0u64;
        let mut last_issued = 0u64;
        for step in 0..200 {
            match rng.random_range(0..10) {
                0..=4 => {
                    let n = rng.random_range(1..8);
                    for seq in append_n(&b, n) {
                        assert!(
                            seq > last_issued,
                            "seed {seed} step {step}: sequence went backwards"
                        );
                        last_issued = seq;
                        model.push_back(seq);
                        model_bytes += entry_size(seq);
                    }
                    while model.len() as u64 > lim.max_entries || model_bytes > lim.max_bytes {
                        if let Some(s) = model.pop_front() {
                            model_bytes -= entry_size(s);
                            model_dropped += 1;
                        }
                    }
                }
                5..=6 => {
                    if let (Some(&lo), Some(&hi)) = (model.front(), model.back()) {
                        let through = rng.random_range(lo..=hi);
                        b.ack_through(through).unwrap();
                        acked = acked.max(through);
                        while model.front().is_some_and(|s| *s <= through) {
                            if let Some(s) = model.pop_front() {
                                model_bytes -= entry_size(s);
                            }
                        }
                    }
                }
                7..=8 => {
                    let after = rng.random_range(0..=last_issued.max(1));
                    let got: Vec<u64> = b
                        .read_after(after, 10, usize::MAX)
                        .unwrap()
                        .iter()
                        .map(|e| e.seq)
                        .collect();
                    let want: Vec<u64> = model
                        .iter()
                        .copied()
                        .filter(|s| *s > after)
                        .take(10)
                        .collect();
                    assert_eq!(got, want, "seed {seed} step {step}: read_after({after})");
                }
                _ => {
                    b.flush().await.unwrap();
                    drop(b);
                    b = Buffer::open(&path, lim).unwrap().0;
                }
            }
            let stats = b.stats().unwrap();
            assert_eq!(stats.entries, model.len() as u64, "seed {seed} step {step}");
            assert_eq!(stats.bytes, model_bytes, "seed {seed} step {step}");
            assert_eq!(
                stats.dropped.get("buffer_full").copied().unwrap_or(0),
                model_dropped,
                "seed {seed} step {step}"
            );
            assert_eq!(
                stats.oldest_seq,
                model.front().copied(),
                "seed {seed} step {step}"
            );
            assert!(stats.next_seq > last_issued.max(acked));
        }
    }
}
