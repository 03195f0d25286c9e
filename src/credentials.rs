//! Repository credentials for restic Jobs.
//!
//! A Job runs in its PVC's namespace and cannot reference Secrets of the Config's namespace, and
//! literal `value`s must not be written into Job specs. So the operator resolves a repository's
//! environment here (pure: the lookups are passed in) and stores it in one operator-owned Secret
//! per namespace and repository, from which the Job reads each variable by name.

use crate::api::{Config, ConfigSpec, Repository};
use crate::job::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::naming::{bounded_name, fnv1a};
use k8s_openapi::api::core::v1::{EnvVar, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use std::collections::BTreeMap;
use std::fmt;

/// Labels that tie a credentials Secret to its Config (owner references cannot cross namespaces).
pub const CONFIG_NAME_LABEL: &str = "backup.datarestor-operator.com/config";
pub const CONFIG_NAMESPACE_LABEL: &str = "backup.datarestor-operator.com/config-namespace";

/// restic's variable for the repository.
pub const REPOSITORY_VARIABLE: &str = "RESTIC_REPOSITORY";

/// A value looked up from a Secret or ConfigMap key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(String),
    /// The object exists but has no such key.
    MissingKey,
    /// No such object.
    MissingObject,
}

/// Where `valueFrom` references are read from (the Config's namespace).
pub trait ValueSource {
    fn secret_key(&self, name: &str, key: &str) -> Lookup;
    fn config_map_key(&self, name: &str, key: &str) -> Lookup;
}

/// Why a repository's environment cannot be resolved. Never contains a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("env {var}: Secret {object:?} does not exist in the Config's namespace")]
    MissingSecret { var: String, object: String },
    #[error("env {var}: Secret {object:?} has no key {key:?}")]
    MissingSecretKey { var: String, object: String, key: String },
    #[error("env {var}: ConfigMap {object:?} does not exist in the Config's namespace")]
    MissingConfigMap { var: String, object: String },
    #[error("env {var}: ConfigMap {object:?} has no key {key:?}")]
    MissingConfigMapKey { var: String, object: String, key: String },
    #[error("env {var}: only value, valueFrom.secretKeyRef and valueFrom.configMapKeyRef are supported for restic")]
    Unsupported { var: String },
}

/// Environment variables a Config may give restic: the password and what restic's storage
/// backends and tuning read. Anything else is refused, above all what makes restic run a command
/// or read a file (`RESTIC_PASSWORD_COMMAND`, `RESTIC_PASSWORD_FILE`, ...): the operator's own
/// restic calls run in its pod, whose service account reads Secrets.
const ALLOWED_ENV: &[&str] = &[
    "RESTIC_PASSWORD",
    "RESTIC_COMPRESSION",
    "RESTIC_PACK_SIZE",
    "RESTIC_READ_CONCURRENCY",
    "RESTIC_KEY_HINT",
    "RESTIC_REST_USERNAME",
    "RESTIC_REST_PASSWORD",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "TZ",
    // The CA certificate of `restic.caCertificate` (never an env var of restic's own).
    crate::api::CA_CERTIFICATE_VARIABLE,
];
/// Prefixes of storage backends' variables (S3, B2, Azure, Google Cloud Storage, Swift).
const ALLOWED_ENV_PREFIXES: &[&str] = &["AWS_", "B2_", "AZURE_", "GOOGLE_", "OS_", "ST_"];

/// Every variable name in `env` that restic must not be given, with why.
pub fn refused_env(env: &[EnvVar]) -> Vec<String> {
    env.iter()
        .map(|var| var.name.as_str())
        .filter(|name| !ALLOWED_ENV.contains(name) && !ALLOWED_ENV_PREFIXES.iter().any(|p| name.starts_with(p)))
        .map(|name| {
            if name.is_empty() {
                return "an env entry has no name".to_owned();
            }
            format!(
                "env {name} is not a variable DataRestor gives restic (allowed: RESTIC_PASSWORD, storage credentials such as AWS_*, B2_*, AZURE_*, GOOGLE_*, OS_*, ST_*, RESTIC_REST_*, proxies, TZ)"
            )
        })
        .collect()
}

