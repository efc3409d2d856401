//! What the admin API asks of the coordinator, and how it asks (from the admin thread).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use super::Counters;
use super::Spend;
use super::Wake;
use crate::config::Snapshot;
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
    /// Drop cache entries (all, a model's, a scope's) on every worker.
    PurgeCache(crate::cache::Purge),
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
        /// `[cluster]`: every instance's spend today per key and team, as Redis last said.
        shared_spend: BTreeMap<String, Spend>,
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

#[derive(Debug)]
pub enum Command {
    /// Swap in a new snapshot; the sender is told once every worker serves it.
    Swap(Arc<Snapshot>, Sender<()>),
    /// Drain the workers; the coordinator exits once all have stopped.
    Drain,
    /// An admin API operation; the answer goes to the sender.
    Admin(AdminOp, Sender<AdminReply>),
}

#[derive(Debug, Default, Clone)]
pub struct Published {
    pub totals: Counters,
    /// Generation each worker serves.
    pub applied: Vec<u64>,
    /// Connections cut at the drain deadline.
    pub cut_connections: u64,
    /// Spend per key id (names from the config), since start.
    pub spend: BTreeMap<String, Spend>,
    /// Audit records written to the output.
    pub audit_written: u64,
    /// Audit records lost: the writer's queue was full, or the output failed.
    pub audit_dropped: u64,
    /// Every quota's book, as the coordinator stopped (set at exit; the admin API has the
    /// live figures).
    pub quotas: Vec<BookView>,
}

/// Where the coordinator publishes its counters and views for the embedding thread (tests,
/// `main`): a lock, taken once a tick by the coordinator and on demand by that thread — never
/// by a worker.
#[allow(
    clippy::disallowed_types,
    reason = "off the request path: the coordinator and the embedding thread only"
)]
pub type PublishedCell = Arc<std::sync::Mutex<Published>>;

/// A fresh [`PublishedCell`].
#[allow(
    clippy::disallowed_types,
    reason = "off the request path: the coordinator and the embedding thread only"
)]
pub fn published_cell(p: Published) -> PublishedCell {
    Arc::new(std::sync::Mutex::new(p))
}

pub(super) fn strategy_name(s: crate::config::Strategy) -> &'static str {
    use crate::config::Strategy;
    match s {
        Strategy::RoundRobin => "round_robin",
        Strategy::Weighted => "weighted",
        Strategy::LeastInflight => "least_inflight",
        Strategy::Latency => "latency",
        Strategy::Cost => "cost",
    }
}
