//! Buffer tests, including a model-based test: a random sequence of
//! operations (commits, failed commits, reads, acks, recoveries, reopens)
//! is applied both to the buffer and to an in-memory queue with the same
//! bounds, and the two must agree after every step.

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
    chunk::entry_size(payload(seq).len())
}

fn group(b: &Buffer, n: usize) -> Vec<(u64, i64, Vec<u8>)> {
    (0..n)
        .map(|_| {
            let seq = b.next_seq();
            (seq, 1_700_000_000_000i64, payload(seq))
        })
        .collect()
}

/// Appends and flushes `n` entries (one group commit).
async fn append_n(b: &Buffer, n: usize) -> Vec<u64> {
    let entries = group(b, n);
    b.commit(&entries).await.unwrap();
    entries.iter().map(|e| e.0).collect()
}

/// Opens `path` again after the previous instance was dropped; sled
/// releases its file lock from a background thread, so a reopen right
/// after a drop may briefly find it locked.
async fn reopen(path: &std::path::Path, lim: Limits) -> Buffer {
    for _ in 0..100 {
        match Buffer::open(path, lim) {
            Err(BufferError::Locked { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => return other.unwrap().0,
        }
    }
    panic!(
        "{} stayed locked after its instance was dropped",
        path.display()
    );
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn sequences_survive_reopen_and_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    let (b, report) = Buffer::open(&path, limits(100, 1 << 20)).unwrap();
    assert!(report.moved_aside.is_none());
    let first = append_n(&b, 5).await;
    assert_eq!(first[0], b.origin_seq());
    b.ack_through(*first.last().unwrap()).unwrap();
    b.flush().await.unwrap();
    assert_eq!(b.stats().entries, 0);
    drop(b);
    let b = reopen(&path, limits(100, 1 << 20)).await;
    let second = append_n(&b, 1).await;
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
    assert!(
        matches!(
            Buffer::inspect(&path, limits(10, 1 << 20)),
            Err(BufferError::Storage { .. })
        ),
        "inspect reports the corruption and moves nothing"
    );
    assert!(path.join("conf").exists());
    let (b, report) = Buffer::open(&path, limits(10, 1 << 20)).unwrap();
    let aside = report
        .moved_aside
        .expect("the corrupt buffer is moved aside");
    assert!(aside.join("conf").exists(), "moved, not deleted");
    assert!(report.reason.is_some());
    append_n(&b, 2).await;
    assert_eq!(b.stats().entries, 2);
}

#[tokio::test]
async fn a_path_that_is_a_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    std::fs::write(&path, b"not a directory").unwrap();
    let (b, report) = Buffer::open(&path, limits(10, 1 << 20)).unwrap();
    let aside = report.moved_aside.expect("moved aside");
    assert_eq!(std::fs::read(&aside).unwrap(), b"not a directory");
    append_n(&b, 1).await;
    assert!(path.is_dir());
}

#[tokio::test]
async fn a_locked_buffer_is_never_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    let (b, _) = Buffer::open(&path, limits(10, 1 << 20)).unwrap();
    append_n(&b, 3).await;
    let second = Buffer::open(&path, limits(10, 1 << 20));
    assert!(
        matches!(second, Err(BufferError::Locked { .. })),
        "{second:?}"
    );
    assert!(matches!(
        Buffer::inspect(&path, limits(10, 1 << 20)),
        Err(BufferError::Locked { .. })
    ));
    let siblings: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings.len(), 1, "nothing moved aside: {siblings:?}");
    assert_eq!(b.stats().entries, 3);
}

#[tokio::test]
async fn an_ack_beyond_what_was_issued_moves_the_sequence_on() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(100, 1 << 20)).unwrap();
    let first = append_n(&b, 2).await;
    let foreign = first[1] + 1_000;
    b.ack_through(foreign).unwrap();
    let later = append_n(&b, 2).await;
    assert!(
        later[0] > foreign,
        "new results go above what the collector holds"
    );
    assert_eq!(
        seqs(&b.read_after(0, 100, usize::MAX).await.unwrap()),
        later,
        "and they are sent"
    );
}

#[tokio::test]
async fn only_flushed_entries_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(100, 1 << 20)).unwrap();
    let durable = append_n(&b, 2).await;
    let pending = group(&b, 3);
    b.write_group(&b.handles().unwrap(), &pending).unwrap();
    assert_eq!(b.stats().entries, 5);
    assert_eq!(
        seqs(&b.read_after(0, 100, usize::MAX).await.unwrap()),
        durable,
        "unflushed entries are not sent"
    );
    b.flush().await.unwrap();
    assert_eq!(b.read_after(0, 100, usize::MAX).await.unwrap().len(), 5);
}

