//! The footprint benchmark: Outpost's agent beside Debian's
//! `prometheus-blackbox-exporter` and a bare hyper + rustls floor, each
//! made to run the same HTTP(S) GETs against the same local target at the
//! same rates, measured side by side in the same run.
//!
//! Processes (all on 127.0.0.1): `outpost-bench target` (the page, HTTP and
//! HTTPS with a throwaway CA; its own process, its CPU is not counted); an
//! `outpost-collector` receiving the agent's results; then, one at a time,
//! the measured subject:
//! * the agent: N page checks every 1 s (N = the rate), `[targets] ca_file`
//!   trusting the target's CA; a fresh buffer each run;
//! * blackbox_exporter: module `http_2xx` (its `tls_config.ca_file` the same
//!   CA), driven by this process at the rate through `/probe` over a
//!   keep-alive connection pool, as Prometheus scrapes it (the driver's cost
//!   is not counted; blackbox's cost of answering `/probe` is);
//! * the floor (`outpost-bench floor`).
//!
//! Per run: after a warm-up, a steady window: CPU (utime + stime of every
//! thread, nanosecond resolution from schedstat) divided by the probes the
//! target actually served in the window (the same counter for every
//! subject; a failed TLS handshake never reaches it), RSS sampled every
//! 100 ms (median = steady) and VmHWM (peak). Connections per probe (from
//! the target) prove that each probe opened its own connection. Rounds
//! interleave the subjects so machine drift hits all of them alike; ratios
//! are taken within a round, then their median.
//!
//! Idle: the agent with 50 checks on a 24 h interval, blackbox_exporter with
//! no probes, and `outpost-bench sled-baseline` (only an empty sled
//! database opened as the agent's buffer opens it): Outpost's own share of
//! the agent's RSS is total − that baseline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::process::Command;

use crate::procfs::{self, Cpu};
use tokio_util::sync::CancellationToken;

use crate::procs::{bin_dir, free_port, http_get, mib, start_collector, Proc};
use crate::report::{Figure, Part, Stats};

/// Default blackbox_exporter binary (Debian's package).
const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";
/// Checks configured for the idle measurement.
const IDLE_CHECKS: usize = 50;

/// `outpost-bench footprint` options.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// One round, 100 probes/s only, short windows (CI).
    #[arg(long)]
    quick: bool,
    /// Where outpost-agent and outpost-collector are (default: next to
    /// this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Write the report part here.
    #[arg(long)]
    parts: Option<PathBuf>,
    /// Probe rates, probes/s (default 10,100,500; --quick: 100).
    #[arg(long, value_delimiter = ',')]
    rates: Vec<u32>,
    /// Rounds (runs per figure; default 3; --quick: 1).
    #[arg(long)]
    rounds: Option<usize>,
    /// Steady window per run, seconds (default 5; --quick: 2).
    #[arg(long)]
    window: Option<f64>,
    /// Warm-up after the first probe, seconds (default 1.5; --quick: 1).
    #[arg(long)]
    warmup: Option<f64>,
    /// blackbox_exporter binary.
    #[arg(long, default_value = BLACKBOX)]
    blackbox: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Agent,
    Blackbox,
    Floor,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Agent => "agent",
            Subject::Blackbox => "blackbox",
            Subject::Floor => "floor",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    cpu_per_1000: f64,
    probes_per_s: f64,
    conns_per_probe: f64,
    rss_steady: f64,
    rss_peak: f64,
}

