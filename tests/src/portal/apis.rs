//! JSON APIs of the simulated portal: reports, telemetry, backup, device
//! commands and the alert queue.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::{header, StatusCode};
use serde_json::json;

use super::faults::{CommandOutcome, FaultState, DEVICE_COUNT};
use super::util::{epoch_ms_ago, json, now_epoch, rfc3339, set_header, Resp};

/// At most this many reports and commands are remembered; the oldest go.
const MAX_ITEMS: usize = 10_000;

struct Report {
    created: Instant,
    /// `None`: pending forever.
    pending: Option<Duration>,
}

struct Command {
    device: String,
    command: String,
    created: Instant,
    delay: Duration,
    outcome: CommandOutcome,
}

#[derive(Default)]
struct Inner {
    next_report: u64,
    reports: BTreeMap<u64, Report>,
    next_command: u64,
    commands: BTreeMap<u64, Command>,
}

/// Reports and commands created so far.
#[derive(Default)]
pub struct ApiStore {
    inner: Mutex<Inner>,
}

fn not_found() -> Resp {
    json(StatusCode::NOT_FOUND, &json!({"error": "not_found"}))
}

fn parse_id(id: &str, prefix: char) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

fn created(location: &str, status: StatusCode, value: &serde_json::Value) -> Resp {
    let mut resp = json(status, value);
    set_header(resp.headers_mut(), header::LOCATION, location);
    resp
}

impl ApiStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `POST /api/reports`: 202, pending for the configured time.
    pub fn create_report(&self, faults: &FaultState) -> Resp {
        let pending = (!faults.report_pending_forever)
            .then(|| Duration::from_millis(faults.report_pending_ms));
        let mut inner = self.lock();
        inner.next_report += 1;
        let n = inner.next_report;
        inner.reports.insert(
            n,
            Report {
                created: Instant::now(),
                pending,
            },
        );
        while inner.reports.len() > MAX_ITEMS {
            inner.reports.pop_first();
        }
        let id = format!("r{n}");
        created(
            &format!("/api/reports/{id}"),
            StatusCode::ACCEPTED,
            &json!({"id": id, "status": "pending"}),
        )
    }

    /// `GET /api/reports/{id}`: 202 pending, then 200 ready.
    pub fn report_status(&self, id: &str) -> Resp {
        let inner = self.lock();
        let Some(report) = parse_id(id, 'r').and_then(|n| inner.reports.get(&n)) else {
            return not_found();
        };
        let ready = report
            .pending
            .is_some_and(|p| report.created.elapsed() >= p);
        if ready {
            json(
                StatusCode::OK,
                &json!({"id": id, "status": "ready", "rows": 42}),
            )
        } else {
            json(
                StatusCode::ACCEPTED,
                &json!({"id": id, "status": "pending"}),
            )
        }
    }

    /// `POST /api/devices/{device}/commands` with `{"command": "..."}`.
    pub fn create_command(&self, faults: &FaultState, device: &str, body: &[u8]) -> Resp {
        if device_index(device).is_none() {
            return not_found();
        }
        let command = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("command")?.as_str().map(str::to_owned))
            .filter(|c| !c.is_empty() && c.len() <= 64);
        let Some(command) = command else {
            return json(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_request",
                        "error_description": "expected a JSON body {\"command\": \"...\"}"}),
            );
        };
        let mut inner = self.lock();
        inner.next_command += 1;
        let n = inner.next_command;
        inner.commands.insert(
            n,
            Command {
                device: device.to_owned(),
                command: command.clone(),
                created: Instant::now(),
                delay: Duration::from_millis(faults.command_delay_ms),
                outcome: faults.command_outcome,
            },
        );
        while inner.commands.len() > MAX_ITEMS {
            inner.commands.pop_first();
        }
        let id = format!("c{n}");
        created(
            &format!("/api/commands/{id}"),
            StatusCode::CREATED,
            &json!({"id": id, "device": device, "command": command, "status": "queued"}),
        )
    }

    /// `GET /api/commands/{id}`: queued for the first half of the delay,
    /// running for the second half, then the final outcome.
    pub fn command_status(&self, id: &str) -> Resp {
        let inner = self.lock();
        let Some(cmd) = parse_id(id, 'c').and_then(|n| inner.commands.get(&n)) else {
            return not_found();
        };
        let elapsed = cmd.created.elapsed();
        let status = if elapsed < cmd.delay / 2 {
            "queued"
        } else if elapsed < cmd.delay {
            "running"
        } else {
            match cmd.outcome {
                CommandOutcome::Executed => "executed",
                CommandOutcome::Failed => "failed",
                CommandOutcome::Never => "running",
            }
        };
        json(
            StatusCode::OK,
            &json!({"id": id, "device": cmd.device, "command": cmd.command, "status": status}),
        )
    }
}

/// `dev-1` .. `dev-5` to 1 .. 5.
fn device_index(device: &str) -> Option<u32> {
    let n: u32 = device.strip_prefix("dev-")?.parse().ok()?;
    (1..=DEVICE_COUNT).contains(&n).then_some(n)
}

/// `GET /api/telemetry/devices`.
pub fn telemetry(faults: &FaultState) -> Resp {
    let devices: Vec<serde_json::Value> = (1..=DEVICE_COUNT)
        .map(|i| {
            let base = if i <= faults.stale_devices {
                faults.stale_age_ms
            } else {
                faults.telemetry_age_ms
            };
            let age = Duration::from_millis(base) + Duration::from_secs(u64::from(i - 1));
            let ms = epoch_ms_ago(age);
            json!({
                "id": format!("dev-{i}"),
                "name": format!("Edge device {i}"),
                "last_seen": rfc3339(ms / 1000),
                "last_seen_ms": ms,
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &json!({"generated_at": rfc3339(now_epoch().as_secs()), "devices": devices}),
    )
}

/// `GET /api/backup/status`.
pub fn backup(faults: &FaultState) -> Resp {
    let secs = epoch_ms_ago(Duration::from_millis(faults.backup_age_ms)) / 1000;
    json(
        StatusCode::OK,
        &json!({
            "job": "nightly-full",
            "status": "succeeded",
            "last_success": rfc3339(secs),
            "last_success_epoch": secs,
        }),
    )
}

/// `GET /api/alerts/queue`.
pub fn alert_queue(faults: &FaultState) -> Resp {
    json(
        StatusCode::OK,
        &json!({
            "depth": faults.alert_queue_depth,
            "oldest_age_seconds": faults.alert_oldest_age_seconds,
        }),
    )
}

/// `GET /api/registry/devices`: the device registry (the other side of a
/// consistency check against the telemetry store).
pub fn registry(faults: &FaultState) -> Resp {
    let kept = DEVICE_COUNT.saturating_sub(faults.registry_missing_devices);
    let ids: Vec<String> = (1..=kept)
        .chain(DEVICE_COUNT + 1..=DEVICE_COUNT + faults.registry_extra_devices)
        .map(|i| format!("dev-{i}"))
        .collect();
    let devices: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| json!({"id": id, "name": format!("Edge device {}", id.trim_start_matches("dev-"))}))
        .collect();
    json(
        StatusCode::OK,
        &json!({"count": ids.len(), "updated_by": "cmdb-sync", "ids": ids, "devices": devices}),
    )
}

/// `GET /api/telemetry/summary`: how many devices report telemetry.
pub fn telemetry_summary() -> Resp {
    json(
        StatusCode::OK,
        &json!({"devices_reporting": DEVICE_COUNT, "generated_at": rfc3339(now_epoch().as_secs())}),
    )
}
