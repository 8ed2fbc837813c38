//! Restore-rehearsal reports (`outpost-agent smoke`): one unary
//! `Ingest/Rehearse` call per round, outside the result stream and the
//! buffer.
//!
//! The connection is the result stream's (`transport::connect`,
//! `transport::authorize`: same endpoints, TLS/mTLS, bearer token), the
//! identity the agent id. A report that fails to arrive is sent again a
//! bounded number of times, with the transport's capped, jittered
//! [`Backoff`], trying the endpoints in turn; the collector
//! treats a repeated (rehearsal, round) as a replacement, so a retry after
//! a lost answer is harmless. A refusal that a retry cannot change
//! (`unimplemented`, `permission_denied`, `invalid_argument`, ...) is not
//! retried: [`RehearseError::Refused`].

use std::collections::BTreeMap;
use std::time::Duration;

use outpost_proto::v1 as pb;

use super::{convert, Backoff, TransportError, HANDSHAKE_DEADLINE, MAX_MESSAGE_BYTES};
use crate::config::CollectorSettings;
use crate::result::CheckResult;

/// Longest a report's pause between attempts grows to.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// One round of a rehearsal, as the agent reports it.
#[derive(Debug, Clone)]
pub struct RoundReport {
    /// Random per run.
    pub rehearsal_id: String,
    /// `--label rehearsal=NAME`.
    pub name: String,
    /// Empty: the collector's default scenario.
    pub scenario: String,
    /// The `--select` labels (empty: every check).
    pub selector: BTreeMap<String, String>,
    pub started_unix_ms: i64,
    /// 1-based.
    pub round: u32,
    pub results: Vec<CheckResult>,
    /// End of the first all-ok round, once there was one.
    pub green_unix_ms: Option<i64>,
    /// No more rounds follow.
    pub finished: bool,
}

/// What the collector answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The recovery time objective applied to the rehearsal.
    pub rto: Duration,
    /// The scenario the collector resolved.
    pub scenario: String,
}

/// Why a report was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    /// The collector answered and refused; sending again would not help.
    #[error("the collector refused it: {message} (gRPC status {code})")]
    Refused { code: String, message: String },
    /// No answer after every attempt.
    #[error("not delivered after {attempts} attempts; last error: {last}")]
    Undelivered { attempts: u32, last: String },
}

/// Sends rehearsal reports to the configured collector.
#[derive(Debug, Clone)]
pub struct Reporter {
    agent_id: String,
    settings: CollectorSettings,
}

/// How one attempt ended.
enum Attempt {
    Done(Receipt),
    Refused(RehearseError),
    Retry(String),
}

/// `e` and its sources, `: `-separated (a connect error's cause, such as
/// "Connection refused", is in its source chain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    crate::result::short_error(&text)
}

fn permanent(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unimplemented
            | PermissionDenied
            | Unauthenticated
            | InvalidArgument
            | FailedPrecondition
            | NotFound
            | AlreadyExists
            | OutOfRange
    )
}

impl Reporter {
    pub fn new(agent_id: String, settings: CollectorSettings) -> Self {
        Reporter { agent_id, settings }
    }

    /// Sends `report`, at most `attempts` times (at least once).
    pub async fn send(
        &self,
        report: &RoundReport,
        attempts: u32,
    ) -> Result<Receipt, RehearseError> {
        let attempts = attempts.max(1);
        let wire = convert::rehearsal_report(&self.agent_id, report);
        let mut backoff = Backoff::new(
            self.settings.backoff_initial.min(MAX_RETRY_WAIT),
            self.settings.backoff_max.min(MAX_RETRY_WAIT),
        );
        let endpoints = self.settings.endpoints.len().max(1);
        let mut last = String::from("no collector endpoint configured");
        for attempt in 0..attempts {
            let Some(endpoint) = self.settings.endpoints.get(attempt as usize % endpoints) else {
                break;
            };
            let outcome = tokio::time::timeout(HANDSHAKE_DEADLINE, self.once(endpoint, &wire))
                .await
                .unwrap_or_else(|_| {
                    Attempt::Retry(format!("no answer within {HANDSHAKE_DEADLINE:?}"))
                });
            match outcome {
                Attempt::Done(receipt) => return Ok(receipt),
                Attempt::Refused(e) => return Err(e),
                Attempt::Retry(e) => {
                    tracing::warn!(endpoint = %endpoint, round = report.round, attempt = attempt + 1, error = %e, "rehearsal report not delivered");
                    last = format!("{endpoint}: {e}");
                }
            }
            if attempt + 1 < attempts {
                let wait = backoff.next_wait(&mut rand::rng());
                tokio::time::sleep(wait).await;
            }
        }
        Err(RehearseError::Undelivered { attempts, last })
    }

    async fn once(&self, endpoint: &http::Uri, wire: &pb::RehearsalReport) -> Attempt {
        let channel = match super::connect(&self.settings, endpoint).await {
            Ok(c) => c,
            Err(e @ TransportError::Credentials { .. }) => {
                return Attempt::Refused(RehearseError::Refused {
                    code: "not sent".into(),
                    message: e.to_string(),
                })
            }
            Err(e) => return Attempt::Retry(chain(&e)),
        };
        let mut client = pb::ingest_client::IngestClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut request = tonic::Request::new(wire.clone());
        if let Err(e) = super::authorize(&self.settings, &mut request) {
            return Attempt::Refused(RehearseError::Refused {
                code: "not sent".into(),
                message: e.to_string(),
            });
        }
        match client.rehearse(request).await {
            Ok(answer) => Attempt::Done(convert::receipt(answer.into_inner())),
            Err(status) if permanent(status.code()) => Attempt::Refused(RehearseError::Refused {
                code: format!("{:?}", status.code()).to_lowercase(),
                message: crate::result::short_error(status.message()),
            }),
            Err(status) => Attempt::Retry(format!(
                "{:?}: {}",
                status.code(),
                crate::result::short_error(status.message())
            )),
        }
    }
}
