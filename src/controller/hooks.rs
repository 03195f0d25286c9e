//! Backup hooks: a command run through `pods/exec` in a running pod that mounts the PVC, with a
//! timeout, its exit code and the tail of its output recorded in the Task.

use super::Error;
use crate::api::{Hook, HookPoint, HookRecord, HookResult};
use crate::context::Context;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, Time};
use kube::api::AttachParams;
use kube::{Api, ResourceExt};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Output kept from a hook (its last bytes): enough to say why it failed, never a whole dump.
const OUTPUT_KEPT: usize = 512;

/// The pod a hook runs in: a running pod that mounts the claim, not being deleted, whose chosen
/// container runs. The first by name, so a retried Task picks the same one.
pub fn hook_pod<'a>(pods: &'a [Pod], container: Option<&str>) -> Option<(&'a Pod, String)> {
    let mut candidates: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    candidates.sort_by_key(|p| p.name_any());
    candidates.into_iter().find_map(|pod| {
        let name = match container {
            Some(c) => c.to_owned(),
            None => pod.spec.as_ref()?.containers.first()?.name.clone(),
        };
        let running = pod
            .status
            .as_ref()?
            .container_statuses
            .as_ref()?
            .iter()
            .any(|s| s.name == name && s.state.as_ref().is_some_and(|st| st.running.is_some()));
        running.then_some((pod, name))
    })
}

/// The exit code an exec's closing Status reports: 0 for `Success`, the `ExitCode` cause of a
/// `NonZeroExitCode` failure; None when the command did not run to an exit (the Status says why).
pub fn exit_code(status: &Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    if status.reason.as_deref() != Some("NonZeroExitCode") {
        return None;
    }
    let causes = status.details.as_ref()?.causes.as_ref()?;
    causes.iter().find(|c| c.reason.as_deref() == Some("ExitCode"))?.message.as_deref()?.trim().parse().ok()
}

/// The last `OUTPUT_KEPT` bytes of `output`, cut at a character boundary, trimmed.
fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(&output[output.len().saturating_sub(OUTPUT_KEPT)..]).into_owned();
    text.trim().to_owned()
}

/// Reads a stream to its end, keeping only its last bytes.
async fn drain(mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > 4 * OUTPUT_KEPT {
            kept.drain(..kept.len() - OUTPUT_KEPT);
        }
    }
    kept
}

/// Runs `hook` at `point` in a pod that mounts `claim`. None when no such pod runs: nothing writes
/// to the volume, so there is nothing to make consistent.
pub async fn run(
    ctx: &Context,
    namespace: &str,
    claim: &str,
    point: HookPoint,
    hook: &Hook,
) -> Result<Option<HookRecord>, Error> {
    let pods = super::quiesce::pods_mounting(ctx, namespace, claim).await?;
    let Some((pod, container)) = hook_pod(&pods, hook.container.as_deref()) else {
        return Ok(None);
    };
    let pod_name = pod.name_any();
    let started = Instant::now();
    let start_time = Time(Timestamp::now());
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let params = AttachParams::default().container(container.clone()).stdin(false).stdout(true).stderr(true);
    let limit = Duration::from_secs(hook.timeout_seconds.max(1) as u64);
    let outcome = tokio::time::timeout(limit, async {
        let mut process = api.exec(&pod_name, hook.command.clone(), &params).await?;
        let stdout = process.stdout();
        let stderr = process.stderr();
        let status = process.take_status();
        let (out, err) = tokio::join!(
            async {
                match stdout {
                    Some(s) => drain(s).await,
                    None => Vec::new(),
                }
            },
            async {
                match stderr {
                    Some(s) => drain(s).await,
                    None => Vec::new(),
                }
            }
        );
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        let _ = process.join().await;
        Ok::<_, kube::Error>((out, err, status))
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let mut record = HookRecord {
        point: point.name().to_owned(),
        pod: pod_name.clone(),
        container,
        command: hook.command.first().cloned().unwrap_or_default(),
        start_time,
        duration_seconds: (seconds * 10.0).round() / 10.0,
        exit_code: None,
        result: HookResult::Failed,
        message: String::new(),
    };
    match outcome {
        Err(_) => {
            record.result = HookResult::TimedOut;
            record.message = format!("no exit after {}s (timeoutSeconds); given up", hook.timeout_seconds);
        }
        Ok(Err(error)) => record.message = format!("could not run in pod {pod_name}: {}", exec_error(&error)),
        Ok(Ok((out, err, status))) => {
            record.exit_code = status.as_ref().and_then(exit_code);
            // What it printed last: stderr says why it failed, stdout what it did.
            let output = if err.iter().any(|b| !b.is_ascii_whitespace()) { tail(&err) } else { tail(&out) };
            match (record.exit_code, status) {
                (Some(0), _) => {
                    record.result = HookResult::Succeeded;
                    record.message = output;
                }
                (Some(code), _) => record.message = join(&format!("exit code {code}"), &output),
                (None, Some(status)) => {
                    record.message = join(status.message.as_deref().unwrap_or("the command did not run"), &output)
                }
                (None, None) => record.message = join("the connection closed without an exit status", &output),
            }
        }
    }
    Ok(Some(record))
}

fn join(what: &str, output: &str) -> String {
    if output.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {output}")
    }
}

/// An exec refused by the API server says why in its Status (a missing `pods/exec` permission
/// reads "forbidden: ... cannot create resource pods/exec").
fn exec_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, containers: &[(&str, bool)]) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"containers": containers.iter().map(|(c, _)| serde_json::json!({"name": c})).collect::<Vec<_>>()},
            "status": {"phase": phase, "containerStatuses": containers.iter().map(|(c, running)| serde_json::json!({
                "name": c, "ready": running, "restartCount": 0, "image": "", "imageID": "",
                "state": if *running { serde_json::json!({"running": {}}) } else { serde_json::json!({"waiting": {}}) },
            })).collect::<Vec<_>>()},
        }))
        .unwrap()
    }

    #[test]
    fn a_hook_runs_in_the_first_running_pod_whose_container_runs() {
        let pods = vec![
            pod("b", "Running", &[("app", true), ("sidecar", true)]),
            pod("a", "Pending", &[("app", false)]),
            pod("c", "Running", &[("app", false), ("sidecar", true)]),
        ];
        let (chosen, container) = hook_pod(&pods, None).unwrap();
        assert_eq!((chosen.name_any().as_str(), container.as_str()), ("b", "app"), "the first container by default");
        let (chosen, _) = hook_pod(&pods[1..], Some("sidecar")).unwrap();
        assert_eq!(chosen.name_any(), "c");
        assert!(hook_pod(&pods[1..], None).is_none(), "c's app container is not running");
        assert!(hook_pod(&pods, Some("db")).is_none());
    }

    #[test]
    fn exit_codes_come_from_the_closing_status() {
        let status = |value: serde_json::Value| serde_json::from_value::<Status>(value).unwrap();
        assert_eq!(exit_code(&status(serde_json::json!({"status": "Success"}))), Some(0));
        let failed = status(serde_json::json!({"status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}));
        assert_eq!(exit_code(&failed), Some(3));
        let not_found = status(serde_json::json!({"status": "Failure", "reason": "InternalError",
            "message": "executable file not found in $PATH"}));
        assert_eq!(exit_code(&not_found), None);
    }

    #[test]
    fn only_the_tail_of_the_output_is_kept() {
        let long = "x".repeat(3000) + "the end\n";
        let kept = tail(long.as_bytes());
        assert!(kept.len() <= OUTPUT_KEPT && kept.ends_with("the end"));
    }
}
