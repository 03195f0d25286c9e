//! restic calls the operator makes itself (short metadata operations: init, connectivity checks,
//! snapshot listings, unlock). Backups, restores and retention move or rewrite data and run in Jobs.

use crate::credentials::ResolvedEnv;
use crate::restic::{self, Command, Failure, Snapshot};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// How the operator runs restic.
#[derive(Clone, Debug)]
pub struct ResticRunner {
    pub binary: PathBuf,
    pub cache_dir: PathBuf,
    pub timeout: Duration,
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
    /// Runs one restic command and returns its standard output.
    pub async fn run(&self, repository: &str, env: &ResolvedEnv, command: &Command<'_>) -> Result<String, ResticError> {
        let mut args = restic::args(repository, command);
        args.extend(["--cache-dir".to_owned(), self.cache_dir.to_string_lossy().into_owned()]);
        let mut process = tokio::process::Command::new(&self.binary);
        process
            .args(&args)
            .env_clear()
            .envs(
                ["PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"]
                    .iter()
                    .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
            )
            .envs(env.0.iter())
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
