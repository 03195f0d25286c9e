//! kube-sim benchmark (prints figures, asserts nothing): starts kube-sim, opens watchers on PVCs,
//! creates PVCs concurrently over HTTP, then reports create throughput, watch fan-out and the
//! simulator's resident memory.
//!
//!   cargo run --release -p kube-sim --bin kube-sim-bench -- [--pvcs 10000] [--watchers 10] [--concurrency 64]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    pvcs: usize,
    #[arg(long, default_value_t = 10)]
    watchers: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// kube-sim binary (default: next to this executable).
    #[arg(long, env = "KUBE_SIM_BIN")]
    kube_sim: Option<std::path::PathBuf>,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

struct Watcher {
    events: AtomicU64,
    added: AtomicU64,
    first_ms: AtomicU64,
    last_ms: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match args.kube_sim {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("kube-sim"),
    };
    let dir = std::env::temp_dir().join(format!("kube-sim-bench-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = std::process::Command::new(&bin)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", bin.display()))?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/version")).send().await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "kube-sim did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_idle = rss_kib(child.id());
    let path = format!("{base}/api/v1/namespaces/default/persistentvolumeclaims");
    let list: serde_json::Value = client.get(&path).send().await?.json().await?;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_string();

    let t0 = Instant::now();
    let mut watchers = vec![];
    for _ in 0..args.watchers {
        let w = Arc::new(Watcher { events: 0.into(), added: 0.into(), first_ms: 0.into(), last_ms: 0.into() });
        let mut resp = client.get(format!("{path}?watch=true&resourceVersion={rv}&timeoutSeconds=600")).send().await?;
        let w2 = w.clone();
        tokio::spawn(async move {
            let mut partial = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                partial.extend_from_slice(&chunk);
                let mut start = 0;
                while let Some(pos) = partial[start..].iter().position(|b| *b == b'\n') {
                    let line = &partial[start..start + pos + 1];
                    start += pos + 1;
                    let now = t0.elapsed().as_millis() as u64;
                    if w2.events.fetch_add(1, Ordering::Relaxed) == 0 {
                        w2.first_ms.store(now, Ordering::Relaxed);
                    }
                    w2.last_ms.store(now, Ordering::Relaxed);
                    if line.starts_with(b"{\"type\":\"ADDED\"") || line.ends_with(b"\"type\":\"ADDED\"}\n") {
                        w2.added.fetch_add(1, Ordering::Relaxed);
                    }
                }
                partial.drain(..start);
            }
        });
        watchers.push(w);
    }

    let start = Instant::now();
    let errors = AtomicU64::new(0);
    futures::stream::iter(0..args.pvcs)
        .map(|i| {
            let (client, path, errors) = (&client, &path, &errors);
            async move {
                let body = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": format!("bench-{i:05}")},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
                match client.post(path).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 201 => {}
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<()>>()
        .await;
    let create_secs = start.elapsed().as_secs_f64();
    let rss_created = rss_kib(child.id());

    // Wait for the binder: every claim has its PV, and the watchers have been quiet for a second.
    let settle = Instant::now();
    let mut last_total = 0;
    let mut quiet_since = Instant::now();
    loop {
        let total: u64 = watchers.iter().map(|w| w.events.load(Ordering::Relaxed)).sum();
        if total != last_total {
            last_total = total;
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() > Duration::from_secs(1) {
            let pvs: serde_json::Value = client.get(format!("{base}/api/v1/persistentvolumes")).send().await?.json().await?;
            if pvs["items"].as_array().map(|a| a.len()).unwrap_or(0) >= args.pvcs {
                break;
            }
        }
        if settle.elapsed() > Duration::from_secs(300) {
            println!("  (binding did not finish within 300s)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bind_secs = create_secs + settle.elapsed().as_secs_f64();
    let bound: serde_json::Value = client.get(format!("{base}/api/v1/persistentvolumes")).send().await?.json().await?;
    let pvs = bound["items"].as_array().map(|a| a.len()).unwrap_or(0);
    let list_start = Instant::now();
    let all: serde_json::Value = client.get(&path).send().await?.json().await?;
    let list_ms = list_start.elapsed().as_millis();
    let n_listed = all["items"].as_array().map(|a| a.len()).unwrap_or(0);
    let rss_settled = rss_kib(child.id());

    println!("kube-sim benchmark: {} PVCs, {} concurrent creators, {} watchers", args.pvcs, args.concurrency, args.watchers);
    println!(
        "  create: {:.2}s, {:.0} PVCs/s, {} errors",
        create_secs,
        args.pvcs as f64 / create_secs,
        errors.load(Ordering::Relaxed)
    );
    for (i, w) in watchers.iter().enumerate() {
        let (ev, added) = (w.events.load(Ordering::Relaxed), w.added.load(Ordering::Relaxed));
        let span = (w.last_ms.load(Ordering::Relaxed).saturating_sub(w.first_ms.load(Ordering::Relaxed))) as f64 / 1000.0;
        println!("  watcher {i}: {ev} events ({added} ADDED) over {span:.2}s = {:.0} events/s", ev as f64 / span.max(0.001));
    }
    println!("  binding: {pvs} PVs provisioned and bound {bind_secs:.1}s after the first create; listing {n_listed} PVCs took {list_ms} ms");
    println!(
        "  RSS: {} MiB idle, {} MiB after creates, {} MiB settled (PVCs + PVs)",
        rss_idle / 1024,
        rss_created / 1024,
        rss_settled / 1024
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