#[tokio::test]
async fn drop_oldest_counts_and_announces_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(10, 1 << 20)).unwrap();
    let mut all = Vec::new();
    for _ in 0..5 {
        all.extend(append_n(&b, 5).await);
    }
    let stats = b.stats();
    assert_eq!(stats.entries, 10);
    assert_eq!(stats.dropped(DropReason::BufferFull), 15);
    assert_eq!(stats.oldest_seq, Some(all[15]));
    assert_eq!(stats.dropped_through, all[14]);
    let read = b.read_after(0, 100, usize::MAX).await.unwrap();
    assert_eq!(seqs(&read), all[15..].to_vec());
    assert_eq!(read[0].payload.as_ref(), payload(all[15]).as_slice());
}

#[tokio::test]
async fn a_group_larger_than_the_bound_keeps_its_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(4, 1 << 20)).unwrap();
    let old = append_n(&b, 3).await;
    let new = append_n(&b, 6).await;
    let stats = b.stats();
    assert_eq!(stats.dropped(DropReason::BufferFull), 5);
    assert_eq!(stats.dropped_through, new[1]);
    assert!(old[2] < new[0]);
    assert_eq!(
        seqs(&b.read_after(0, 100, usize::MAX).await.unwrap()),
        new[2..].to_vec()
    );
}

fn data_keys(b: &Buffer) -> usize {
    b.handles()
        .unwrap()
        .results
        .range(..state::STATE_KEY)
        .count()
}

#[tokio::test]
async fn small_groups_are_packed_into_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    let (b, _) = Buffer::open(&path, limits(10_000, 1 << 30)).unwrap();
    let mut all = Vec::new();
    for _ in 0..200 {
        all.extend(append_n(&b, 1).await);
    }
    // 3 full chunks of 64, then 8 single-entry chunks not yet packed.
    assert_eq!(data_keys(&b), 3 + 8);
    assert_eq!(
        seqs(&b.read_after(0, usize::MAX, usize::MAX).await.unwrap()),
        all
    );
    // A large group is split into full chunks straight away.
    let big = append_n(&b, 150).await;
    assert_eq!(data_keys(&b), 3 + 3, "8 carried + 150 = 158 = 64 + 64 + 30");
    all.extend(big);
    assert_eq!(
        seqs(
            &b.read_after(all[100], usize::MAX, usize::MAX)
                .await
                .unwrap()
        ),
        all[101..].to_vec()
    );
    // Acks in the middle of a chunk: the rest stays readable, the counts
    // follow, and a restart agrees.
    b.ack_through(all[70]).unwrap();
    assert_eq!(b.stats().entries, all.len() as u64 - 71);
    assert_eq!(b.stats().oldest_seq, Some(all[71]));
    drop(b);
    let b = reopen(&path, limits(10_000, 1 << 30)).await;
    assert_eq!(
        seqs(&b.read_after(0, usize::MAX, usize::MAX).await.unwrap()),
        all[71..].to_vec()
    );
    assert_eq!(b.stats().entries, all.len() as u64 - 71);
}

#[tokio::test]
async fn the_periodic_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(1_000_000, 1 << 30)).unwrap();
    let mut all = Vec::new();
    let big = vec![7u8; 16 * 1024];
    // 24 MiB in groups of 64 x 16 KiB: at least one reopen on the way.
    for _ in 0..24 {
        let g: Vec<_> = (0..64).map(|_| (b.next_seq(), 1i64, big.clone())).collect();
        all.extend(g.iter().map(|e| e.0));
        b.commit(&g).await.unwrap();
    }
    let written = b.inner.written_since_open.load(Ordering::SeqCst);
    assert!(
        written < 24 * 64 * 16 * 1024,
        "reopened on the way ({written} bytes since the last open)"
    );
    assert!(b.stats().available);
    let read = b.read_after(0, usize::MAX, usize::MAX).await.unwrap();
    assert_eq!(seqs(&read), all);
    assert!(read.iter().all(|e| e.payload.as_ref() == big.as_slice()));
    b.ack_through(all[1000]).unwrap();
    assert_eq!(b.stats().entries, (all.len() - 1001) as u64);
}

#[tokio::test]
async fn byte_bound_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(1_000, 300)).unwrap();
    for _ in 0..10 {
        append_n(&b, 5).await;
    }
    let stats = b.stats();
    assert!(stats.bytes <= 300, "{stats:?}");
    assert!(stats.entries > 0);
    assert_eq!(stats.entries + stats.dropped_total(), 50);
}

