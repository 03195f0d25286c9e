//! How restic runs against a repository: compression, pack size, concurrency, bandwidth, excludes,
//! vetted extra arguments, a CA certificate for self-hosted storage, the Jobs' cache size.

use k8s_openapi::api::core::v1::{ConfigMapKeySelector, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// restic settings. On the Config they apply to every repository; a repository's own `restic`
/// wins field by field. Nothing here becomes an unvetted restic flag: each field maps to one known
/// option, and the extra arguments pass an allow-list.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResticOptions {
    /// `Auto` (restic's default), `None` (restic's `off`) or `Max` (repository format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Target size of pack files, in MiB (restic's default is 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 4, max = 128))]
    pub pack_size_mib: Option<u32>,
    /// Files read at once during a backup (restic's default is 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub read_concurrency: Option<u32>,
    /// Upload limit, KiB/s (`--limit-upload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub limit_upload_kib: Option<u32>,
    /// Download limit, KiB/s (`--limit-download`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub limit_download_kib: Option<u32>,
    /// Patterns left out of backups (`--exclude`), relative to the volume: `cache/`, `*.tmp`,
    /// `/data/scratch` (a leading `/` anchors at the volume, whose path in snapshots is `/data`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub excludes: Vec<String>,
    /// Leave out directories holding a `CACHEDIR.TAG` (`--exclude-caches`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_caches: Option<bool>,
    /// Leave out directories holding a file of one of these names (`--exclude-if-present`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub exclude_if_present: Vec<String>,
    /// More `restic backup` options, from an allow-list: `--one-file-system`, `--ignore-inode`,
    /// `--ignore-ctime`, `--no-scan`, `--with-atime`, `--exclude-larger-than SIZE`,
    /// `--iexclude PATTERN`. Anything else makes the Config `Valid=False`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub extra_backup_args: Vec<String>,
    /// More `restic restore` options, from an allow-list: `--include PATTERN`,
    /// `--iinclude PATTERN`, `--exclude PATTERN`, `--iexclude PATTERN`, `--sparse`, `--verify`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub extra_restore_args: Vec<String>,
    /// A CA certificate (PEM) restic trusts besides the system's, for storage whose certificate a
    /// private CA signed: a key of a Secret or ConfigMap in the Config's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<CaCertificate>,
    /// Size limit of the restic cache of each Job (an emptyDir), e.g. `2Gi`; absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_size_limit: Option<Quantity>,
}

/// restic's compression mode. `None` rather than restic's `off`: YAML 1.1, which Kubernetes reads,
/// takes a bare `off` (or `Off`) for false.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Auto,
    None,
    Max,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::None => "off",
            Self::Max => "max",
        }
    }
}

/// Where a CA certificate is read from: exactly one of the two.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.secretKeyRef) != has(self.configMapKeyRef)").message("caCertificate needs exactly one of secretKeyRef and configMapKeyRef"))]
pub struct CaCertificate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeySelector>,
}

/// The pseudo-variable carrying a CA certificate's PEM through the credentials Secret: a Job gets it
/// as a file (restic's `RESTIC_CACERT` names the path), the operator's own restic calls too; restic
/// never sees this variable.
pub const CA_CERTIFICATE_VARIABLE: &str = "DATARESTOR_CA_CERTIFICATE";

