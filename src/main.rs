use clap::{Parser, Subcommand, ValueEnum};
use datarestor_operator::context::Settings;
use datarestor_operator::job::JobSettings;
use datarestor_operator::leader::LeaseSettings;
use datarestor_operator::operator::Serving;
use datarestor_operator::repository::ResticRunner;
use datarestor_operator::status;
use datarestor_operator::webhook::{Endpoint, Webhook};
use std::time::Duration;

/// DataRestor: back up and restore PersistentVolumeClaims with restic.
#[derive(Parser)]
#[command(name = "datarestor-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up; the size of the `run` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster in KUBECONFIG (or the in-cluster config). A flag given
    /// twice takes its last value, so the chart's `extraArgs` override what the chart sets.
    #[command(args_override_self = true)]
    Run {
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "DATARESTOR_LOG_FORMAT")]
        log_format: LogFormat,
        /// How long to wait for the CRDs to be served before giving up.
        #[arg(long, default_value_t = 60, env = "DATARESTOR_CRD_TIMEOUT_SECONDS")]
        crd_timeout_seconds: u64,
        /// restic for the operator's own repository calls (init, checks, retention, unlock).
        #[arg(long, default_value = "restic", env = "DATARESTOR_RESTIC")]
        restic: std::path::PathBuf,
        /// restic cache for those calls.
        #[arg(long, default_value = "/tmp/datarestor-restic-cache", env = "DATARESTOR_RESTIC_CACHE")]
        restic_cache: std::path::PathBuf,
        /// Time limit of one restic call made by the operator.
        #[arg(long, default_value_t = 600, env = "DATARESTOR_RESTIC_TIMEOUT_SECONDS")]
        restic_timeout_seconds: u64,
        /// At most this many restic processes run in the operator's pod at once (checks,
        /// listings, unlocks); more calls wait. Each takes tens of MiB: keep the pod's memory
        /// limit above this times the largest repository's index.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256), env = "DATARESTOR_MAX_RESTIC_PROCESSES")]
        max_restic_processes: u16,
        /// How often a ready repository is checked again.
        #[arg(long, default_value_t = 300, env = "DATARESTOR_REPOSITORY_CHECK_SECONDS")]
        repository_check_seconds: u64,
        /// How soon an unready repository, failed retention or queued Task is looked at again.
        #[arg(long, default_value_t = 10, env = "DATARESTOR_RETRY_SECONDS")]
        retry_seconds: u64,
        /// The restic image of backup and restore Jobs.
        #[arg(long, default_value = datarestor_operator::job::RESTIC_IMAGE, env = "DATARESTOR_RESTIC_IMAGE")]
        restic_image: String,
        /// Serve the restore-gate admission webhook (HTTPS) on this address, e.g. 0.0.0.0:9443.
        #[arg(long, env = "DATARESTOR_WEBHOOK_LISTEN")]
        webhook_listen: Option<std::net::SocketAddr>,
        /// Serve /metrics (Prometheus), /healthz and /readyz over plain HTTP on this address;
        /// `off` serves nothing.
        #[arg(long, default_value = "0.0.0.0:8080", value_parser = parse_listen, env = "DATARESTOR_METRICS_LISTEN")]
        metrics_listen: Listen,
        /// How the API server reaches the webhook: a URL (https://host:port) ...
        #[arg(long, env = "DATARESTOR_WEBHOOK_URL", conflicts_with = "webhook_service")]
        webhook_url: Option<String>,
        /// ... or a Service as namespace/name:port, or name:port in the operator's own namespace
        /// (POD_NAMESPACE), so a kustomize overlay into another namespace keeps the gate working.
        #[arg(long, env = "DATARESTOR_WEBHOOK_SERVICE")]
        webhook_service: Option<String>,
        /// The gate's failurePolicy: Ignore (pods are created ungated while no operator answers)
        /// or Fail (pod creation in reachable namespaces waits for an operator).
        #[arg(long, default_value = "Ignore", value_parser = ["Ignore", "Fail"], env = "DATARESTOR_WEBHOOK_FAILURE_POLICY")]
        webhook_failure_policy: String,
        /// Take the webhook's serving certificate from this Secret in the operator's namespace
        /// (made by the first replica when empty or missing), so every replica answers with the
        /// CA the webhook configuration names. Without it each process makes its own.
        #[arg(long, env = "DATARESTOR_WEBHOOK_CERTIFICATE_SECRET")]
        webhook_certificate_secret: Option<String>,
        /// Run the controllers only while holding this Lease in the operator's namespace (several
        /// replicas: one acts, the others serve the restore gate and stand by).
        #[arg(long, env = "DATARESTOR_LEADER_ELECTION_LEASE")]
        leader_election_lease: Option<String>,
        /// How long a Lease its holder stopped renewing keeps the others waiting.
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600), env = "DATARESTOR_LEADER_ELECTION_LEASE_SECONDS")]
        leader_election_lease_seconds: u64,
        /// How long workloads stopped for a Task may stay down while its Job cannot be created
        /// (then the Task fails and they come back).
        #[arg(long, default_value_t = 300, env = "DATARESTOR_JOB_START_TIMEOUT_SECONDS")]
        job_start_timeout_seconds: u64,
        /// Namespaces whose Configs may protect PVCs in other namespaces (comma-separated); the
        /// operator's own namespace always may. Configs elsewhere protect only their own namespace.
        #[arg(long, value_delimiter = ',', default_value = "backup-system", env = "DATARESTOR_CLUSTER_WIDE_NAMESPACES")]
        cluster_wide_namespaces: Vec<String>,
        /// Protect only PVCs of these namespaces (comma-separated), whatever Configs select; a
        /// Config elsewhere (outside the cluster-wide namespaces) protects nothing. Default: all.
        #[arg(long, value_delimiter = ',', env = "DATARESTOR_WATCH_NAMESPACES")]
        watch_namespaces: Vec<String>,
        /// Run backup hooks (commands in the application's pods, through pods/exec). With
        /// `false`, a backup whose PVC has a pre-backup hook fails and says why, and the operator
        /// needs no pods/exec permission.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "DATARESTOR_HOOKS")]
        hooks: bool,
        /// restic compression where neither a repository nor its Config sets `restic.compression`:
        /// Auto, None or Max.
        #[arg(long, value_parser = ["Auto", "None", "Max"], env = "DATARESTOR_RESTIC_COMPRESSION")]
        restic_compression: Option<String>,
        /// restic pack size in MiB where no Config says (`restic.packSizeMib`).
        #[arg(long, value_parser = clap::value_parser!(u32).range(4..=128), env = "DATARESTOR_RESTIC_PACK_SIZE_MIB")]
        restic_pack_size_mib: Option<u32>,
        /// Files restic reads at once where no Config says (`restic.readConcurrency`).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64), env = "DATARESTOR_RESTIC_READ_CONCURRENCY")]
        restic_read_concurrency: Option<u32>,
        /// Upload limit of every restic Job in KiB/s where no Config says (`restic.limitUploadKib`).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..), env = "DATARESTOR_RESTIC_LIMIT_UPLOAD_KIB")]
        restic_limit_upload_kib: Option<u32>,
        /// Download limit in KiB/s where no Config says (`restic.limitDownloadKib`).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..), env = "DATARESTOR_RESTIC_LIMIT_DOWNLOAD_KIB")]
        restic_limit_download_kib: Option<u32>,
        /// Size limit of each Job's restic cache (an emptyDir), e.g. 2Gi, where no Config says
        /// (`restic.cacheSizeLimit`).
        #[arg(long, env = "DATARESTOR_JOB_CACHE_SIZE_LIMIT")]
        job_cache_size_limit: Option<String>,
        /// activeDeadlineSeconds of restic Jobs.
        #[arg(long, default_value_t = 6 * 3600, env = "DATARESTOR_JOB_DEADLINE_SECONDS")]
        job_deadline_seconds: i64,
        /// backoffLimit of restic Jobs (pod retries within one Job).
        #[arg(long, default_value_t = 2, env = "DATARESTOR_JOB_BACKOFF_LIMIT")]
        job_backoff_limit: i32,
        /// imagePullPolicy of restic Jobs.
        #[arg(long, default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"], env = "DATARESTOR_JOB_IMAGE_PULL_POLICY")]
        job_image_pull_policy: String,
        /// CPU request of restic Jobs.
        #[arg(long, default_value = "100m", env = "DATARESTOR_JOB_CPU_REQUEST")]
        job_cpu_request: String,
        /// Memory request of restic Jobs.
        #[arg(long, default_value = "128Mi", env = "DATARESTOR_JOB_MEMORY_REQUEST")]
        job_memory_request: String,
        /// Memory limit of restic Jobs (restic's index grows with the repository).
        #[arg(long, default_value = "2Gi", env = "DATARESTOR_JOB_MEMORY_LIMIT")]
        job_memory_limit: String,
    },
    /// Every protected PVC: its Config, last backup (time, snapshot, size), next due backup,
    /// restore state and health. Also `kubectl datarestor status` (link the binary as
    /// `kubectl-datarestor` on your PATH).
    Status {
        #[command(flatten)]
        scope: Scope,
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// `table` or `json`.
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
        /// Administrators' namespaces, as the operator was given them (their Configs reach every
        /// namespace).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "backup-system,datarestor-operator-system",
            env = "DATARESTOR_CLUSTER_WIDE_NAMESPACES"
        )]
        cluster_wide_namespaces: Vec<String>,
        /// The namespaces the operator protects, as it was given them (default: all).
        #[arg(long, value_delimiter = ',', env = "DATARESTOR_WATCH_NAMESPACES")]
        watch_namespaces: Vec<String>,
    },
    /// What a PVC can be restored from: its snapshots in each repository, newest first, from its
    /// Catalog (`kubectl get catalog PVC -o yaml` holds the same).
    Snapshots {
        pvc: String,
        #[command(flatten)]
        scope: Scope,
        /// `table` or `json`.
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
    /// Back a PVC up now: writes its manual-backup annotation and waits for the answer.
    Backup {
        pvc: String,
        /// The backup's name (tag `name=`); without one, an unnamed backup.
        #[arg(default_value = "now")]
        name: String,
        #[command(flatten)]
        scope: Scope,
        #[command(flatten)]
        wait: Wait,
    },
    /// Restore a PVC: writes its manual-restore annotation (`[repository|][host|]snapshot`, default
    /// the newest) and waits for the answer.
    Restore {
        pvc: String,
        #[arg(default_value = "latest")]
        snapshot: String,
        #[command(flatten)]
        scope: Scope,
        #[command(flatten)]
        wait: Wait,
    },
    /// Print every CustomResourceDefinition as YAML, or write one file per CRD into each --output-dir.
    Crd {
        #[arg(long)]
        output_dir: Vec<std::path::PathBuf>,
    },
    /// Print the version.
    Version,
}