#[tokio::test]
async fn a_failed_flush_abandons_the_group_and_the_buffer_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buf");
    let (b, _) = Buffer::open(&path, limits(100, 1 << 20)).unwrap();
    let good = append_n(&b, 4).await;
    b.fail_next_flush();
    let failed = group(&b, 3);
    assert!(b.commit(&failed).await.is_err());
    let stats = b.stats();
    assert!(!stats.available);
    assert_eq!(stats.dropped(DropReason::WriteError), 3);
    assert_eq!(stats.dropped_through, failed[2].0);
    assert_eq!(
        seqs(&b.read_after(0, 100, usize::MAX).await.unwrap()),
        good,
        "an abandoned group is never readable"
    );
    // The next commit recovers first: the abandoned group is gone from
    // disk, the new group is written.
    let later = append_n(&b, 2).await;
    let stats = b.stats();
    assert!(stats.available);
    assert_eq!(stats.entries, 6);
    let mut want = good.clone();
    want.extend(&later);
    assert_eq!(seqs(&b.read_after(0, 100, usize::MAX).await.unwrap()), want);
    // And all of it is what a restart finds.
    drop(b);
    let b = reopen(&path, limits(100, 1 << 20)).await;
    assert_eq!(seqs(&b.read_after(0, 100, usize::MAX).await.unwrap()), want);
    let stats = b.stats();
    assert_eq!(stats.dropped(DropReason::WriteError), 3);
    assert_eq!(stats.dropped_through, failed[2].0);
    assert!(stats.next_seq > later[1]);
}

#[tokio::test]
async fn recover_without_a_commit_reopens_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = Buffer::open(&dir.path().join("buf"), limits(100, 1 << 20)).unwrap();
    let good = append_n(&b, 2).await;
    b.fail_next_flush();
    let g = group(&b, 2);
    assert!(b.commit(&g).await.is_err());
    assert!(b.needs_recovery());
    assert!(b.recover().await.unwrap());
    assert!(!b.recover().await.unwrap(), "nothing left to recover");
    assert_eq!(seqs(&b.read_after(0, 100, usize::MAX).await.unwrap()), good);
}

/// Model-based test: random commits (some failing), reads, acks,
/// recoveries and reopens against an in-memory queue with the same bounds.
#[tokio::test]
async fn model_random_operations_agree_with_an_in_memory_queue() {
    for seed in 0..12u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buf");
        // Small bounds exercise drop-oldest; large ones let the tail pack
        // into full chunks (64 entries).
        let lim = if seed % 2 == 0 {
            limits(rng.random_range(5..60), rng.random_range(200..3000))
        } else {
            limits(rng.random_range(100..400), rng.random_range(4000..30000))
        };
        let (mut b, _) = Buffer::open(&path, lim).unwrap();
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut model_bytes = 0u64;
        let mut full_dropped = 0u64;
        let mut write_dropped = 0u64;
        let mut dropped_through = 0u64;
        let mut acked = 0u64;
        let mut last_issued = 0u64;
        for step in 0..250 {
            let ctx = format!("seed {seed} step {step}");
            match rng.random_range(0..12) {
                0..=5 => {
                    let n = if rng.random_range(0..4) == 0 {
                        rng.random_range(20..90)
                    } else {
                        rng.random_range(1..8)
                    };
                    let fail = rng.random_range(0..5) == 0;
                    if fail {
                        b.fail_next_flush();
                    }
                    let g = group(&b, n);
                    let ok = b.commit(&g).await.is_ok();
                    assert_eq!(ok, !fail, "{ctx}");
                    // Room is made for the whole group first (oldest out),
                    // then a failed group's written part is abandoned.
                    for (seq, _, _) in &g {
                        assert!(*seq > last_issued, "{ctx}: sequence went backwards");
                        last_issued = *seq;
                        model.push_back(*seq);
                        model_bytes += entry_size(*seq);
                    }
                    while model.len() as u64 > lim.max_entries || model_bytes > lim.max_bytes {
                        if let Some(s) = model.pop_front() {
                            model_bytes -= entry_size(s);
                            full_dropped += 1;
                            dropped_through = dropped_through.max(s);
                        }
                    }
                    if fail {
                        while model.back().is_some_and(|s| *s >= g[0].0) {
                            if let Some(s) = model.pop_back() {
                                model_bytes -= entry_size(s);
                                write_dropped += 1;
                            }
                        }
                        dropped_through = dropped_through.max(last_issued);
                    }
                }
                6..=7 => {
                    if let (Some(&lo), Some(&hi)) = (model.front(), model.back()) {
                        let through = rng.random_range(lo..=hi);
                        if b.ack_through(through).is_ok() {
                            acked = acked.max(through);
                            while model.front().is_some_and(|s| *s <= through) {
                                if let Some(s) = model.pop_front() {
                                    model_bytes -= entry_size(s);
                                }
                            }
                        }
                    }
                }
                8..=9 => {
                    let after = rng.random_range(0..=last_issued.max(1));
                    if let Ok(got) = b.read_after(after, 10, usize::MAX).await {
                        let want: Vec<u64> = model
                            .iter()
                            .copied()
                            .filter(|s| *s > after)
                            .take(10)
                            .collect();
                        assert_eq!(seqs(&got), want, "{ctx}: read_after({after})");
                    }
                }
                10 => {
                    b.recover().await.unwrap();
                }
                _ => {
                    b.recover().await.unwrap();
                    b.flush().await.unwrap();
                    drop(b);
                    b = reopen(&path, lim).await;
                }
            }
            if b.needs_recovery() {
                // Counts are exact again once recovered.
                continue;
            }
            let stats = b.stats();
            assert_eq!(stats.entries, model.len() as u64, "{ctx}");
            assert_eq!(stats.bytes, model_bytes, "{ctx}");
            assert_eq!(stats.dropped(DropReason::BufferFull), full_dropped, "{ctx}");
            assert_eq!(
                stats.dropped(DropReason::WriteError),
                write_dropped,
                "{ctx}"
            );
            assert_eq!(stats.dropped_through, dropped_through, "{ctx}");
            assert_eq!(stats.oldest_seq, model.front().copied(), "{ctx}");
            assert!(stats.next_seq > last_issued.max(acked), "{ctx}");
            assert_eq!(
                seqs(&b.read_after(0, usize::MAX, usize::MAX).await.unwrap()),
                model.iter().copied().collect::<Vec<_>>(),
                "{ctx}: full content"
            );
        }
    }
}