impl ResticOptions {
    /// The CA certificate as an env entry of the pseudo-variable, resolved like any other.
    pub fn ca_env(&self) -> Option<k8s_openapi::api::core::v1::EnvVar> {
        let ca = self.ca_certificate.as_ref()?;
        Some(k8s_openapi::api::core::v1::EnvVar {
            name: CA_CERTIFICATE_VARIABLE.to_owned(),
            value: None,
            value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                secret_key_ref: ca.secret_key_ref.clone(),
                config_map_key_ref: ca.config_map_key_ref.clone(),
                ..Default::default()
            }),
        })
    }

    /// These options with `own`'s set fields laid over them (a repository's over its Config's).
    pub fn overlaid(&self, own: Option<&ResticOptions>) -> ResticOptions {
        let Some(own) = own else { return self.clone() };
        let list = |own: &Vec<String>, base: &Vec<String>| if own.is_empty() { base.clone() } else { own.clone() };
        ResticOptions {
            compression: own.compression.or(self.compression),
            pack_size_mib: own.pack_size_mib.or(self.pack_size_mib),
            read_concurrency: own.read_concurrency.or(self.read_concurrency),
            limit_upload_kib: own.limit_upload_kib.or(self.limit_upload_kib),
            limit_download_kib: own.limit_download_kib.or(self.limit_download_kib),
            excludes: list(&own.excludes, &self.excludes),
            exclude_caches: own.exclude_caches.or(self.exclude_caches),
            exclude_if_present: list(&own.exclude_if_present, &self.exclude_if_present),
            extra_backup_args: list(&own.extra_backup_args, &self.extra_backup_args),
            extra_restore_args: list(&own.extra_restore_args, &self.extra_restore_args),
            ca_certificate: own.ca_certificate.clone().or_else(|| self.ca_certificate.clone()),
            cache_size_limit: own.cache_size_limit.clone().or_else(|| self.cache_size_limit.clone()),
        }
    }

    /// restic's environment for the tuning fields.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(c) = self.compression {
            env.push(("RESTIC_COMPRESSION", c.as_str().to_owned()));
        }
        if let Some(size) = self.pack_size_mib {
            env.push(("RESTIC_PACK_SIZE", size.to_string()));
        }
        if let Some(n) = self.read_concurrency {
            env.push(("RESTIC_READ_CONCURRENCY", n.to_string()));
        }
        env
    }

    /// Global options every restic command of this repository gets (bandwidth limits).
    pub fn global_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(kib) = self.limit_upload_kib {
            args.extend(["--limit-upload".to_owned(), kib.to_string()]);
        }
        if let Some(kib) = self.limit_download_kib {
            args.extend(["--limit-download".to_owned(), kib.to_string()]);
        }
        args
    }

    /// Options of `restic backup`: excludes and the vetted extra arguments.
    pub fn backup_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for pattern in &self.excludes {
            args.extend(["--exclude".to_owned(), anchored(pattern)]);
        }
        if self.exclude_caches == Some(true) {
            args.push("--exclude-caches".to_owned());
        }
        for name in &self.exclude_if_present {
            args.extend(["--exclude-if-present".to_owned(), name.clone()]);
        }
        args.extend(self.extra_backup_args.iter().cloned());
        args
    }

    /// Options of `restic restore`: the vetted extra arguments.
    pub fn restore_args(&self) -> Vec<String> {
        self.extra_restore_args.clone()
    }

    /// What is wrong with these options, each in words. (Checked here, not by CEL rules on the
    /// lists' items: the real API server refuses the CRD when such rules' estimated cost, over
    /// every repository, exceeds its budget.)
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(bad) = self.excludes.iter().find(|p| p.is_empty() || p.len() > 512 || p.chars().any(char::is_control)) {
            problems.push(format!("restic.excludes: {bad:?} is not a pattern (1 to 512 printable characters)"));
        }
        if let Some(bad) = self
            .exclude_if_present
            .iter()
            .find(|n| n.is_empty() || n.len() > 255 || n.contains('/') || n.chars().any(char::is_control))
        {
            problems.push(format!("restic.excludeIfPresent: {bad:?} is not a file name (1 to 255 characters, no '/')"));
        }
        if let Err(e) = vet(&self.extra_backup_args, BACKUP_SWITCHES, BACKUP_WITH_VALUE) {
            problems.push(format!("restic.extraBackupArgs: {e}"));
        }
        if let Err(e) = vet(&self.extra_restore_args, RESTORE_SWITCHES, RESTORE_WITH_VALUE) {
            problems.push(format!("restic.extraRestoreArgs: {e}"));
        }
        problems
    }
}