/// (rate, scheme, subject).
type Key = (u32, &'static str, Subject);

/// Everything the rounds measured.
#[derive(Default)]
struct Results {
    /// (rate, scheme, subject) → one Run per round.
    runs: Vec<(Key, Vec<Run>)>,
    idle_agent: Vec<f64>,
    idle_blackbox: Vec<f64>,
    baseline: Vec<f64>,
}

impl Results {
    fn push(&mut self, key: Key, run: Run) {
        match self.runs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(run),
            None => self.runs.push((key, vec![run])),
        }
    }

    fn get(&self, key: Key) -> &[Run] {
        self.runs
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// The shared pieces: target, collector, CA, binaries.
struct Bench {
    bins: PathBuf,
    me: PathBuf,
    dir: PathBuf,
    ca: PathBuf,
    http: String,
    https: String,
    collector_port: u16,
    collector_http: String,
    blackbox: Option<PathBuf>,
    window: Duration,
    warmup: Duration,
}

pub async fn run(opts: Options) -> Result<()> {
    let bins = bin_dir(opts.bin_dir.as_deref())?;
    let me = std::env::current_exe()?;
    let rates = if !opts.rates.is_empty() {
        opts.rates.clone()
    } else if opts.quick {
        vec![100]
    } else {
        vec![10, 100, 500]
    };
    let rounds = opts.rounds.unwrap_or(if opts.quick { 1 } else { 3 });
    let window = Duration::from_secs_f64(opts.window.unwrap_or(if opts.quick { 2.0 } else { 5.0 }));
    let warmup = Duration::from_secs_f64(opts.warmup.unwrap_or(if opts.quick { 1.0 } else { 1.5 }));
    let blackbox = opts.blackbox.exists().then(|| opts.blackbox.clone());
    if blackbox.is_none() {
        eprintln!(
            "footprint: {} not found: blackbox_exporter rows are skipped (bench/run installs it)",
            opts.blackbox.display()
        );
    }
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().to_path_buf();
    let ca = dir.join("target-ca.pem");

    let mut cmd = Command::new(&me);
    cmd.arg("target")
        .arg("--ca-out")
        .arg(&ca)
        .stdout(Stdio::piped());
    let mut target = Proc::spawn(cmd, &dir.join("target.log"))?;
    let line = target.first_line(Duration::from_secs(30)).await?;
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(str::to_string)
            .ok_or_else(|| anyhow!("target printed {line:?}"))
    };
    let (http, https) = (field("http=")?, field("https=")?);

    let collector_port = free_port().await?;
    let (collector, collector_http) = start_collector(&bins, collector_port, &dir).await?;
    let bench = Bench {
        bins,
        me,
        dir: dir.clone(),
        ca,
        http,
        https,
        collector_port,
        collector_http,
        blackbox,
        window,
        warmup,
    };

    let started = Instant::now();
    let mut results = Results::default();
    for round in 0..rounds {
        results.baseline.push(bench.sled_baseline(round).await?);
        results.idle_agent.push(bench.idle_agent(round).await?);
        if bench.blackbox.is_some() {
            results
                .idle_blackbox
                .push(bench.idle_blackbox(round).await?);
        }
        for &rate in &rates {
            for scheme in ["http", "https"] {
                for subject in [Subject::Agent, Subject::Blackbox, Subject::Floor] {
                    if subject == Subject::Blackbox && bench.blackbox.is_none() {
                        continue;
                    }
                    let run = bench
                        .measure(subject, rate, scheme, round)
                        .await
                        .with_context(|| format!("{} at {rate}/s over {scheme}", subject.name()))?;
                    eprintln!(
                        "footprint round {} {:>8} {:>5} {:>3}/s: {:.3} CPU s/1000 probes, {:.0} probes/s, {:.2} conns/probe, RSS {:.1} MiB (peak {:.1})",
                        round + 1,
                        subject.name(),
                        scheme,
                        rate,
                        run.cpu_per_1000,
                        run.probes_per_s,
                        run.conns_per_probe,
                        mib(run.rss_steady as u64),
                        mib(run.rss_peak as u64)
                    );
                    results.push((rate, scheme, subject), run);
                }
            }
        }
    }
    let elapsed = started.elapsed();
    collector.stop().await?;
    target.stop().await?;

    let part = render(&results, &rates, rounds, &bench, opts.quick, elapsed);
    println!("{}", part.markdown);
    if let Some(parts) = &opts.parts {
        let path = part.write(parts)?;
        eprintln!("footprint: wrote {}", path.display());
    }
    Ok(())
}

impl Bench {
    fn url(&self, scheme: &str) -> String {
        match scheme {
            "https" => format!("https://{}/", self.https),
            _ => format!("http://{}/", self.http),
        }
    }

    async fn probes(&self) -> Result<crate::target::Stats> {
        crate::target::stats(&self.http).await
    }

    /// Starts `subject` probing `scheme` at `rate`; returns the process
    /// and, for blackbox, the driver task.
    async fn start(
        &self,
        subject: Subject,
        rate: u32,
        scheme: &str,
        tag: &str,
    ) -> Result<(Proc, Option<Driver>)> {
        let dir = self.dir.join(tag);
        std::fs::create_dir_all(&dir)?;
        let url = self.url(scheme);
        match subject {
            Subject::Agent => {
                let config = dir.join("agent.toml");
                std::fs::write(
                    &config,
                    self.agent_config(&dir, tag, rate as usize, "1s", &url),
                )?;
                Ok((crate::procs::start_agent(&self.bins, &config, &dir)?, None))
            }
            Subject::Floor => {
                let mut cmd = Command::new(&self.me);
                cmd.args(["floor", "--url", &url, "--rate", &rate.to_string(), "--ca"])
                    .arg(&self.ca)
                    .stdout(Stdio::null());
                Ok((Proc::spawn(cmd, &dir.join("floor.log"))?, None))
            }
            Subject::Blackbox => {
                let (proc, addr) = self.start_blackbox(&dir).await?;
                let path = format!("/probe?module=http_2xx&target={}", url);
                Ok((proc, Some(Driver::start(addr, path, rate))))
            }
        }
    }

    fn agent_config(
        &self,
        dir: &Path,
        id: &str,
        checks: usize,
        interval: &str,
        url: &str,
    ) -> String {
        let mut text = format!(
            "[agent]\nid = \"{id}\"\n\n[buffer]\npath = \"{}\"\n\n[collector]\nendpoints = [\"http://127.0.0.1:{}\"]\n\n[targets]\nca_file = \"{}\"\n",
            dir.join("buffer").display(),
            self.collector_port,
            self.ca.display()
        );
        for i in 0..checks {
            text.push_str(&format!(
                "\n[[check]]\nname = \"page-{i:03}\"\ninterval = \"{interval}\"\n[check.page]\nurl = \"{url}\"\n"
            ));
        }
        text
    }

    async fn start_blackbox(&self, dir: &Path) -> Result<(Proc, String)> {
        let bin = self
            .blackbox
            .as_ref()
            .ok_or_else(|| anyhow!("blackbox_exporter is not installed"))?;
        let config = dir.join("blackbox.yml");
        std::fs::write(
            &config,
            format!(
                "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n      tls_config:\n        ca_file: {}\n",
                self.ca.display()
            ),
        )?;
        let port = free_port().await?;
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null());
        let proc = Proc::spawn(cmd, &dir.join("blackbox.log"))?;
        let t = Instant::now();
        while http_get(&addr, "/-/healthy").await.is_err() {
            if t.elapsed() > Duration::from_secs(20) {
                bail!("blackbox_exporter did not answer on {addr} within 20s (see blackbox.log)");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok((proc, addr))
    }

    async fn measure(
        &self,
        subject: Subject,
        rate: u32,
        scheme: &str,
        round: usize,
    ) -> Result<Run> {
        let tag = format!("{}-{scheme}-{rate}-r{round}", subject.name());
        let before = self.probes().await?.requests;
        let (proc, driver) = self.start(subject, rate, scheme, &tag).await?;
        // Running: the first probe reached the target.
        let t = Instant::now();
        while self.probes().await?.requests <= before {
            if t.elapsed() > Duration::from_secs(20) {
                bail!(
                    "no probe reached the target within 20s (see {}/)",
                    self.dir.join(&tag).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(self.warmup).await;

        let s0 = self.probes().await?;
        let c0 = Cpu::read(proc.pid).ok_or_else(|| anyhow!("cannot read its CPU"))?;
        let t0 = Instant::now();
        let mut rss = Vec::new();
        while t0.elapsed() < self.window {
            if let Some(r) = procfs::status_bytes(proc.pid, "VmRSS") {
                rss.push(r as f64);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let c1 = Cpu::read(proc.pid).ok_or_else(|| anyhow!("cannot read its CPU"))?;
        let s1 = self.probes().await?;
        let secs = t0.elapsed().as_secs_f64();
        let peak = procfs::status_bytes(proc.pid, "VmHWM").unwrap_or(0) as f64;

        if let Some(d) = driver {
            let (ok, failed) = d.stop().await;
            if ok == 0 {
                bail!("blackbox_exporter reported no successful probe ({failed} failed)");
            }
        }
        proc.stop().await?;
        if subject == Subject::Agent {
            // The results reached the collector (the agent did its whole job).
            let metrics = http_get(&self.collector_http, "/metrics").await?;
            let prefix = format!("outpost_agent_results_stored_total{{agent=\"{tag}\"}} ");
            let stored = metrics
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            if stored <= 0.0 {
                bail!("the agent's results did not reach the collector");
            }
        }
        let probes = s1.requests.saturating_sub(s0.requests);
        if probes == 0 {
            bail!("no probe completed in the {secs:.1}s window");
        }
        let conns = s1.connections.saturating_sub(s0.connections);
        let cpu = c0.seconds_until(&c1);
        let mut sorted = rss.clone();
        sorted.sort_by(f64::total_cmp);
        Ok(Run {
            cpu_per_1000: cpu / probes as f64 * 1000.0,
            probes_per_s: probes as f64 / secs,
            conns_per_probe: conns as f64 / probes as f64,
            rss_steady: sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            rss_peak: peak,
        })
    }

    /// RSS of the agent with 50 checks that do not run in the window.
    async fn idle_agent(&self, round: usize) -> Result<f64> {
        let tag = format!("agent-idle-r{round}");
        let dir = self.dir.join(&tag);
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("agent.toml");
        let url = self.url("https");
        std::fs::write(
            &config,
            self.agent_config(&dir, &tag, IDLE_CHECKS, "24h", &url),
        )?;
        let agent = crate::procs::start_agent(&self.bins, &config, &dir)?;
        crate::procs::wait_status(&dir.join("buffer"), Duration::from_secs(30)).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss = procfs::status_bytes(agent.pid, "VmRSS").unwrap_or(0) as f64;
        agent.stop().await?;
        Ok(rss)
    }

    async fn idle_blackbox(&self, round: usize) -> Result<f64> {
        let dir = self.dir.join(format!("blackbox-idle-r{round}"));
        std::fs::create_dir_all(&dir)?;
        let (bb, _) = self.start_blackbox(&dir).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = procfs::status_bytes(bb.pid, "VmRSS").unwrap_or(0) as f64;
        bb.stop().await?;
        Ok(rss)
    }

    /// RSS of `outpost-bench sled-baseline` (an empty sled database, opened
    /// as the agent's buffer opens it, and nothing else).
    async fn sled_baseline(&self, round: usize) -> Result<f64> {
        let dir = self.dir.join(format!("sled-r{round}"));
        std::fs::create_dir_all(&dir)?;
        let mut cmd = Command::new(&self.me);
        cmd.arg("sled-baseline")
            .arg("--path")
            .arg(dir.join("db"))
            .stdout(Stdio::piped());
        let mut p = Proc::spawn(cmd, &dir.join("sled.log"))?;
        p.first_line(Duration::from_secs(30)).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = procfs::status_bytes(p.pid, "VmRSS").unwrap_or(0) as f64;
        p.stop().await?;
        Ok(rss)
    }
}

/// The blackbox driver: GETs `/probe` at a rate over keep-alive
/// connections; counts answers with `probe_success 1`.
struct Driver {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

impl Driver {
    fn start(addr: String, path: String, rate: u32) -> Driver {
        let stop = CancellationToken::new();
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let pool: Arc<Mutex<Vec<Sender>>> = Arc::default();
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = tokio::task::JoinSet::new();
            while !s.is_cancelled() {
                tick.tick().await;
                let (pool, addr, path, o, f) = (
                    pool.clone(),
                    addr.clone(),
                    path.clone(),
                    o.clone(),
                    f.clone(),
                );
                inflight.spawn(async move {
                    let r =
                        tokio::time::timeout(Duration::from_secs(10), probe(&pool, &addr, &path))
                            .await;
                    match r {
                        Ok(Ok(true)) => o.fetch_add(1, Ordering::Relaxed),
                        _ => f.fetch_add(1, Ordering::Relaxed),
                    };
                });
                while inflight.try_join_next().is_some() {}
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                while inflight.join_next().await.is_some() {}
            })
            .await;
        });
        Driver {
            stop,
            task,
            ok,
            failed,
        }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.cancel();
        let _ = self.task.await;
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// One `/probe` on a pooled connection; true when it reported success.
async fn probe(pool: &Mutex<Vec<Sender>>, addr: &str, path: &str) -> Result<bool> {
    let pooled = {
        let mut idle = pool.lock().map_err(|_| anyhow!("pool poisoned"))?;
        let mut found = None;
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                found = Some(s);
                break;
            }
        }
        found
    };
    let mut sender = match pooled {
        Some(s) => s,
        None => {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            sender
        }
    };
    sender.ready().await?;
    let req = http::Request::get(path)
        .header(http::header::HOST, addr)
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let body = resp.into_body().collect().await?.to_bytes();
    if let Ok(mut idle) = pool.lock() {
        idle.push(sender);
    }
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .any(|l| l.trim() == "probe_success 1"))
}

fn stats(v: impl IntoIterator<Item = f64>) -> Option<Stats> {
    let v: Vec<f64> = v.into_iter().collect();
    Stats::of(&v)
}

fn render(
    r: &Results,
    rates: &[u32],
    rounds: usize,
    bench: &Bench,
    quick: bool,
    elapsed: Duration,
) -> Part {
    use std::fmt::Write as _;
    let mut md = String::new();
    let mut figures = Vec::new();
    let mut fig = |name: String, unit: &str, s: Option<Stats>, goal: Option<(String, bool)>| {
        if let Some(stats) = s {
            figures.push(Figure {
                name,
                unit: unit.to_string(),
                stats,
                goal: goal.as_ref().map(|g| g.0.clone()),
                met: goal.map(|g| g.1),
            });
        }
    };
    let show = |s: Option<Stats>, d: usize| s.map_or("—".to_string(), |s| s.show(d));
    let mark = |ok: bool| if ok { "met" } else { "**missed**" };
    let has_bb = bench.blackbox.is_some();
    let _ = writeln!(
        md,
        "{rounds} round(s); each run: warm-up {:.1} s after the first probe, then a {:.1} s steady window; subjects interleaved within a round; whole part {:.0} s. Figures: median (min–max) over the rounds. CPU = utime + stime of every thread of the measured process over the window ÷ probes the target served in the window.\n",
        bench.warmup.as_secs_f64(),
        bench.window.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if !has_bb {
        let _ = writeln!(
            md,
            "**blackbox_exporter was not installed: its columns are empty.**\n"
        );
    }

    // ---- CPU
    let _ = writeln!(md, "**CPU seconds per 1,000 probes** (goal: agent ≤ 0.5× blackbox_exporter and ≤ 1.5× the floor)\n");
    let _ = writeln!(md, "| rate | scheme | agent | blackbox_exporter | floor | agent ÷ blackbox | agent ÷ floor | probes/s done (agent / bb / floor) | conns per probe (agent / bb / floor) |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for &rate in rates {
        for scheme in ["http", "https"] {
            let a = r.get((rate, scheme, Subject::Agent));
            let b = r.get((rate, scheme, Subject::Blackbox));
            let f = r.get((rate, scheme, Subject::Floor));
            let cpu = |v: &[Run]| stats(v.iter().map(|x| x.cpu_per_1000));
            let ratio = |x: &[Run], y: &[Run]| {
                stats(
                    x.iter()
                        .zip(y)
                        .map(|(x, y)| x.cpu_per_1000 / y.cpu_per_1000),
                )
            };
            let ab = ratio(a, b);
            let af = ratio(a, f);
            let key = format!("{scheme}.r{rate}");
            for (s, v) in [
                (Subject::Agent, a),
                (Subject::Blackbox, b),
                (Subject::Floor, f),
            ] {
                fig(
                    format!("footprint.cpu_s_per_1000_probes.{}.{key}", s.name()),
                    "CPU s",
                    cpu(v),
                    None,
                );
            }
            let ab_goal = ab.map(|s| s.median <= 0.5);
            let af_goal = af.map(|s| s.median <= 1.5);
            fig(
                format!("footprint.cpu_ratio.agent_over_blackbox.{key}"),
                "ratio",
                ab,
                ab_goal.map(|m| ("<= 0.5".to_string(), m)),
            );
            fig(
                format!("footprint.cpu_ratio.agent_over_floor.{key}"),
                "ratio",
                af,
                af_goal.map(|m| ("<= 1.5".to_string(), m)),
            );
            let rate_of = |v: &[Run]| show(stats(v.iter().map(|x| x.probes_per_s)), 0);
            let conns = |v: &[Run]| show(stats(v.iter().map(|x| x.conns_per_probe)), 2);
            let _ = writeln!(
                md,
                "| {rate}/s | {scheme} | {} | {} | {} | {}{} | {}{} | {} / {} / {} | {} / {} / {} |",
                show(cpu(a), 3),
                show(cpu(b), 3),
                show(cpu(f), 3),
                show(ab, 2),
                ab_goal.map_or(String::new(), |m| format!(" {}", mark(m))),
                show(af, 2),
                af_goal.map_or(String::new(), |m| format!(" {}", mark(m))),
                rate_of(a),
                rate_of(b),
                rate_of(f),
                conns(a),
                conns(b),
                conns(f),
            );
        }
    }

    // ---- memory under load
    let base = stats(r.baseline.iter().copied());
    let _ = writeln!(md, "\n**RSS under load, MiB** (steady = median of 100 ms samples in the window; peak = VmHWM). Outpost's own share = agent steady − the sled-only baseline ({}). Goals: own share ≤ 4 MiB at 100 probes/s (100 checks: stricter than the 50 of the goal); agent total ≤ blackbox_exporter's at the same load.\n", show(base.map(|s| scale(s, 1.0 / 1048576.0)), 1));
    let _ = writeln!(md, "| rate | scheme | agent steady | agent peak | own share | blackbox steady | blackbox peak | agent ÷ blackbox (steady) | floor steady |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    let base_med = base.map_or(0.0, |s| s.median);
    for &rate in rates {
        for scheme in ["http", "https"] {
            let a = r.get((rate, scheme, Subject::Agent));
            let b = r.get((rate, scheme, Subject::Blackbox));
            let f = r.get((rate, scheme, Subject::Floor));
            let m = |v: &[Run], g: fn(&Run) -> f64| stats(v.iter().map(|x| g(x) / 1048576.0));
            let own = stats(a.iter().enumerate().map(|(i, x)| {
                (x.rss_steady - r.baseline.get(i).copied().unwrap_or(base_med)) / 1048576.0
            }));
            let ratio = stats(a.iter().zip(b).map(|(x, y)| x.rss_steady / y.rss_steady));
            let key = format!("{scheme}.r{rate}");
            let own_goal = (rate == 100)
                .then(|| own.map(|s| s.median <= 4.0))
                .flatten();
            let ratio_goal = ratio.map(|s| s.median <= 1.0);
            fig(
                format!("footprint.rss_mib.agent_steady.{key}"),
                "MiB",
                m(a, |x| x.rss_steady),
                None,
            );
            fig(
                format!("footprint.rss_mib.agent_peak.{key}"),
                "MiB",
                m(a, |x| x.rss_peak),
                None,
            );
            fig(
                format!("footprint.rss_mib.agent_own_share.{key}"),
                "MiB",
                own,
                own_goal.map(|g| ("<= 4 MiB".to_string(), g)),
            );
            fig(
                format!("footprint.rss_mib.blackbox_steady.{key}"),
                "MiB",
                m(b, |x| x.rss_steady),
                None,
            );
            fig(
                format!("footprint.rss_mib.blackbox_peak.{key}"),
                "MiB",
                m(b, |x| x.rss_peak),
                None,
            );
            fig(
                format!("footprint.rss_ratio.agent_over_blackbox.{key}"),
                "ratio",
                ratio,
                ratio_goal.map(|g| ("<= 1.0".to_string(), g)),
            );
            fig(
                format!("footprint.rss_mib.floor_steady.{key}"),
                "MiB",
                m(f, |x| x.rss_steady),
                None,
            );
            let _ = writeln!(
                md,
                "| {rate}/s | {scheme} | {} | {} | {}{} | {} | {} | {}{} | {} |",
                show(m(a, |x| x.rss_steady), 1),
                show(m(a, |x| x.rss_peak), 1),
                show(own, 1),
                own_goal.map_or(String::new(), |g| format!(" {}", mark(g))),
                show(m(b, |x| x.rss_steady), 1),
                show(m(b, |x| x.rss_peak), 1),
                show(ratio, 2),
                ratio_goal.map_or(String::new(), |g| format!(" {}", mark(g))),
                show(m(f, |x| x.rss_steady), 1),
            );
        }
    }

    // ---- idle
    let idle_a = stats(r.idle_agent.iter().map(|x| x / 1048576.0));
    let idle_own = stats(
        r.idle_agent
            .iter()
            .zip(&r.baseline)
            .map(|(a, b)| (a - b) / 1048576.0),
    );
    let idle_b = stats(r.idle_blackbox.iter().map(|x| x / 1048576.0));
    let base_mib = base.map(|s| scale(s, 1.0 / 1048576.0));
    fig(
        "footprint.idle_rss_mib.agent_50_checks".into(),
        "MiB",
        idle_a,
        None,
    );
    fig(
        "footprint.idle_rss_mib.agent_own_share_50_checks".into(),
        "MiB",
        idle_own,
        None,
    );
    fig(
        "footprint.idle_rss_mib.blackbox".into(),
        "MiB",
        idle_b,
        None,
    );
    fig(
        "footprint.idle_rss_mib.sled_baseline".into(),
        "MiB",
        base_mib,
        None,
    );
    let _ = writeln!(md, "\n**Idle RSS, MiB**\n");
    let _ = writeln!(md, "| process | RSS |");
    let _ = writeln!(md, "|---|---|");
    let _ = writeln!(md, "| agent, 50 page checks configured (24 h interval), buffer open, collector connected | {} |", show(idle_a, 1));
    let _ = writeln!(
        md,
        "| — of which Outpost's own share (minus the sled-only baseline) | {} |",
        show(idle_own, 1)
    );
    let _ = writeln!(md, "| sled-only baseline (`outpost-bench sled-baseline`: an empty database opened as the buffer opens it) | {} |", show(base_mib, 1));
    let _ = writeln!(
        md,
        "| blackbox_exporter, started, no probes | {} |",
        show(idle_b, 1)
    );

    Part {
        section: "footprint".into(),
        title: "Agent footprint beside blackbox_exporter and the floor".into(),
        markdown: md,
        figures,
        quick,
    }
}

fn scale(s: Stats, k: f64) -> Stats {
    Stats {
        median: s.median * k,
        min: s.min * k,
        max: s.max * k,
        runs: s.runs,
    }
}
