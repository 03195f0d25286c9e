//! Prometheus metrics (prefix `datarestor_`).
//!
//! Counters and histograms are counted where things happen (a reconcile, a Task finishing, a
//! snapshot listing). Gauges about the cluster (per-PVC backup times, repositories, Tasks queued,
//! workloads held down) are computed from the caches at each scrape by `Metrics::observe`, so they
//! are right after a restart or a leader change without any state of their own. Per-PVC labels are
//! only on the per-PVC gauges; every other label has a fixed, small set of values.

use crate::api::{TaskPhase, TaskType};
use crate::catalog;
pub use crate::catalog::ClusterView;
use crate::restic::redact_target;
use jiff::Timestamp;
use kube::ResourceExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

type Labels<const N: usize> = [(&'static str, String); N];
type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 1 s to about 18 h.
    Histogram::new(exponential_buckets(1.0, 2.0, 17))
}

fn bytes_histogram() -> Histogram {
    // 1 KiB to 16 TiB.
    Histogram::new(exponential_buckets(1024.0, 4.0, 18))
}

fn listing_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 14))
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels<1>, Counter>,
    reconcile_errors: Family<Labels<2>, Counter>,
    tasks_finished: Family<Labels<3>, Counter>,
    task_duration: HistogramFamily<2>,
    backup_bytes: HistogramFamily<1>,
    restore_bytes: Histogram,
    snapshot_listing: Histogram,
    // Computed at each scrape.
    pvc_last_backup: Family<Labels<2>, FloatGauge>,
    pvc_last_backup_bytes: Family<Labels<2>, Gauge>,
    pvc_backup_due: Family<Labels<2>, FloatGauge>,
    pvc_restore_held_since: Family<Labels<2>, FloatGauge>,
    pvcs_protected: Gauge,
    pvcs_held_for_restore: Gauge,
    repository_ready: Family<Labels<3>, Gauge>,
    repository_check_passed: Family<Labels<3>, Gauge>,
    repository_check_time: Family<Labels<3>, FloatGauge>,
    tasks: Family<Labels<2>, Gauge>,
    workloads_scaled_down: Gauge,
    scaled_down_since: FloatGauge,
    restic_processes: Gauge,
    restic_waiting: Gauge,
    leader: Gauge,
    /// One scrape at a time: `observe` clears and refills the families.
    scrape: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("datarestor"),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            tasks_finished: Family::default(),
            task_duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            backup_bytes: Family::new_with_constructor(bytes_histogram as fn() -> Histogram),
            restore_bytes: bytes_histogram(),
            snapshot_listing: listing_histogram(),
            pvc_last_backup: Family::default(),
            pvc_last_backup_bytes: Family::default(),
            pvc_backup_due: Family::default(),
            pvc_restore_held_since: Family::default(),
            pvcs_protected: Gauge::default(),
            pvcs_held_for_restore: Gauge::default(),
            repository_ready: Family::default(),
            repository_check_passed: Family::default(),
            repository_check_time: Family::default(),
            tasks: Family::default(),
            workloads_scaled_down: Gauge::default(),
            scaled_down_since: FloatGauge::default(),
            restic_processes: Gauge::default(),
            restic_waiting: Gauge::default(),
            leader: Gauge::default(),
            scrape: tokio::sync::Mutex::new(()),
        };
        let r = &mut m.registry;
        r.register("reconciles", "Reconciles, by controller", m.reconciles.clone());
        r.register("reconcile_errors", "Failed reconciles, by controller and error category", m.reconcile_errors.clone());
        r.register("tasks_finished", "Tasks that finished, by type, trigger and result", m.tasks_finished.clone());
        r.register_with_unit(
            "task_duration",
            "Time from a Task's start to its end, by type and result",
            Unit::Seconds,
            m.task_duration.clone(),
        );
        r.register_with_unit(
            "backup_volume",
            "Bytes a successful backup read (processed) and stored anew (added)",
            Unit::Bytes,
            m.backup_bytes.clone(),
        );
        r.register_with_unit(
            "restore_volume",
            "Bytes a successful Clean or IfEmpty restore wrote into its volume",
            Unit::Bytes,
            m.restore_bytes.clone(),
        );
        r.register_with_unit(
            "snapshot_listing_duration",
            "Time one shared listing of a repository's newest snapshots took",
            Unit::Seconds,
            m.snapshot_listing.clone(),
        );
        r.register(
            "pvc_last_backup_timestamp_seconds",
            "When the PVC's newest successful backup finished (Unix time)",
            m.pvc_last_backup.clone(),
        );
        r.register_with_unit(
            "pvc_last_backup_size",
            "Size of the PVC's data in its newest successful backup",
            Unit::Bytes,
            m.pvc_last_backup_bytes.clone(),
        );
        r.register(
            "pvc_backup_due_timestamp_seconds",
            "When the PVC's next scheduled backup is due in the repository it is most behind in (Unix time); \
             past it by more than a backup takes means backups are stale",
            m.pvc_backup_due.clone(),
        );
        r.register(
            "pvc_restore_held_since_timestamp_seconds",
            "For a PVC whose pods wait for a restore: since when (Unix time; a new PVC's creation, or a manual restore's Task)",
            m.pvc_restore_held_since.clone(),
        );
        r.register("pvcs_protected", "PVCs a Config selects", m.pvcs_protected.clone());
        r.register("pvcs_held_for_restore", "PVCs whose pods wait for a restore", m.pvcs_held_for_restore.clone());
        r.register(
            "repository_ready",
            "1 when the repository's last check succeeded, by Config and target (credentials removed)",
            m.repository_ready.clone(),
        );
        r.register(
            "repository_integrity_check_passed",
            "1 when the repository's last integrity check (checkSchedule) found no error, 0 when it found damage or \
             could not run; absent before the first",
            m.repository_check_passed.clone(),
        );
        r.register(
            "repository_integrity_check_timestamp_seconds",
            "When the repository's last integrity check ended (Unix time)",
            m.repository_check_time.clone(),
        );
        r.register("tasks", "Unfinished Tasks, by type and phase", m.tasks.clone());
        r.register(
            "workloads_scaled_down",
            "Deployments and StatefulSets currently held at zero replicas for a Task",
            m.workloads_scaled_down.clone(),
        );
        r.register(
            "workloads_scaled_down_since_timestamp_seconds",
            "Start of the oldest running Task that holds workloads down (Unix time; 0 when none)",
            m.scaled_down_since.clone(),
        );
        r.register("restic_processes", "restic processes running in the operator's pod", m.restic_processes.clone());
        r.register(
            "restic_processes_waiting",
            "restic calls waiting for a free process slot (--max-restic-processes)",
            m.restic_waiting.clone(),
        );
        r.register("leader", "1 while this replica holds the leader Lease and acts", m.leader.clone());
        m
    }

    pub fn reconciled(&self, controller: &'static str) {
        self.reconciles.get_or_create(&[("controller", controller.to_owned())]).inc();
    }

    pub fn reconcile_failed(&self, controller: &'static str, category: &'static str) {
        self.reconcile_errors.get_or_create(&[("controller", controller.to_owned()), ("category", category.to_owned())]).inc();
    }

    /// A Task reached Completed or Failed (counted once, by the process that wrote the phase).
    pub fn task_finished(&self, spec: &crate::api::TaskSpec, phase: TaskPhase, start: Option<Timestamp>, now: Timestamp) {
        let type_ = type_label(spec.type_);
        let result = if phase == TaskPhase::Completed { "succeeded" } else { "failed" };
        let trigger = format!("{:?}", spec.trigger).to_lowercase();
        self.tasks_finished.get_or_create(&[("type", type_.into()), ("trigger", trigger), ("result", result.into())]).inc();
        if let Some(start) = start {
            let seconds = now.duration_since(start).as_secs_f64().max(0.0);
            self.task_duration.get_or_create(&[("type", type_.into()), ("result", result.into())]).observe(seconds);
        }
    }

    /// A backup's restic summary.
    pub fn backup_stored(&self, processed: u64, added: u64) {
        self.backup_bytes.get_or_create(&[("kind", "processed".into())]).observe(processed as f64);
        self.backup_bytes.get_or_create(&[("kind", "added".into())]).observe(added as f64);
    }

    /// What a restore wrote.
    pub fn restore_written(&self, bytes: u64) {
        self.restore_bytes.observe(bytes as f64);
    }

    /// The histogram the shared snapshot listings record their durations in.
    pub fn snapshot_listing(&self) -> Histogram {
        self.snapshot_listing.clone()
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Whether this replica acts (and so exports the cluster gauges).
    pub fn leading(&self) -> bool {
        self.leader.get() == 1
    }

    pub fn restic(&self, running: usize, waiting: usize) {
        self.restic_processes.set(running as i64);
        self.restic_waiting.set(waiting as i64);
    }

    /// Refreshes the gauges from the caches and renders every metric in the text format.
    pub async fn render(&self, view: impl FnOnce(&Self)) -> String {
        let _one_at_a_time = self.scrape.lock().await;
        view(self);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }

    /// Sets the cluster gauges from what the caches hold.
    pub fn observe(&self, view: &ClusterView<'_>) {
        for family in [&self.pvc_last_backup, &self.pvc_backup_due, &self.pvc_restore_held_since] {
            family.clear();
        }
        self.pvc_last_backup_bytes.clear();
        self.repository_ready.clear();
        self.repository_check_passed.clear();
        self.repository_check_time.clear();
        self.tasks.clear();

        for task in view.tasks {
            let phase = task.status.as_ref().and_then(|s| s.phase).unwrap_or_default();
            if !phase.is_finished() {
                self.tasks.get_or_create(&[("type", type_label(task.spec.type_).into()), ("phase", format!("{phase:?}"))]).inc();
            }
        }
        let (held, held_since) = catalog::held_workloads(view);
        self.workloads_scaled_down.set(held as i64);
        self.scaled_down_since.set(held_since.map_or(0.0, seconds));

        let records = catalog::records(view);
        for record in &records {
            let labels = [("namespace", record.namespace.clone()), ("pvc", record.pvc.clone())];
            if let Some(since) = record.held_since {
                self.pvc_restore_held_since.get_or_create(&labels).set(seconds(since));
            }
            if let Some(backup) = &record.last_backup {
                self.pvc_last_backup.get_or_create(&labels).set(seconds(backup.time));
                if let Some(bytes) = backup.bytes {
                    self.pvc_last_backup_bytes.get_or_create(&labels).set(bytes);
                }
            }
            if let Some(due) = record.backup_due {
                self.pvc_backup_due.get_or_create(&labels).set(seconds(due));
            }
        }
        self.pvcs_protected.set(records.iter().filter(|r| r.config.is_some()).count() as i64);
        self.pvcs_held_for_restore.set(records.iter().filter(|r| r.held_since.is_some()).count() as i64);

        for config in view.configs.iter().copied() {
            for repository in config.status.as_ref().map(|s| s.repositories.as_slice()).unwrap_or_default() {
                let labels = [
                    ("config_namespace", config.namespace().unwrap_or_default()),
                    ("config", config.name_any()),
                    ("repository", redact_target(&repository.target)),
                ];
                self.repository_ready.get_or_create(&labels).set(i64::from(repository.ready));
                if let Some(check) = &repository.last_integrity_check {
                    let passed = check.result == crate::api::IntegrityCheckResult::Passed;
                    self.repository_check_passed.get_or_create(&labels).set(i64::from(passed));
                    self.repository_check_time.get_or_create(&labels).set(seconds(check.time.0));
                }
            }
        }
    }
}

