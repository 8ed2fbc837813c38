//! The buffer under stress, with the real binaries: a long outage with a
//! tiny bound (drop-oldest, counted on both sides), an unreadable buffer
//! directory (moved aside, probing goes on), `outpost-agent buffer` on a
//! running agent (reads its status file, moves nothing), and a full
//! filesystem (write errors counted and visible, buffering resumes).

mod delivery_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use delivery_support::*;
use outpost_tests::chaos::{ChaosProxy, Mode};
use outpost_tests::harness::{eventually, TestCollector};
use outpost_tests::portal::Portal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_outage_with_a_tiny_buffer_drops_the_oldest_and_counts_them() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let proxy = ChaosProxy::start(collector.grpc.parse()?).await?;
    proxy.set_mode(Mode::Refuse);
    let id = "tiny-buffer";
    let buffer = dir.path().join("buffer");
    let max_entries = 15;
    let cfg = agent_config(
        id,
        &buffer,
        &[proxy.url()],
        &format!("max_entries = {max_entries}"),
        "",
        &checks(8, &portal.url("/portal/home")),
    );
    let agent = AgentProc::start(dir.path(), &cfg).await?;
    let config = dir.path().join("agent.toml");
    // The outage lasts until the buffer has dropped at least 30.
    let during = eventually(
        Duration::from_secs(60),
        "the agent drops the oldest results",
        || async {
            let (r, _) = buffer_command(&config).await.ok()?;
            (r.buffer_full >= 30).then_some(r)
        },
    )
    .await?;
    assert!(during.entries <= max_entries, "bounded: {during:?}");
    assert_eq!(stored_count(&collector, id).await, 0, "nothing got through");

    // Stop producing, then let the link back: the backlog that survived
    // drains, the drops are announced and counted on both sides.
    agent.stop().await?;
    proxy.set_mode(Mode::Pass);
    let acc = drain_and_account(&collector, id, &config, &buffer, dir.path()).await?;
    let r = acc.report;
    assert!(r.buffer_full >= 30);
    assert_eq!(r.write_error + r.corrupt, 0);
    assert_eq!(
        acc.stored.len() as u64,
        r.entries,
        "what survived in the buffer is what got delivered"
    );
    assert_eq!(
        r.produced() - acc.stored.len() as u64,
        r.buffer_full,
        "dropped = produced - delivered"
    );
    // The newest survived, the oldest went.
    assert_eq!(acc.stored.last().copied(), Some(r.next_seq - 1));
    assert_eq!(acc.stored.first().copied(), Some(r.dropped_through + 1));
    assert_exact(&collector, id, &acc).await?;
    assert_eq!(
        dropped_metric(&collector, id, "buffer_full").await,
        Some(r.buffer_full as f64),
        "the agent's counter reaches the collector's metrics"
    );
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}

