//! What the admin API asks of the coordinator, and how it asks (from the admin thread).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use super::Spend;
use super::Wake;
use super::coordinator::Command;
use crate::policy::books::BookView;
use crate::policy::route::HealthView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    /// Every quota's book, runtime-disabled keys and spend per key.
    State,
    /// The budgets of a scope (`key:<id>` or `team:<name>`) start their period over.
    Reset(String),
    /// Disable (`false`) or re-enable (`true`) a key at runtime.
    SetKey(String, bool),
    /// Each deployment's health on each worker.
    Deployments,
    /// The metrics, as a scrape's text (OpenMetrics or Prometheus' text format).
    Metrics { openmetrics: bool },
    /// The stats document (`account::stats`).
    Stats,
}

/// One deployment as the admin API shows it.
#[derive(Debug, Clone)]
pub struct DeploymentView {
    pub name: String,
    pub provider: String,
    pub strategy: &'static str,
    /// Per worker, at its last report.
    pub workers: Vec<HealthView>,
}

#[derive(Debug, Clone)]
pub enum AdminReply {
    State {
        quotas: Vec<BookView>,
        disabled: Vec<String>,
        spend: BTreeMap<String, Spend>,
    },
    Deployments(Vec<DeploymentView>),
    Metrics {
        content_type: &'static str,
        text: String,
    },
    Done(String),
    NotFound(String),
}

/// What the coordinator publishes for the control thread (read off the hot path).
/// Reaches the coordinator from another thread.
#[derive(Debug, Clone)]
pub struct AdminHandle {
    commands: Sender<Command>,
    wake: Arc<Wake>,
}

impl AdminHandle {
    pub fn new(commands: Sender<Command>, wake: Arc<Wake>) -> Self {
        AdminHandle { commands, wake }
    }

    /// Runs `op` on the coordinator and waits (up to 10 s) for its answer.
    pub fn call(&self, op: AdminOp) -> Option<AdminReply> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commands.send(Command::Admin(op, tx)).ok()?;
        self.wake.wake();
        rx.recv_timeout(std::time::Duration::from_secs(10)).ok()
    }
}
