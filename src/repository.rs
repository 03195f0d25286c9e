//! restic calls the operator makes itself (short metadata operations: init, connectivity checks,
//! snapshot listings, unlock). Backups, restores and retention move or rewrite data and run in Jobs.

use crate::api::CA_CERTIFICATE_VARIABLE;
use crate::credentials::ResolvedEnv;
use crate::restic::{self, Command, Failure, Snapshot};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How the operator runs restic: at most `max_processes` at once, whatever asks (a disaster
/// recovery of thousands of PVCs must not start thousands of restic processes in the operator's
/// memory cgroup).
#[derive(Clone, Debug)]
pub struct ResticRunner {
    pub binary: PathBuf,
    pub cache_dir: PathBuf,
    /// Time limit of one call, counted from when it starts (not while it queues).
    pub timeout: Duration,
    processes: Arc<Semaphore>,
    max_processes: usize,
    running: Arc<AtomicUsize>,
    waiting: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// A failed restic call. The message is restic's own last words, which never include
/// credentials (they only ever reach restic through its environment).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ResticError {
    pub failure: Failure,
    pub message: String,
}

impl ResticRunner {
    pub fn new(binary: PathBuf, cache_dir: PathBuf, timeout: Duration, max_processes: usize) -> Self {
        let max_processes = max_processes.max(1);
        Self {
            binary,
            cache_dir,
            timeout,
            processes: Arc::new(Semaphore::new(max_processes)),
            max_processes,
            running: Arc::default(),
            waiting: Arc::default(),
            peak: Arc::default(),
        }
    }

    /// The most restic processes that ran at once so far (never above the limit).
    pub fn peak_processes(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// restic processes running now.
    pub fn running_processes(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Calls waiting for a free process slot now.
    pub fn waiting_calls(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The limit on restic processes at once.
    pub fn max_processes(&self) -> usize {
        self.max_processes
    }

    /// Runs one restic command and returns its standard output, waiting for a free process slot.
    pub async fn run(&self, repository: &str, env: &ResolvedEnv, command: &Command<'_>) -> Result<String, ResticError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Running(&self.waiting);
        let _permit = self
            .processes
            .acquire()
            .await
            .map_err(|_| ResticError { failure: Failure::Other, message: "the operator is shutting down".into() })?;
        drop(waiting);
        let now = self.running.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        let _running = Running(&self.running);
        self.run_now(repository, env, command).await
    }

    /// A file holding `pem`, named by its content (one per distinct certificate), in the cache dir.
    async fn ca_file(&self, pem: &str) -> Result<PathBuf, ResticError> {
        let path = self.cache_dir.join(format!("ca-{:016x}.pem", crate::naming::fnv1a(pem.as_bytes())));
        if tokio::fs::metadata(&path).await.is_err() {
            let written = async {
                tokio::fs::create_dir_all(&self.cache_dir).await?;
                let partial = path.with_extension("partial");
                tokio::fs::write(&partial, pem).await?;
                tokio::fs::rename(&partial, &path).await
            };
            written.await.map_err(|e| ResticError {
                failure: Failure::Other,
                message: format!("cannot write the repository's CA certificate into {}: {e}", self.cache_dir.display()),
            })?;
        }
        Ok(path)
    }

    async fn run_now(&self, repository: &str, env: &ResolvedEnv, command: &Command<'_>) -> Result<String, ResticError> {
        let mut args = restic::args(repository, command);
        args.extend(["--cache-dir".to_owned(), self.cache_dir.to_string_lossy().into_owned()]);
        // restic 0.14 reads no RESTIC_CACERT: the option it is.
        if let Some(pem) = env.0.get(CA_CERTIFICATE_VARIABLE) {
            args.extend(["--cacert".to_owned(), self.ca_file(pem).await?.to_string_lossy().into_owned()]);
        }
        let mut process = tokio::process::Command::new(&self.binary);
        process
            .args(&args)
            .env_clear()
            .envs(
                ["PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"]
                    .iter()
                    .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
            )
            .envs(env.0.iter().filter(|(name, _)| name.as_str() != CA_CERTIFICATE_VARIABLE))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = process.spawn().map_err(|e| ResticError {
            failure: Failure::Other,
            message: format!("cannot start {}: {e}", self.binary.display()),
        })?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(ResticError { failure: Failure::Other, message: format!("restic failed to run: {e}") }),
            Err(_) => {
                return Err(ResticError {
                    failure: Failure::Unreachable,
                    message: format!("restic {} did not finish within {}s", args[0], self.timeout.as_secs()),
                })
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code().unwrap_or(-1);
        Err(ResticError {
            failure: Failure::classify(code, &format!("{stderr}\n{stdout}")),
            message: restic::last_lines(&stderr, 3),
        })
    }

    /// Opens the repository, creating it when it does not exist yet. Returns whether it was created.
    pub async fn open_or_init(&self, repository: &str, env: &ResolvedEnv) -> Result<bool, ResticError> {
        match self.run(repository, env, &Command::CatConfig).await {
            Ok(_) => Ok(false),
            Err(e) if e.failure == Failure::NoRepository => {
                self.run(repository, env, &Command::Init).await?;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Snapshots of one host (all hosts when `None`), oldest first as restic lists them.
    pub async fn snapshots(&self, repository: &str, env: &ResolvedEnv, host: Option<&str>) -> Result<Vec<Snapshot>, ResticError> {
        let output = self.run(repository, env, &Command::Snapshots { host, tags: vec![] }).await?;
        restic::parse_snapshots(&output)
            .map_err(|e| ResticError { failure: Failure::Other, message: format!("unreadable snapshot list: {e}") })
    }
}

/// Counts a restic process as running (or a call as waiting) until dropped, also when its caller
/// is cancelled.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The newest snapshots of every host in one repository, from one listing.
#[derive(Debug)]
pub struct LatestListing {
    /// When the listing started: it knows every snapshot finished before then.
    pub started: Timestamp,
    /// When it ended: a failed listing answers only the callers that waited for it.
    pub finished: Timestamp,
    pub result: Result<BTreeMap<String, Vec<Snapshot>>, ResticError>,
}

impl LatestListing {
    /// What the listing says about one host (its newest snapshot per path set).
    pub fn of_host(&self, host: &str) -> Result<Vec<Snapshot>, ResticError> {
        match &self.result {
            Ok(hosts) => Ok(hosts.get(host).cloned().unwrap_or_default()),
            Err(e) => Err(e.clone()),
        }
    }
}

/// A repository's last listing; held while it is listed again, so callers wait for that listing.
type ListingSlot = Arc<tokio::sync::Mutex<Option<Arc<LatestListing>>>>;

/// One listing per repository serves every PVC's decision: callers that need one while it runs
/// wait for it, and a listing is listed again only when a caller needs newer knowledge than it
/// has (a PVC created after it started).
#[derive(Debug, Default)]
pub struct ListingCache {
    repositories: Mutex<HashMap<String, ListingSlot>>,
    /// Each repository's last finished listing, readable while the next one runs.
    finished: Mutex<HashMap<String, Arc<LatestListing>>>,
    /// Where each listing's duration is recorded (the metrics' histogram).
    took: Option<prometheus_client::metrics::histogram::Histogram>,
}

impl ListingCache {
    /// A cache that records how long each listing took in `took`.
    pub fn observed_by(took: prometheus_client::metrics::histogram::Histogram) -> Self {
        Self { took: Some(took), ..Self::default() }
    }

    /// The last listing of a repository, however old (or `None`), without listing it.
    pub fn last(&self, key: &str) -> Option<Arc<LatestListing>> {
        self.finished.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// The newest snapshots of every host of `repository` (`key` names it with its credentials'
    /// owner), from a listing started at or after `not_before`.
    pub async fn latest(
        &self,
        runner: &ResticRunner,
        key: &str,
        repository: &str,
        env: &ResolvedEnv,
        not_before: Timestamp,
    ) -> Arc<LatestListing> {
        let arrived = Timestamp::now();
        let slot = self.repositories.lock().unwrap_or_else(|e| e.into_inner()).entry(key.to_owned()).or_default().clone();
        let mut slot = slot.lock().await;
        let usable = |l: &&Arc<LatestListing>| l.started >= not_before && (l.result.is_ok() || l.finished >= arrived);
        if let Some(listing) = slot.as_ref().filter(usable) {
            return listing.clone();
        }
        let started = Timestamp::now();
        let result = match runner.run(repository, env, &Command::LatestSnapshots).await {
            Ok(output) => restic::parse_grouped_snapshots(&output)
                .map_err(|e| ResticError { failure: Failure::Other, message: format!("unreadable snapshot list: {e}") })
                .map(|snapshots| {
                    let mut hosts: BTreeMap<String, Vec<Snapshot>> = BTreeMap::new();
                    for snapshot in snapshots {
                        hosts.entry(snapshot.hostname.clone()).or_default().push(snapshot);
                    }
                    hosts
                }),
            Err(e) => Err(e),
        };
        let finished = Timestamp::now();
        let took = finished.duration_since(started).as_secs_f64();
        if let Some(histogram) = &self.took {
            histogram.observe(took);
        }
        match &result {
            Ok(hosts) => {
                tracing::info!(repository = %restic::redact_target(repository), hosts = hosts.len(), took, "listed the newest snapshots")
            }
            Err(error) => {
                tracing::warn!(repository = %restic::redact_target(repository), %error, took, "could not list the newest snapshots")
            }
        }
        let listing = Arc::new(LatestListing { started, finished, result });
        *slot = Some(listing.clone());
        self.finished.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), listing.clone());
        listing
    }
}