fn corrupt_siblings(buffer: &Path) -> Vec<PathBuf> {
    let name = buffer
        .file_name()
        .map(|n| format!("{}.corrupt-", n.to_string_lossy()))
        .unwrap_or_default();
    std::fs::read_dir(buffer.parent().unwrap_or(Path::new(".")))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&name))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_buffer_is_moved_aside_and_probing_goes_on() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    // Two ways a buffer directory can be unusable: garbage inside it, and
    // a file where the directory should be.
    let garbage = dir.path().join("garbage-buffer");
    std::fs::create_dir_all(&garbage)?;
    std::fs::write(garbage.join("conf"), b"\x00not a sled config at all")?;
    std::fs::write(garbage.join("db"), vec![0xffu8; 8192])?;
    let file = dir.path().join("file-buffer");
    std::fs::write(&file, b"someone put a file here")?;

    for (id, buffer) in [("moved-garbage", &garbage), ("moved-file", &file)] {
        let work = dir.path().join(id);
        std::fs::create_dir_all(&work)?;
        let cfg = agent_config(
            id,
            buffer,
            &[collector.endpoint()],
            "",
            "",
            &checks(2, &portal.url("/portal/home")),
        );
        let mut agent = AgentProc::start(&work, &cfg).await?;
        wait_stored_above(&collector, id, 2, Duration::from_secs(30)).await?;
        assert!(agent.running());
        assert!(
            agent.logged("BUFFER WAS UNREADABLE"),
            "{id}: a loud log says what happened"
        );
        let aside = corrupt_siblings(buffer);
        assert_eq!(aside.len(), 1, "{id}: moved aside once: {aside:?}");
        if buffer == &garbage {
            assert_eq!(
                std::fs::read(aside[0].join("conf"))?,
                b"\x00not a sled config at all",
                "moved, not deleted"
            );
        } else {
            assert_eq!(std::fs::read(&aside[0])?, b"someone put a file here");
        }
        assert!(buffer.is_dir(), "{id}: a fresh buffer took its place");
        agent.stop().await?;
    }
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffer_command_reads_a_running_agents_status_and_moves_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let id = "inspected";
    let buffer = dir.path().join("buffer");
    let cfg = agent_config(
        id,
        &buffer,
        &[collector.endpoint()],
        "",
        "",
        &checks(2, &portal.url("/portal/home")),
    );
    let agent = AgentProc::start(dir.path(), &cfg).await?;
    wait_stored_above(&collector, id, 1, Duration::from_secs(30)).await?;
    let config = dir.path().join("agent.toml");
    let (report, text) = eventually(
        Duration::from_secs(15),
        "a status with produced results",
        || async {
            let (r, t) = buffer_command(&config).await.ok()?;
            (r.produced() > 1).then_some((r, t))
        },
    )
    .await?;
    assert!(
        text.contains("status file of the running agent"),
        "says where the figures come from:\n{text}"
    );
    assert!(text.contains("oldest unsent age:"), "{text}");
    assert!(report.origin_seq > 0);
    assert!(
        corrupt_siblings(&buffer).is_empty(),
        "a running agent's buffer is never moved aside"
    );
    let before = stored_count(&collector, id).await;
    wait_stored_above(&collector, id, before, Duration::from_secs(30)).await?;
    agent.stop().await?;
    // Stopped: the command opens the buffer itself.
    let (after, text) = buffer_command(&config).await?;
    assert!(!text.contains("status file"), "{text}");
    assert!(after.next_seq >= report.next_seq);
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}

/// A tmpfs of the test's own (root only), unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> std::result::Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount not runnable: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs (root only): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    /// Fills the filesystem to the last byte.
    fn fill(&self) -> Result<PathBuf> {
        let filler = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&filler)?;
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&[0u8; 512]).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
        Ok(filler)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_filesystem_is_counted_visible_and_survived() -> Result<()> {
    let fs = match Tmpfs::mount("24m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED a_full_filesystem_is_counted_visible_and_survived: {why}");
            return Ok(());
        }
    };
    let dir = tempfile::tempdir()?;
    let portal = Portal::start().await?;
    let collector = TestCollector::start(&dir.path().join("store")).await?;
    let id = "disk-full";
    let buffer = fs.dir.path().join("buffer");
    let cfg = agent_config(
        id,
        &buffer,
        &[collector.endpoint()],
        "",
        "",
        &checks(8, &portal.url("/portal/home")),
    );
    let mut agent = AgentProc::start(dir.path(), &cfg).await?;
    wait_stored_above(&collector, id, 3, Duration::from_secs(30)).await?;

    let filler = fs.fill()?;
    // The disk refuses writes: the agent counts them, says so, and the
    // count reaches the collector with the next heartbeat.
    eventually(
        Duration::from_secs(30),
        "write_error drops visible at the collector",
        || async {
            let n = dropped_metric(&collector, id, "write_error").await?;
            (n >= 8.0).then_some(())
        },
    )
    .await?;
    assert!(agent.running(), "the agent keeps running on a full disk");
    assert!(
        agent.logged("could not write results to the buffer"),
        "the failure is logged"
    );

    // Space returns: buffering resumes by itself.
    std::fs::remove_file(&filler)?;
    let after_free = stored_count(&collector, id).await;
    wait_stored_above(&collector, id, after_free + 8, Duration::from_secs(30)).await?;
    assert!(agent.logged("buffer writable again"));
    agent.stop().await?;

    let acc = drain_and_account(
        &collector,
        id,
        &dir.path().join("agent.toml"),
        &buffer,
        dir.path(),
    )
    .await?;
    let r = acc.report;
    assert!(r.write_error >= 8, "{r:?}");
    assert_eq!(r.buffer_full + r.corrupt, 0);
    assert_exact(&collector, id, &acc).await?;
    assert_eq!(
        dropped_metric(&collector, id, "write_error").await,
        Some(r.write_error as f64)
    );
    collector.stop().await?;
    portal.shutdown().await;
    Ok(())
}
