//! The evaluator's command interface: what HTTP handlers (and so the
//! CLI) may ask, over a bounded channel with a reply each.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::Snapshot;
use crate::clock::SharedClock;
use crate::incidents::{Incident, IncidentError, State};
use crate::maintenance::{self, WindowError};
use crate::store::StoreError;

/// A refused command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Incident(#[from] IncidentError),
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the evaluator has stopped")]
    Stopped,
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, CommandError>>;

/// Requests to the evaluator.
pub enum Command {
    Ack {
        id: u64,
        by: String,
        reply: Reply<Incident>,
    },
    Close {
        id: u64,
        root_cause: String,
        reply: Reply<Incident>,
    },
    Incidents {
        state: Option<State>,
        limit: usize,
        reply: Reply<Vec<Incident>>,
    },
    Incident {
        id: u64,
        reply: Reply<Option<Incident>>,
    },
    Windows {
        reply: Reply<Vec<maintenance::Window>>,
    },
    AddWindow {
        window: maintenance::Window,
        reply: Reply<()>,
    },
    RemoveWindow {
        name: String,
        reply: Reply<maintenance::Window>,
    },
}

/// A handle to the evaluator. Cheap to clone.
#[derive(Clone)]
pub struct EvaluatorHandle {
    pub(super) tx: mpsc::Sender<Command>,
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub clock: SharedClock,
}

impl EvaluatorHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, CommandError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| CommandError::Stopped)?;
        rx.await.map_err(|_| CommandError::Stopped)?
    }

    pub async fn ack(&self, id: u64, by: String) -> Result<Incident, CommandError> {
        self.call(|reply| Command::Ack { id, by, reply }).await
    }

    pub async fn close(&self, id: u64, root_cause: String) -> Result<Incident, CommandError> {
        self.call(|reply| Command::Close {
            id,
            root_cause,
            reply,
        })
        .await
    }

    pub async fn incidents(
        &self,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Incident>, CommandError> {
        self.call(|reply| Command::Incidents {
            state,
            limit,
            reply,
        })
        .await
    }

    pub async fn incident(&self, id: u64) -> Result<Option<Incident>, CommandError> {
        self.call(|reply| Command::Incident { id, reply }).await
    }

    pub async fn windows(&self) -> Result<Vec<maintenance::Window>, CommandError> {
        self.call(|reply| Command::Windows { reply }).await
    }

    pub async fn add_window(&self, window: maintenance::Window) -> Result<(), CommandError> {
        self.call(|reply| Command::AddWindow { window, reply })
            .await
    }

    pub async fn remove_window(&self, name: String) -> Result<maintenance::Window, CommandError> {
        self.call(|reply| Command::RemoveWindow { name, reply })
            .await
    }
}