/// This process in the Lease: the pod's name and a suffix unique to the process, so a container
/// restarted in the same pod is a new candidate (it waits like any standby) rather than taking
/// over its dead predecessor's Lease at once.
fn lease_identity() -> String {
    let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "datarestor-operator".into());
    let nanos = jiff::Timestamp::now().as_nanosecond();
    format!("{pod}_{:08x}", (nanos as u64 ^ u64::from(std::process::id()).rotate_left(16)) as u32)
}

/// A listening address, or none (`off`).
#[derive(Clone, Copy, Debug)]
struct Listen(Option<std::net::SocketAddr>);

fn parse_listen(value: &str) -> Result<Listen, String> {
    if value == "off" {
        return Ok(Listen(None));
    }
    value.parse().map(|addr| Listen(Some(addr))).map_err(|e| format!("{e}: expected an address like 0.0.0.0:8080, or off"))
}

#[derive(clap::Args)]
struct Scope {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short, long)]
    namespace: Option<String>,
}

impl Scope {
    async fn namespace(&self) -> anyhow::Result<String> {
        match &self.namespace {
            Some(namespace) => Ok(namespace.clone()),
            None => Ok(kube::Config::infer().await?.default_namespace),
        }
    }
}

#[derive(clap::Args)]
struct Wait {
    /// Seconds to wait for the operator's answer; 0 only writes the request.
    #[arg(long, default_value_t = 600)]
    wait_seconds: u64,
}

