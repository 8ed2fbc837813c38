//! `outpost-collector incidents …`: the operator's commands against a
//! running collector over its JSON API (list, show, ack, close). The token
//! for write calls is read from a file, never from the command line.

use std::time::Duration;

use http::Method;

use crate::notify::client::{self, HttpUrl};

/// How long one CLI request may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    List {
        state: Option<String>,
        limit: usize,
        json: bool,
    },
    Show {
        id: u64,
    },
    Ack {
        id: u64,
        by: String,
    },
    Close {
        id: u64,
        root_cause: String,
    },
}

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach the collector at {0}: {1}\n  fix: check --url (or [http] listen) and that the collector runs")]
    Unreachable(String, client::ClientError),
    #[error("the collector refused: {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("unexpected answer from the collector: {0}")]
    Garbled(String),
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned())
}

/// Runs `action`; returns what to print.
pub async fn run(url: &HttpUrl, token: Option<&str>, action: &Action) -> Result<String, CliError> {
    let (method, path, body) = match action {
        Action::List { state, limit, .. } => (
            Method::GET,
            format!(
                "/api/v1/incidents?limit={limit}&state={}",
                state.as_deref().unwrap_or("all")
            ),
            serde_json::Value::Null,
        ),
        Action::Show { id } => (
            Method::GET,
            format!("/api/v1/incidents/{id}"),
            serde_json::Value::Null,
        ),
        Action::Ack { id, by } => (
            Method::POST,
            format!("/api/v1/incidents/{id}/ack"),
            serde_json::json!({ "by": by }),
        ),
        Action::Close { id, root_cause } => (
            Method::POST,
            format!("/api/v1/incidents/{id}/close"),
            serde_json::json!({ "root_cause": root_cause }),
        ),
    };
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(t) = token {
        headers.push(("authorization", format!("Bearer {t}")));
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let r = client::send(url, method, &path, &headers, bytes, TIMEOUT)
        .await
        .map_err(|e| CliError::Unreachable(url.to_string(), e))?;
    if !(200..300).contains(&r.status) {
        return Err(CliError::Refused {
            status: r.status,
            message: error_message(&r.body),
        });
    }
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).map_err(|e| CliError::Garbled(e.to_string()))?;
    Ok(match action {
        Action::List { json: true, .. } | Action::Show { .. } => {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        Action::List { .. } => table(&v),
        Action::Ack { id, .. } => format!(
            "incident {id} acknowledged after {} s",
            v["time_to_acknowledge_seconds"]
                .as_f64()
                .unwrap_or(0.0)
                .round()
        ),
        Action::Close { id, .. } => format!(
            "incident {id} closed (RTO {})",
            v["rto"].as_str().unwrap_or("?")
        ),
    })
}

fn table(v: &serde_json::Value) -> String {
    let mut out = format!(
        "{:>5}  {:<12}  {:<8}  {:<28}  {:<20}  {:<24}  {:<7}  {}\n",
        "ID", "STATE", "SEVERITY", "RULE", "SCOPE", "OPENED", "RTO", "SUMMARY"
    );
    for i in v["incidents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let s = |k: &str| i[k].as_str().unwrap_or("").to_string();
        out.push_str(&format!(
            "{:>5}  {:<12}  {:<8}  {:<28}  {:<20}  {:<24}  {:<7}  {}\n",
            i["id"].as_u64().unwrap_or(0),
            s("state")
                + if i["historical"].as_bool() == Some(true) {
                    "*"
                } else {
                    ""
                },
            s("severity"),
            s("rule"),
            s("scope"),
            s("opened"),
            s("rto"),
            s("summary")
        ));
    }
    out
}
