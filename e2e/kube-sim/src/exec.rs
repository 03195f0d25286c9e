//! `pods/exec` over WebSocket (`v4.channel.k8s.io`, as kube-rs and kubectl speak it): the command
//! runs as a local process under bubblewrap with the container's volume mounts and environment,
//! like the pod's own process; stdout and stderr stream on channels 1 and 2, and the closing Status
//! (exit code in `NonZeroExitCode`) on channel 3.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::error::ApiError;
use crate::{util, App};

const PROTOCOL: &str = "v4.channel.k8s.io";

/// The `command` values of an exec query, in order (the query repeats the key).
fn commands(query: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "command")
        .map(|(_, v)| crate::server::percent_decode(v))
        .collect()
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| crate::server::percent_decode(v))
}

/// Whether this request is an exec: `GET .../namespaces/NS/pods/NAME/exec`.
pub fn target(path: &str) -> Option<(String, String)> {
    match path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name, "exec"] => Some((ns.to_string(), name.to_string())),
        _ => None,
    }
}

/// Answers an exec request: errors (no pod, not running, no such container, no command) as the
/// API server gives them, before any upgrade.
pub async fn handle(app: Arc<App>, req: Request, ns: String, name: String) -> Response {
    let query = req.uri().query().unwrap_or("").to_string();
    let fail = |e: ApiError| crate::server::error_response(&e);
    let Some(pod) = app.store.get("/pods", &ns, &name) else {
        return fail(ApiError::new(404, "NotFound", format!("pods \"{name}\" not found")));
    };
    let argv = commands(&query);
    if argv.is_empty() {
        return fail(ApiError::bad_request("you must specify at least 1 command"));
    }
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let container = match query_value(&query, "container") {
        Some(c) => containers.iter().find(|x| x["name"] == c.as_str()).cloned(),
        None => containers.first().cloned(),
    };
    let Some(container) = container else {
        return fail(ApiError::bad_request(format!("container not found in pod {name}")));
    };
    if util::str_at(&pod, "/status/phase") != Some("Running") {
        return fail(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found (pod {name} is not running)"
        )));
    }
    let (mut parts, _) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let env = match crate::controllers::runner::resolve_env(&app, &pod, &container) {
        Ok(env) => env,
        Err(e) => return fail(ApiError::bad_request(e)),
    };
    let mut args = match crate::controllers::runner::sandbox_args(&app, &pod, &container) {
        Ok(args) => args,
        Err(e) => return fail(ApiError::bad_request(e)),
    };
    args.push("--".into());
    args.extend(argv);
    upgrade.protocols([PROTOCOL]).on_upgrade(move |socket| run(socket, args, env))
}

async fn run(mut socket: WebSocket, args: Vec<String>, env: Vec<(String, String)>) {
    let spawned = tokio::process::Command::new("bwrap")
        .args(&args)
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = send_status(&mut socket, &failure("InternalError", &format!("starting the command: {e}"), None)).await;
            return;
        }
    };
    let (mut out, mut err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let (channel, n) = tokio::select! {
            n = out.read(&mut out_buf), if out_open => (1u8, n.unwrap_or(0)),
            n = err.read(&mut err_buf), if err_open => (2u8, n.unwrap_or(0)),
            // The client went away (its timeout): the command is killed with the connection.
            message = socket.recv() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
        };
        if n == 0 {
            if channel == 1 {
                out_open = false
            } else {
                err_open = false
            }
            continue;
        }
        let data = if channel == 1 { &out_buf[..n] } else { &err_buf[..n] };
        let mut frame = Vec::with_capacity(n + 1);
        frame.push(channel);
        frame.extend_from_slice(data);
        if socket.send(Message::Binary(frame.into())).await.is_err() {
            return;
        }
    }
    let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(137);
    let status = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        failure(
            "NonZeroExitCode",
            &format!("command terminated with non-zero exit code: error executing command, exit code {code}"),
            Some(code),
        )
    };
    let _ = send_status(&mut socket, &status).await;
}

fn failure(reason: &str, message: &str, code: Option<i32>) -> Value {
    let mut status = json!({"metadata": {}, "status": "Failure", "reason": reason, "message": message});
    if let Some(code) = code {
        status["details"] = json!({"causes": [{"reason": "ExitCode", "message": code.to_string()}]});
    }
    status
}

async fn send_status(socket: &mut WebSocket, status: &Value) -> Result<(), axum::Error> {
    let mut frame = vec![3u8];
    frame.extend_from_slice(&serde_json::to_vec(status).unwrap_or_default());
    socket.send(Message::Binary(frame.into())).await?;
    socket.send(Message::Close(None)).await
}
