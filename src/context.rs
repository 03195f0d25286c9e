//! What every reconciler shares: the client, the event recorder, settings, and the Task cache.

use crate::api::{Config, Task};
use crate::credentials::{Lookup, ValueSource};
use crate::job::JobSettings;
use crate::repository::ResticRunner;
use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, ObjectReference, Secret};
use kube::core::DeserializeGuard;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Operator-wide settings (command-line flags).
#[derive(Clone, Debug)]
pub struct Settings {
    pub job: JobSettings,
    pub restic: ResticRunner,
    /// How often a Ready repository is checked again.
    pub repository_check_interval: Duration,
    /// How soon an unready repository, a failed retention run or a queued Task is looked at again.
    pub retry_interval: Duration,
    /// How long workloads a Task scaled down may stay down while its Job cannot be created.
    pub job_start_timeout: Duration,
    /// Whether backup hooks run (`--hooks`).
    pub hooks_enabled: bool,
    /// restic settings where neither a repository nor its Config says (`--restic-*` flags).
    pub restic_defaults: crate::api::ResticOptions,
    /// Namespaces whose Configs may protect PVCs of other namespaces.
    pub cluster_wide: crate::api::ClusterWide,
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub settings: Settings,
    /// Every Task, as the Task controller sees them (for concurrency limits and queues).
    pub tasks: Store<DeserializeGuard<Task>>,
    /// Every Config (filled on every replica: the restore gate reads it).
    pub configs: Store<DeserializeGuard<Config>>,
    /// Every PVC, as the PVC controller sees them (filled while this replica leads).
    pub pvcs: Store<k8s_openapi::api::core::v1::PersistentVolumeClaim>,
    /// Tasks this process has started whose new phase the cache may not show yet.
    pub starting: tokio::sync::Mutex<BTreeSet<(String, String)>>,
    /// Each repository's newest snapshots per host, shared by every new PVC's decision.
    pub listings: crate::repository::ListingCache,
    pub metrics: crate::metrics::Metrics,
    pub readiness: crate::health::Readiness,
}

impl Settings {
    /// A repository's restic settings: its own, then its Config's, then the operator's defaults.
    pub fn restic_options(
        &self,
        spec: &crate::api::ConfigSpec,
        repository: &crate::api::Repository,
    ) -> crate::api::ResticOptions {
        self.restic_defaults.overlaid(Some(&spec.restic_options(repository)))
    }
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        tasks: Store<DeserializeGuard<Task>>,
        configs: Store<DeserializeGuard<Config>>,
        pvcs: Store<k8s_openapi::api::core::v1::PersistentVolumeClaim>,
    ) -> Self {
        let reporter = Reporter { controller: "datarestor-operator".into(), instance: std::env::var("POD_NAME").ok() };
        let metrics = crate::metrics::Metrics::new();
        Self {
            listings: crate::repository::ListingCache::observed_by(metrics.snapshot_listing()),
            metrics,
            readiness: Default::default(),
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            tasks,
            configs,
            pvcs,
            starting: Default::default(),
        }
    }

    /// The Config that protects a PVC in `namespace` with `labels`; when several do, the first by
    /// namespace and name. Waits for the Config cache to be filled once.
    pub async fn selecting_config(&self, namespace: &str, labels: &BTreeMap<String, String>) -> Option<Config> {
        self.configs_ready().await;
        let mut configs: Vec<Config> = self
            .configs
            .state()
            .iter()
            .filter_map(|guard| guard.0.as_ref().ok())
            .filter(|config| config.selects(namespace, labels, &self.settings.cluster_wide))
            .cloned()
            .collect();
        configs.sort_by_key(|c| (c.metadata.namespace.clone(), c.metadata.name.clone()));
        configs.into_iter().next()
    }

    /// Whether some Config with autoRestore could select a PVC in `namespace` whose labels are not
    /// known yet (a pod that names a PVC before the PVC exists).
    pub async fn may_auto_restore_in(&self, namespace: &str) -> bool {
        self.configs_ready().await;
        self.configs.state().iter().filter_map(|guard| guard.0.as_ref().ok()).any(|config| {
            config.spec.may_auto_restore()
                && config.reaches(namespace, &self.settings.cluster_wide)
                && config
                    .spec
                    .selectors
                    .iter()
                    .any(|s| s.match_namespaces.is_empty() || s.match_namespaces.iter().any(|n| n == namespace))
        })
    }

    async fn configs_ready(&self) {
        if tokio::time::timeout(std::time::Duration::from_secs(10), filled(&self.configs)).await.is_err() {
            tracing::warn!("the Config cache is still not filled after 10s");
        }
    }

    /// Emits an Event; failing to record one never fails the reconcile.
    pub async fn event(&self, object: &ObjectReference, type_: EventType, reason: &str, action: &str, note: impl Into<String>) {
        let note: String = note.into();
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, object).await {
            tracing::warn!(%error, reason, "could not record an Event");
        }
    }

    /// Reads the Secrets and ConfigMaps that `env` refers to, in `namespace`.
    pub async fn fetch_env_sources(&self, namespace: &str, env: &[EnvVar]) -> Result<FetchedValues, kube::Error> {
        let mut fetched = FetchedValues::default();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        for var in env {
            let Some(from) = &var.value_from else { continue };
            if let Some(selector) = &from.secret_key_ref {
                if !fetched.secrets.contains_key(&selector.name) {
                    let data = secrets.get_opt(&selector.name).await?.map(|s| {
                        let mut data: BTreeMap<String, String> = s
                            .data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect();
                        data.extend(s.string_data.unwrap_or_default());
                        data
                    });
                    fetched.secrets.insert(selector.name.clone(), data);
                }
            }
            if let Some(selector) = &from.config_map_key_ref {
                if !fetched.config_maps.contains_key(&selector.name) {
                    let data = config_maps.get_opt(&selector.name).await?.map(|c| c.data.unwrap_or_default());
                    fetched.config_maps.insert(selector.name.clone(), data);
                }
            }
        }
        Ok(fetched)
    }
}

/// Returns once `store` has been filled. Asks again every 100 ms: a store wakes only the last of
/// several tasks waiting on it at once (kube-runtime's `DelayedInit` keeps one waker), and every
/// reconcile and the readiness check wait on these stores.
pub async fn filled<K>(store: &Store<K>)
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    while tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready()).await.is_err() {}
}

/// Secrets and ConfigMaps read for credential resolution; `None` marks one that does not exist.
#[derive(Default)]
pub struct FetchedValues {
    secrets: BTreeMap<String, Option<BTreeMap<String, String>>>,
    config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

fn lookup(objects: &BTreeMap<String, Option<BTreeMap<String, String>>>, name: &str, key: &str) -> Lookup {
    match objects.get(name) {
        Some(Some(data)) => data.get(key).map_or(Lookup::MissingKey, |v| Lookup::Found(v.clone())),
        _ => Lookup::MissingObject,
    }
}

impl ValueSource for FetchedValues {
    fn secret_key(&self, name: &str, key: &str) -> Lookup {
        lookup(&self.secrets, name, key)
    }
    fn config_map_key(&self, name: &str, key: &str) -> Lookup {
        lookup(&self.config_maps, name, key)
    }
}
