//! The operator's own restic calls against storage that fails in different ways, with real restic:
//! only storage that says "nothing here" may read as "no repository" (hence "no snapshot, release
//! the new PVC empty"); an outage or a refusal must read as something the operator cannot know.

use datarestor_operator::credentials::ResolvedEnv;
use datarestor_operator::repository::ResticRunner;
use datarestor_operator::restic::Failure;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

fn runner(name: &str) -> ResticRunner {
    let cache = std::env::temp_dir().join(format!("datarestor-restic-failures-{name}-{}", std::process::id()));
    ResticRunner::new("restic".into(), cache, Duration::from_secs(20), 4)
}

fn env() -> ResolvedEnv {
    ResolvedEnv(BTreeMap::from([
        ("RESTIC_PASSWORD".to_owned(), "pw".to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
    ]))
}

/// An HTTP server that answers every request with `status` and an S3-style error body.
fn answering(status: &'static str, code: &'static str, message: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 8192];
            let _ = stream.read(&mut buffer);
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>1</RequestId></Error>"
            );
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn only_a_definite_absence_reads_as_no_repository() {
    let missing = std::env::temp_dir().join(format!("datarestor-no-such-repo-{}", std::process::id()));
    let local = runner("local").snapshots(&missing.to_string_lossy(), &env(), None).await.unwrap_err();
    assert_eq!(local.failure, Failure::NoRepository, "{}", local.message);

    let refused = format!("s3:http://127.0.0.1:{}/bucket", closed_port());
    let error = runner("refused").snapshots(&refused, &env(), None).await.unwrap_err();
    assert_eq!(error.failure, Failure::Unreachable, "connection refused: {}", error.message);

    let denied = format!("s3:http://127.0.0.1:{}/bucket", answering("403 Forbidden", "AccessDenied", "Access Denied."));
    let error = runner("denied").snapshots(&denied, &env(), None).await.unwrap_err();
    assert_eq!(error.failure, Failure::Denied, "403: {}", error.message);
    let error = runner("denied-init").open_or_init(&denied, &env()).await.unwrap_err();
    assert_eq!(error.failure, Failure::Denied, "a refusal is never taken for a repository to create: {}", error.message);

    let broken = format!(
        "s3:http://127.0.0.1:{}/bucket",
        answering("500 Internal Server Error", "InternalError", "We encountered an internal error.")
    );
    let error = runner("broken").snapshots(&broken, &env(), None).await.unwrap_err();
    assert_ne!(error.failure, Failure::NoRepository, "500: {}", error.message);

    let absent =
        format!("s3:http://127.0.0.1:{}/bucket", answering("404 Not Found", "NoSuchKey", "The specified key does not exist."));
    let error = runner("absent").snapshots(&absent, &env(), None).await.unwrap_err();
    assert_eq!(error.failure, Failure::NoRepository, "404 NoSuchKey: {}", error.message);
}
