//! The operator's restic processes are bounded, and one listing per repository serves every new
//! PVC's decision (a disaster recovery of thousands of PVCs starts a handful of restic processes,
//! not thousands). A stand-in `restic` records when each process starts and ends.

use datarestor_operator::credentials::ResolvedEnv;
use datarestor_operator::repository::{ListingCache, ResticRunner};
use datarestor_operator::restic::Command;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A directory with a stand-in restic that logs "start"/"end" and lists two hosts' snapshots,
/// grouped as `snapshots --json --group-by host,paths` prints them.
fn stand_in(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("datarestor-concurrency-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("restic");
    std::fs::write(
        &script,
        r#"#!/bin/sh
echo start >>"$STAND_IN_LOG"
sleep 0.3
echo end >>"$STAND_IN_LOG"
if [ -n "$STAND_IN_FAIL" ]; then echo "Fatal: unable to open repository" >&2; exit 1; fi
echo '[{"group_key":{"hostname":"shop-db","paths":["/data"],"tags":null},"snapshots":[{"id":"aa11","short_id":"aa11","time":"2026-01-01T00:00:00Z","hostname":"shop-db","paths":["/data"]}]},{"group_key":{"hostname":"blog-db","paths":["/data"],"tags":null},"snapshots":[{"id":"bb22","short_id":"bb22","time":"2026-01-02T00:00:00Z","hostname":"blog-db","paths":["/data"]}]}]'
"#,
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    let log = dir.join("log");
    let _ = std::fs::remove_file(&log);
    (script, log)
}

fn env(log: &std::path::Path) -> ResolvedEnv {
    ResolvedEnv(BTreeMap::from([("STAND_IN_LOG".to_owned(), log.to_string_lossy().into_owned())]))
}

/// (processes started, most running at once) from the stand-in's log.
fn started_and_peak(log: &std::path::Path) -> (usize, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut running, mut peak, mut started) = (0usize, 0usize, 0usize);
    for line in text.lines() {
        if line == "start" {
            started += 1;
            running += 1;
            peak = peak.max(running);
        } else {
            running -= 1;
        }
    }
    (started, peak)
}

#[tokio::test]
async fn at_most_the_limit_of_restic_processes_run_at_once() {
    let (script, log) = stand_in("limit");
    let runner = ResticRunner::new(script, std::env::temp_dir(), Duration::from_secs(20), 3);
    let env = env(&log);
    let calls = (0..12).map(|_| runner.run("/repo", &env, &Command::CatConfig));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let (started, peak) = started_and_peak(&log);
    assert_eq!(started, 12, "every call ran");
    assert_eq!(peak, 3, "never more than the limit, and the limit used");
    assert_eq!(runner.peak_processes(), 3);
}

#[tokio::test]
async fn one_listing_serves_every_decision_that_waits_for_it() {
    let (script, log) = stand_in("listing");
    let runner = ResticRunner::new(script, std::env::temp_dir(), Duration::from_secs(20), 4);
    let cache = Arc::new(ListingCache::default());
    let env = env(&log);
    let before = jiff::Timestamp::now();
    let decisions = (0..200).map(|i| {
        let (cache, runner, env) = (cache.clone(), runner.clone(), env.clone());
        async move {
            let host = if i % 2 == 0 { "shop-db" } else { "new-pvc" };
            let listing = cache.latest(&runner, "backup-system/backup/s3:x", "s3:x", &env, before).await;
            listing.of_host(host).unwrap().len()
        }
    });
    let found: Vec<usize> = futures::future::join_all(decisions).await;
    assert_eq!(found.iter().filter(|n| **n == 1).count(), 100, "half the PVCs have a snapshot");
    assert_eq!(found.iter().filter(|n| **n == 0).count(), 100, "half have none");
    assert_eq!(started_and_peak(&log).0, 1, "200 decisions, one restic listing");

    // What the last listing found can be read without listing (a restore Task checking the
    // snapshot its decision chose).
    let last = cache.last("backup-system/backup/s3:x").expect("listed");
    assert_eq!(last.of_host("shop-db").unwrap()[0].id, "aa11");
    assert!(cache.last("backup-system/backup/s3:never").is_none());
    assert_eq!(started_and_peak(&log).0, 1);

    // A PVC created after that listing started needs newer knowledge: listed once more.
    let later = jiff::Timestamp::now();
    let again = cache.latest(&runner, "backup-system/backup/s3:x", "s3:x", &env, later).await;
    assert_eq!(again.of_host("blog-db").unwrap()[0].id, "bb22");
    assert_eq!(started_and_peak(&log).0, 2);
    // A failed listing answers those who waited for it, never a later caller (an outage ends).
    let mut failing = env.clone();
    failing.0.insert("STAND_IN_FAIL".to_owned(), "1".to_owned());
    let waiting = (0..5).map(|_| cache.latest(&runner, "backup-system/backup/s3:down", "s3:down", &failing, before));
    assert!(futures::future::join_all(waiting).await.iter().all(|l| l.result.is_err()));
    let recovered = cache.latest(&runner, "backup-system/backup/s3:down", "s3:down", &env, before).await;
    assert!(recovered.result.is_ok(), "listed again once the outage is over");
    assert_eq!(started_and_peak(&log).0, 4, "the failed listing was one process, the next one more");
    // Another repository has its own listing.
    cache.latest(&runner, "backup-system/backup/s3:y", "s3:y", &env, before).await;
    assert_eq!(started_and_peak(&log).0, 5);
}