/// The resolved environment of one repository. `Debug` shows names only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ResolvedEnv(pub BTreeMap<String, String>);

impl fmt::Debug for ResolvedEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys().map(|k| format!("{k}=<redacted>"))).finish()
    }
}

/// Resolves the shared and repository environment (the repository's own entries win), with the
/// variables of the repository's restic settings `options` over them.
pub fn resolve(
    spec: &ConfigSpec,
    repository: &Repository,
    options: &crate::api::ResticOptions,
    source: &dyn ValueSource,
) -> Result<ResolvedEnv, EnvError> {
    let mut resolved = BTreeMap::new();
    for var in spec.effective_env(repository) {
        if let Some(value) = resolve_var(&var, source)? {
            resolved.insert(var.name.clone(), value);
        }
    }
    // The restic settings' variables win over env entries of the same name.
    for (name, value) in options.env() {
        resolved.insert(name.to_owned(), value);
    }
    // Jobs read the repository from here, not from their arguments: a target may carry credentials.
    resolved.insert(REPOSITORY_VARIABLE.to_owned(), repository.target.clone());
    Ok(ResolvedEnv(resolved))
}

fn resolve_var(var: &EnvVar, source: &dyn ValueSource) -> Result<Option<String>, EnvError> {
    let Some(from) = &var.value_from else {
        return Ok(Some(var.value.clone().unwrap_or_default()));
    };
    // Errors name what the user wrote: the CA certificate is not an env entry of theirs.
    let name =
        if var.name == crate::api::CA_CERTIFICATE_VARIABLE { "of restic.caCertificate".to_owned() } else { var.name.clone() };
    if let Some(selector) = &from.secret_key_ref {
        let optional = selector.optional == Some(true);
        return match source.secret_key(&selector.name, &selector.key) {
            Lookup::Found(value) => Ok(Some(value)),
            _ if optional => Ok(None),
            Lookup::MissingKey => {
                Err(EnvError::MissingSecretKey { var: name, object: selector.name.clone(), key: selector.key.clone() })
            }
            Lookup::MissingObject => Err(EnvError::MissingSecret { var: name, object: selector.name.clone() }),
        };
    }
    if let Some(selector) = &from.config_map_key_ref {
        let optional = selector.optional == Some(true);
        return match source.config_map_key(&selector.name, &selector.key) {
            Lookup::Found(value) => Ok(Some(value)),
            _ if optional => Ok(None),
            Lookup::MissingKey => {
                Err(EnvError::MissingConfigMapKey { var: name, object: selector.name.clone(), key: selector.key.clone() })
            }
            Lookup::MissingObject => Err(EnvError::MissingConfigMap { var: name, object: selector.name.clone() }),
        };
    }
    Err(EnvError::Unsupported { var: name })
}

/// The credentials Secret's name for a Config's repository: stable, and distinct per repository.
pub fn secret_name(config: &Config, repository: &Repository) -> String {
    let config_name = config.metadata.name.as_deref().unwrap_or_default();
    let identity = format!("{}/{config_name}/{}", config.metadata.namespace.as_deref().unwrap_or_default(), repository.target);
    bounded_name(&["datarestor", config_name, &format!("{:08x}", fnv1a(identity.as_bytes()) as u32)])
}