/// A pattern with a leading `/` names a path from the volume's root, which snapshots record as
/// `/data`; others match anywhere, as restic's do.
fn anchored(pattern: &str) -> String {
    let data = crate::api::DATA_PATH;
    let already = pattern == data || pattern.strip_prefix(data).is_some_and(|rest| rest.starts_with('/'));
    match pattern.strip_prefix('/') {
        Some(rest) if !already => format!("{data}/{rest}"),
        _ => pattern.to_owned(),
    }
}

const BACKUP_SWITCHES: &[&str] = &["--one-file-system", "--ignore-inode", "--ignore-ctime", "--no-scan", "--with-atime"];
const BACKUP_WITH_VALUE: &[&str] = &["--exclude-larger-than", "--iexclude"];
const RESTORE_SWITCHES: &[&str] = &["--sparse", "--verify"];
const RESTORE_WITH_VALUE: &[&str] = &["--include", "--iinclude", "--exclude", "--iexclude"];

/// Checks extra arguments against an allow-list: each switch alone, each option with its value
/// (`--iexclude x` or `--iexclude=x`); a value never starts with `-`.
fn vet(args: &[String], switches: &[&str], with_value: &[&str]) -> Result<(), String> {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if switches.contains(&arg.as_str()) {
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (arg.as_str(), None),
        };
        if !with_value.contains(&flag) {
            let allowed: Vec<&str> = switches.iter().chain(with_value).copied().collect();
            return Err(format!("{arg:?} is not allowed (allowed: {})", allowed.join(", ")));
        }
        let value = match inline {
            Some(value) => Some(value),
            None => rest.next().map(String::as_str),
        };
        match value {
            Some(v) if !v.is_empty() && !v.starts_with('-') && !v.chars().any(char::is_control) => {}
            _ => return Err(format!("{flag} needs a value")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(value: serde_json::Value) -> ResticOptions {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_repositorys_options_win_field_by_field() {
        let config =
            options(serde_json::json!({"compression": "Max", "packSizeMib": 32, "excludes": ["*.tmp"], "limitUploadKib": 100}));
        let own = options(
            serde_json::json!({"compression": "None", "excludes": ["cache/", "/scratch", "/data/logs", "/database"], "excludeCaches": true}),
        );
        let merged = config.overlaid(Some(&own));
        assert_eq!(merged.env(), [("RESTIC_COMPRESSION", "off".to_owned()), ("RESTIC_PACK_SIZE", "32".to_owned())]);
        assert_eq!(merged.global_args(), ["--limit-upload", "100"]);
        assert_eq!(
            merged.backup_args(),
            [
                "--exclude",
                "cache/",
                "--exclude",
                "/data/scratch",
                "--exclude",
                "/data/logs",
                "--exclude",
                "/data/database",
                "--exclude-caches"
            ]
        );
        assert_eq!(config.overlaid(None), config);
    }

    #[test]
    fn extra_arguments_pass_an_allow_list() {
        let ok = options(serde_json::json!({
            "extraBackupArgs": ["--one-file-system", "--exclude-larger-than", "1G", "--iexclude=*.ISO"],
            "extraRestoreArgs": ["--include", "/data/app", "--verify"],
        }));
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
        for (args, says) in [
            (serde_json::json!(["--password-command", "sh"]), "not allowed"),
            (serde_json::json!(["-o", "s3.storage-class=GLACIER"]), "not allowed"),
            (serde_json::json!(["--exclude-larger-than"]), "needs a value"),
            (serde_json::json!(["--iexclude", "--no-scan"]), "needs a value"),
            (serde_json::json!(["--repo=/elsewhere"]), "not allowed"),
        ] {
            let bad = options(serde_json::json!({"extraBackupArgs": args}));
            let problems = bad.problems();
            assert!(problems.len() == 1 && problems[0].contains(says), "{args}: {problems:?}");
        }
        let bad = options(serde_json::json!({"extraRestoreArgs": ["--target", "/"]}));
        assert!(bad.problems()[0].starts_with("restic.extraRestoreArgs: \"--target\" is not allowed"));
    }
}