impl Wait {
    fn limit(&self) -> Option<Duration> {
        (self.wait_seconds > 0).then(|| Duration::from_secs(self.wait_seconds))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            log_format,
            crd_timeout_seconds,
            restic,
            restic_cache,
            restic_timeout_seconds,
            max_restic_processes,
            repository_check_seconds,
            retry_seconds,
            restic_image,
            job_deadline_seconds,
            job_backoff_limit,
            job_image_pull_policy,
            job_cpu_request,
            job_memory_request,
            job_memory_limit,
            webhook_failure_policy,
            job_start_timeout_seconds,
            hooks,
            restic_compression,
            restic_pack_size_mib,
            restic_read_concurrency,
            restic_limit_upload_kib,
            restic_limit_download_kib,
            job_cache_size_limit,
            cluster_wide_namespaces,
            watch_namespaces,
            webhook_listen,
            metrics_listen,
            webhook_url,
            webhook_service,
            webhook_certificate_secret,
            leader_election_lease,
            leader_election_lease_seconds,
        } => {
            init_tracing(log_format);
            // Every start-up error is logged in the chosen format, so a JSON log pipeline sees why
            // the pod stopped.
            let started = async {
                let settings = Settings {
                    job: JobSettings {
                        image: restic_image,
                        active_deadline_seconds: job_deadline_seconds,
                        backoff_limit: job_backoff_limit,
                        image_pull_policy: job_image_pull_policy,
                        cpu_request: job_cpu_request,
                        memory_request: job_memory_request,
                        memory_limit: job_memory_limit,
                        ..JobSettings::default()
                    },
                    restic: ResticRunner::new(
                        restic,
                        restic_cache,
                        Duration::from_secs(restic_timeout_seconds),
                        usize::from(max_restic_processes),
                    ),
                    repository_check_interval: Duration::from_secs(repository_check_seconds),
                    retry_interval: Duration::from_secs(retry_seconds),
                    job_start_timeout: Duration::from_secs(job_start_timeout_seconds),
                    hooks_enabled: hooks,
                    restic_defaults: datarestor_operator::api::ResticOptions {
                        compression: restic_compression.and_then(|c| serde_json::from_value(serde_json::Value::String(c)).ok()),
                        pack_size_mib: restic_pack_size_mib,
                        read_concurrency: restic_read_concurrency,
                        limit_upload_kib: restic_limit_upload_kib,
                        limit_download_kib: restic_limit_download_kib,
                        cache_size_limit: job_cache_size_limit.map(k8s_openapi::apimachinery::pkg::api::resource::Quantity),
                        ..Default::default()
                    },
                    cluster_wide: {
                        let mut namespaces = cluster_wide_namespaces;
                        namespaces.extend(std::env::var("POD_NAMESPACE").ok());
                        let watched = watch_namespaces.into_iter().filter(|n| !n.is_empty()).collect();
                        datarestor_operator::api::ClusterWide(namespaces, datarestor_operator::api::Watched(watched))
                    },
                };
                let endpoint = match (webhook_url, webhook_service) {
                    (Some(url), _) => Some(Endpoint::Url(url)),
                    (None, Some(service)) => Some(parse_service(&service)?),
                    (None, None) => None,
                };
                let webhook = match (webhook_listen, endpoint) {
                    (Some(listen), Some(endpoint)) => Some(Webhook {
                        listen,
                        endpoint,
                        certificate_secret: webhook_certificate_secret,
                        fail_closed: webhook_failure_policy == "Fail",
                    }),
                    (None, None) => None,
                    _ => anyhow::bail!("--webhook-listen needs --webhook-url or --webhook-service, and the other way round"),
                };
                let namespace = std::env::var("POD_NAMESPACE").ok();
                let leader_election = match (leader_election_lease, namespace) {
                    (None, _) => None,
                    (Some(name), Some(namespace)) => Some(LeaseSettings {
                        name,
                        namespace,
                        identity: lease_identity(),
                        duration: Duration::from_secs(leader_election_lease_seconds),
                    }),
                    (Some(_), None) => anyhow::bail!("--leader-election-lease needs POD_NAMESPACE (the Lease's namespace)"),
                };
                if leader_election.is_some() && webhook.as_ref().is_some_and(|w| w.certificate_secret.is_none()) {
                    // Each replica would publish its own CA and the others' answers would fail TLS.
                    anyhow::bail!("--leader-election-lease with the webhook needs --webhook-certificate-secret (every replica must serve the same certificate)");
                }
                let serving = Serving { webhook, metrics_listen: metrics_listen.0, leader_election };
                datarestor_operator::operator::run(settings, Duration::from_secs(crd_timeout_seconds), serving).await?;
                anyhow::Ok(())
            };
            if let Err(error) = started.await {
                tracing::error!(error = format!("{error:#}"), "datarestor-operator cannot start");
                std::process::exit(1);
            }
        }
        Command::Crd { output_dir } if output_dir.is_empty() => print!("{}", datarestor_operator::crdgen::all_yaml()),
        Command::Crd { output_dir } => {
            for dir in output_dir {
                for crd in datarestor_operator::crdgen::crds() {
                    let path = dir.join(datarestor_operator::crdgen::file_name(&crd));
                    std::fs::write(&path, datarestor_operator::crdgen::to_yaml(&crd))?;
                    eprintln!("wrote {}", path.display());
                }
            }
        }
        Command::Status { scope, all_namespaces, output, cluster_wide_namespaces, watch_namespaces } => {
            let namespace = if all_namespaces { None } else { Some(scope.namespace().await?) };
            let client = kube::Client::try_default().await?;
            let watched = datarestor_operator::api::Watched(watch_namespaces.into_iter().filter(|n| !n.is_empty()).collect());
            let cluster_wide = datarestor_operator::api::ClusterWide(cluster_wide_namespaces, watched);
            print!("{}", status::status(client, namespace.as_deref(), &cluster_wide, output == "json").await?);
        }
        Command::Snapshots { pvc, scope, output } => {
            let (client, namespace) = (kube::Client::try_default().await?, scope.namespace().await?);
            print!("{}", status::snapshots(client, &namespace, &pvc, output == "json").await?);
        }
        Command::Backup { pvc, name, scope, wait } => {
            let (client, namespace) = (kube::Client::try_default().await?, scope.namespace().await?);
            print!("{}", status::request(client, &namespace, &pvc, status::Request::Backup, &name, wait.limit()).await?);
        }
        Command::Restore { pvc, snapshot, scope, wait } => {
            let (client, namespace) = (kube::Client::try_default().await?, scope.namespace().await?);
            print!("{}", status::request(client, &namespace, &pvc, status::Request::Restore, &snapshot, wait.limit()).await?);
        }
        Command::Version => println!("datarestor-operator {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}

/// `namespace/name:port`.
/// `namespace/name:port`, or `name:port` in the operator's own namespace (POD_NAMESPACE).
fn parse_service(text: &str) -> anyhow::Result<Endpoint> {
    let expected = || anyhow::anyhow!("--webhook-service: expected namespace/name:port or name:port, got {text:?}");
    let (namespace, rest) = match text.split_once('/') {
        Some((namespace, rest)) => (namespace.to_owned(), rest),
        None => (
            std::env::var("POD_NAMESPACE")
                .map_err(|_| anyhow::anyhow!("--webhook-service {text}: no namespace given and POD_NAMESPACE is not set"))?,
            text,
        ),
    };
    let (name, port) = rest.split_once(':').ok_or_else(expected)?;
    if namespace.is_empty() || name.is_empty() {
        return Err(expected());
    }
    Ok(Endpoint::Service { namespace, name: name.into(), port: port.parse().map_err(|_| expected())? })
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
