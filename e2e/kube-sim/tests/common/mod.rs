//! Shared harness: starts the real kube-sim binary on a free loopback port with a temporary state
//! directory, and drives it with kubectl, raw HTTP and kube-rs.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Sim {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub url: String,
    pub kubeconfig: PathBuf,
    extra: Vec<String>,
}

/// Fails the test with a clear message when an external tool the test needs is missing.
pub fn require_tool(tool: &str) {
    let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    assert!(found, "required tool `{tool}` is not installed or not on PATH; this test cannot run without it");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Sim {
    pub fn start() -> Sim {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut sim = Sim {
            child: None,
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
            port,
            url: format!("http://127.0.0.1:{port}"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        sim.spawn();
        sim
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("kube-sim.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(&self.extra)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting kube-sim");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.kubeconfig.exists() {
                return;
            }
            assert!(Instant::now() < deadline, "kube-sim did not start; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kube-sim.log")).unwrap_or_default()
    }

    /// Stops the process (SIGTERM, so it writes its final snapshot) and starts it again on the same
    /// port and state directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        // A private discovery cache: ports are reused across tests and the cache is keyed by them.
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("kube-cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl (is it installed?)");
        {
            use std::io::Write;
            let mut sin = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                sin.write_all(s.as_bytes()).expect("write stdin");
            }
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout, failing the test with stderr if it fails.
    pub fn k(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn apply(&self, yaml: &str) -> String {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], Some(yaml));
        assert!(out.status.success(), "kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get -o json` of one object, or None if it does not exist.
    pub fn get(&self, args: &[&str]) -> Option<Value> {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        let out = self.kubectl(&a);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("NotFound") || err.contains("not found"), "kubectl get {args:?}: {err}");
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("json"))
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
        kube::Client::try_from(cfg).expect("client")
    }

    pub async fn req(&self, method: reqwest::Method, path: &str, ct: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut r = self.http().request(method, format!("{}{}", self.url, path));
        if let Some(b) = body {
            r = r.header("content-type", ct.unwrap_or("application/json")).body(serde_json::to_vec(&b).expect("json"));
        }
        let resp = r.send().await.expect("request");
        let code = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` until it returns Some, or fails the test after `secs` seconds with `what`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub async fn wait_for_async<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
