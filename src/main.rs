use clap::{Parser, Subcommand, ValueEnum};
use std::time::Duration;

/// DataRestor: back up and restore PersistentVolumeClaims with restic.
#[derive(Parser)]
#[command(name = "datarestor-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster in KUBECONFIG (or the in-cluster config).
    Run {
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "DATARESTOR_LOG_FORMAT")]
        log_format: LogFormat,
        /// How long to wait for the CRDs to be served before giving up.
        #[arg(long, default_value_t = 60, env = "DATARESTOR_CRD_TIMEOUT_SECONDS")]
        crd_timeout_seconds: u64,
    },
    /// Print every CustomResourceDefinition as YAML, or write one file per CRD into each --output-dir.
    Crd {
        #[arg(long)]
        output_dir: Vec<std::path::PathBuf>,
    },
    /// Print the version.
    Version,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run { log_format, crd_timeout_seconds } => {
            init_tracing(log_format);
            datarestor_operator::operator::run(Duration::from_secs(crd_timeout_seconds)).await?;
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
        Command::Version => println!("datarestor-operator {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