fn type_label(type_: TaskType) -> &'static str {
    type_.as_str()
}

fn seconds(at: Timestamp) -> f64 {
    at.as_millisecond() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ClusterWide, Config, ConfigRef, Task, TaskSpec, TaskStatus, TaskTrigger};
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pvc(namespace: &str, name: &str, created: &str) -> PersistentVolumeClaim {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created, "labels": {"backup": "yes"}},
        }))
        .unwrap()
    }

    fn config() -> Config {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "backup.datarestor-operator.com/v1alpha1", "kind": "Config",
            "metadata": {"name": "backup", "namespace": "backup-system"},
            "spec": {
                "repositories": [
                    {"target": "s3:http://AKIA:s3cr3t@s3/first", "priority": 1, "backupSchedule": "0 2 * * *"},
                    {"target": "s3:http://s3/second", "priority": 2, "backupSchedule": "0 3 * * *"},
                ],
                "selectors": [{"matchLabels": {"backup": "yes"}}],
            },
            "status": {"repositories": [
                {"target": "s3:http://AKIA:s3cr3t@s3/first", "priority": 1, "ready": true},
                {"target": "s3:http://s3/second", "priority": 2, "ready": false},
            ]},
        }))
        .unwrap()
    }

    fn backup(pvc: &str, repository: &str, phase: TaskPhase, done: &str, bytes: i64) -> Task {
        let mut task = Task::new(
            &format!("{pvc}-{done}"),
            TaskSpec {
                type_: TaskType::Backup,
                trigger: TaskTrigger::Scheduled,
                pvc_name: pvc.into(),
                config_ref: ConfigRef { name: "backup".into(), namespace: "backup-system".into() },
                repository: None,
                host: "h".into(),
                name: None,
                restore_mode: None,
                scheduled_for: None,
                latest_as_of: None,
            },
        );
        task.metadata.namespace = Some("shop".into());
        let at: Timestamp = done.parse().unwrap();
        task.status = Some(TaskStatus {
            phase: Some(phase),
            repository: Some(repository.into()),
            start_time: Some(Time(at - jiff::SignedDuration::from_secs(60))),
            completion_time: phase.is_finished().then_some(Time(at)),
            bytes_processed: Some(bytes),
            quiesced_workloads: if phase.is_finished() { vec![] } else { vec!["Deployment/web".into()] },
            ..TaskStatus::default()
        });
        task
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[tokio::test]
    async fn gauges_follow_the_caches_and_keep_credentials_out() {
        let metrics = Metrics::new();
        let config = config();
        let configs = [&config];
        let (data_pvc, logs_pvc) = (pvc("shop", "data", "2026-11-01T00:00:00Z"), pvc("shop", "logs", "2026-11-01T00:00:00Z"));
        let pvcs = [&data_pvc, &logs_pvc];
        let tasks = [
            backup("data", "s3:http://AKIA:s3cr3t@s3/first", TaskPhase::Completed, "2026-11-20T02:01:00Z", 100),
            backup("data", "s3:http://AKIA:s3cr3t@s3/first", TaskPhase::Completed, "2026-11-21T02:01:00Z", 150),
            backup("data", "s3:http://s3/second", TaskPhase::Completed, "2026-11-21T03:01:00Z", 150),
            backup("data", "s3:http://s3/second", TaskPhase::Failed, "2026-11-22T03:01:00Z", 0),
            backup("logs", "s3:http://s3/second", TaskPhase::Running, "2026-11-22T03:01:00Z", 0),
        ];
        let tasks: Vec<&Task> = tasks.iter().collect();
        let cluster_wide = ClusterWide::new(vec!["backup-system".into()]);
        let view =
            ClusterView { configs: &configs, pvcs: &pvcs, tasks: &tasks, cluster_wide: &cluster_wide, now: Timestamp::now() };
        let text = metrics.render(|m| m.observe(&view)).await;

        let at = |s: &str| s.parse::<Timestamp>().unwrap().as_second() as f64;
        let data = r#"{namespace="shop",pvc="data"}"#;
        assert_eq!(
            value(&text, &format!("datarestor_pvc_last_backup_timestamp_seconds{data}")),
            Some(at("2026-11-21T03:01:00Z"))
        );
        assert_eq!(value(&text, &format!("datarestor_pvc_last_backup_size_bytes{data}")), Some(150.0));
        // Behind most in the first repository: its next 02:00 after the 21st's backup.
        assert_eq!(value(&text, &format!("datarestor_pvc_backup_due_timestamp_seconds{data}")), Some(at("2026-11-22T02:00:00Z")));
        // Never backed up: due at the first slot after it appeared.
        let logs = r#"{namespace="shop",pvc="logs"}"#;
        assert_eq!(value(&text, &format!("datarestor_pvc_backup_due_timestamp_seconds{logs}")), Some(at("2026-11-01T02:00:00Z")));
        assert_eq!(value(&text, &format!("datarestor_pvc_last_backup_timestamp_seconds{logs}")), None);
        assert_eq!(value(&text, "datarestor_pvcs_protected"), Some(2.0));
        assert_eq!(value(&text, r#"datarestor_tasks{type="backup",phase="Running"}"#), Some(1.0));
        assert_eq!(value(&text, "datarestor_workloads_scaled_down"), Some(1.0));
        assert_eq!(value(&text, "datarestor_workloads_scaled_down_since_timestamp_seconds"), Some(at("2026-11-22T03:00:00Z")));
        assert_eq!(
            value(
                &text,
                r#"datarestor_repository_ready{config_namespace="backup-system",config="backup",repository="s3:http://s3/second"}"#
            ),
            Some(0.0)
        );
        assert!(!text.contains("s3cr3t"), "a credential in a target reached the metrics:\n{text}");

        // The next scrape forgets what the caches no longer hold.
        let view =
            ClusterView { configs: &configs, pvcs: &pvcs[1..], tasks: &[], cluster_wide: &cluster_wide, now: Timestamp::now() };
        let text = metrics.render(|m| m.observe(&view)).await;
        assert_eq!(value(&text, &format!("datarestor_pvc_last_backup_timestamp_seconds{data}")), None);
        assert_eq!(value(&text, "datarestor_workloads_scaled_down"), Some(0.0));
        assert_eq!(value(&text, "datarestor_pvcs_protected"), Some(1.0));
    }

    #[test]
    fn finished_tasks_are_counted_by_type_trigger_and_result() {
        let metrics = Metrics::new();
        let task = backup("data", "s3:http://s3/second", TaskPhase::Running, "2026-11-22T03:01:00Z", 0);
        let start = task.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
        let now = "2026-11-22T03:01:00Z".parse().unwrap();
        metrics.task_finished(&task.spec, TaskPhase::Completed, start, now);
        metrics.task_finished(&task.spec, TaskPhase::Failed, start, now);
        metrics.task_finished(&task.spec, TaskPhase::Failed, start, now);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        assert_eq!(
            value(&text, r#"datarestor_tasks_finished_total{type="backup",trigger="scheduled",result="failed"}"#),
            Some(2.0)
        );
        assert_eq!(value(&text, r#"datarestor_task_duration_seconds_count{type="backup",result="succeeded"}"#), Some(1.0));
        assert_eq!(value(&text, r#"datarestor_task_duration_seconds_sum{type="backup",result="succeeded"}"#), Some(60.0));
    }
}