/// The credentials Secret in `namespace` for a Config's repository.
pub fn secret(config: &Config, repository: &Repository, namespace: &str, env: &ResolvedEnv) -> Secret {
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (CONFIG_NAME_LABEL.to_owned(), config.metadata.name.clone().unwrap_or_default()),
        (CONFIG_NAMESPACE_LABEL.to_owned(), config.metadata.namespace.clone().unwrap_or_default()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(config, repository)),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(env.0.iter().map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes()))).collect()),
        immutable: Some(false),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl ValueSource for Fixed {
        fn secret_key(&self, name: &str, key: &str) -> Lookup {
            match (name, key) {
                ("s3-creds", "secret") => Lookup::Found("s3cr3t-value".into()),
                ("s3-creds", _) => Lookup::MissingKey,
                _ => Lookup::MissingObject,
            }
        }
        fn config_map_key(&self, name: &str, key: &str) -> Lookup {
            match (name, key) {
                ("restic-settings", "compression") => Lookup::Found("max".into()),
                _ => Lookup::MissingObject,
            }
        }
    }

    fn config(env: serde_json::Value, repo_env: serde_json::Value) -> Config {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "backup.datarestor-operator.com/v1alpha1",
            "kind": "Config",
            "metadata": {"name": "my-backup-config", "namespace": "backup-system"},
            "spec": {"env": env, "repositories": [{"target": "s3:http://minio:9000/b", "priority": 1, "env": repo_env}]}
        }))
        .unwrap()
    }

    #[test]
    fn literal_and_referenced_values_merge_with_repository_winning() {
        let config = config(
            serde_json::json!([
                {"name": "RESTIC_PASSWORD", "value": "shared-password"},
                {"name": "AWS_ACCESS_KEY_ID", "value": "shared-id"}
            ]),
            serde_json::json!([
                {"name": "AWS_ACCESS_KEY_ID", "value": "repo-id"},
                {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "secret"}}},
                {"name": "RESTIC_COMPRESSION", "valueFrom": {"configMapKeyRef": {"name": "restic-settings", "key": "compression"}}},
                {"name": "OPTIONAL", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": true}}}
            ]),
        );
        let env = resolve(&config.spec, &config.spec.repositories[0], &Default::default(), &Fixed).unwrap();
        let expected: BTreeMap<String, String> = [
            ("AWS_ACCESS_KEY_ID", "repo-id"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
            ("RESTIC_COMPRESSION", "max"),
            ("RESTIC_PASSWORD", "shared-password"),
            ("RESTIC_REPOSITORY", "s3:http://minio:9000/b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(env.0, expected);
        let debug = format!("{env:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("password") && debug.contains("RESTIC_PASSWORD=<redacted>"),
            "{debug}"
        );
    }

    #[test]
    fn missing_references_are_named_without_values() {
        let cases = [
            (serde_json::json!({"secretKeyRef": {"name": "nope", "key": "k"}}), "env X: Secret \"nope\" does not exist"),
            (
                serde_json::json!({"secretKeyRef": {"name": "s3-creds", "key": "other"}}),
                "Secret \"s3-creds\" has no key \"other\"",
            ),
            (serde_json::json!({"configMapKeyRef": {"name": "nope", "key": "k"}}), "ConfigMap \"nope\" does not exist"),
            (serde_json::json!({"fieldRef": {"fieldPath": "metadata.name"}}), "only value, valueFrom.secretKeyRef"),
        ];
        for (value_from, expected) in cases {
            let config = config(serde_json::json!([]), serde_json::json!([{"name": "X", "valueFrom": value_from}]));
            let error = resolve(&config.spec, &config.spec.repositories[0], &Default::default(), &Fixed).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn secret_is_labelled_and_named_per_repository() {
        let config = config(serde_json::json!([]), serde_json::json!([{"name": "RESTIC_PASSWORD", "value": "pw"}]));
        let repo = &config.spec.repositories[0];
        let env = resolve(&config.spec, repo, &Default::default(), &Fixed).unwrap();
        let secret = secret(&config, repo, "shop", &env);
        let name = secret.metadata.name.clone().unwrap();
        assert!(name.starts_with("datarestor-my-backup-config-") && name.len() <= 63, "{name}");
        assert_eq!(secret.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(secret.metadata.labels.as_ref().unwrap()[CONFIG_NAMESPACE_LABEL], "backup-system");
        assert_eq!(secret.data.as_ref().unwrap()["RESTIC_PASSWORD"].0, b"pw");
        let mut other = repo.clone();
        other.target = "s3:http://minio:9000/other".into();
        assert_ne!(secret_name(&config, &other), name);
    }
}