/// A small tmpfs mounted for one test (root only); unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount not runnable: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (not root?): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    /// Fills the filesystem (leaving nothing) with `filler`.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&[0u8; 1]);
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The real thing: sled on a full tmpfs. It poisons itself (every later
/// write fails even after space returns); the buffer counts the failed
/// groups, recovers by reopening once space is back, and loses nothing
/// that was committed.
#[tokio::test]
async fn a_full_filesystem_is_survived_and_buffering_resumes() {
    let fs = match Tmpfs::mount("8m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED a_full_filesystem_is_survived_and_buffering_resumes: {why}");
            return;
        }
    };
    let path = fs.dir.path().join("buf");
    let lim = limits(1_000_000, 1 << 30);
    let (b, _) = Buffer::open(&path, lim).unwrap();
    let good = append_n(&b, 20).await;
    let filler = fs.fill();
    let mut failed = 0u64;
    let mut committed_while_full = Vec::new();
    // sled buffers writes in memory: keep committing until the disk
    // refuses one (bounded).
    for _ in 0..200 {
        let g = group(&b, 50);
        match b.commit(&g).await {
            Ok(_) => committed_while_full.extend(g.iter().map(|e| e.0)),
            Err(_) => failed += 50,
        }
        if failed >= 100 {
            break;
        }
    }
    assert!(failed >= 100, "the full disk never refused a write");
    eprintln!(
        "disk full: {failed} refused, {} committed while filling",
        committed_while_full.len()
    );
    assert!(!b.stats().available);
    assert!(
        b.recover().await.is_err(),
        "cannot recover while still full"
    );
    assert_eq!(b.stats().dropped(DropReason::WriteError), failed);
    std::fs::remove_file(filler).unwrap();
    assert!(b.recover().await.unwrap(), "recovers once space is back");
    let after = append_n(&b, 5).await;
    let mut want = good.clone();
    want.extend(&committed_while_full);
    want.extend(&after);
    assert_eq!(
        seqs(&b.read_after(0, usize::MAX, usize::MAX).await.unwrap()),
        want,
        "everything committed is there, nothing abandoned is"
    );
    let stats = b.stats();
    assert_eq!(stats.dropped(DropReason::WriteError), failed);
    assert_eq!(stats.entries, want.len() as u64);
    drop(b);
    let b = reopen(&path, lim).await;
    assert_eq!(
        seqs(&b.read_after(0, usize::MAX, usize::MAX).await.unwrap()),
        want
    );
    assert_eq!(b.stats().dropped(DropReason::WriteError), failed);
}
