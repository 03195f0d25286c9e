//! Choosing the snapshot a restore uses: by host, then by backup name, snapshot id or id prefix,
//! newest first, across repositories in priority order.

use crate::annotation::SnapshotRef;
use crate::api::DATA_PATH;
use crate::restic::Snapshot;

/// The result of looking for a snapshot across repositories.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// Found in this repository.
    Snapshot { repository: String, snapshot: Snapshot },
    /// Every repository answered and none has a matching snapshot.
    Nowhere { searched: Vec<String> },
    /// No repository that answered has one, and some could not be asked: the answer is unknown.
    Unknown { unreachable: Vec<(String, String)> },
    /// The request matches several snapshots by id prefix.
    Ambiguous { repository: String, ids: Vec<String> },
}

/// The snapshot of `host` that `wanted` names in one repository's listing.
pub fn select<'a>(snapshots: &'a [Snapshot], host: &str, wanted: &SnapshotRef) -> Result<Option<&'a Snapshot>, Vec<String>> {
    let mut of_host: Vec<&Snapshot> =
        snapshots.iter().filter(|s| s.hostname == host && s.paths.iter().any(|p| p == DATA_PATH)).collect();
    // Newest first; restic's RFC 3339 times carry offsets, so compare as instants.
    of_host.sort_by_key(|s| std::cmp::Reverse(s.taken_at()));
    let name = match wanted {
        SnapshotRef::Latest => return Ok(of_host.first().copied()),
        SnapshotRef::Named(name) => name,
    };
    if let Some(by_name) = of_host.iter().find(|s| s.name() == Some(name.as_str())) {
        return Ok(Some(by_name));
    }
    let by_id: Vec<&Snapshot> = of_host.iter().copied().filter(|s| s.id.starts_with(name.as_str())).collect();
    match by_id.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(many.iter().map(|s| s.short_id.clone()).collect()),
    }
}

/// Each repository's listing (or why it could not be listed), in priority order.
pub type Listings = Vec<(String, Result<Vec<Snapshot>, String>)>;

/// The listings as they were at `at`: snapshots taken later are left out, so "the newest" asked
/// for at `at` stays the snapshot it was then, whatever ran in between.
pub fn as_of(listings: Listings, at: jiff::Timestamp) -> Listings {
    listings
        .into_iter()
        .map(|(repository, listing)| {
            let kept = listing.map(|snapshots| snapshots.into_iter().filter(|s| s.taken_at().is_none_or(|t| t <= at)).collect());
            (repository, kept)
        })
        .collect()
}

/// Looks through repositories in priority order (each with its listing of `host`, or why it could
/// not be listed) and stops at the first that has the snapshot.
pub fn find(listings: Listings, host: &str, wanted: &SnapshotRef) -> Found {
    let mut searched = Vec::new();
    let mut unreachable = Vec::new();
    for (repository, listing) in listings {
        match listing {
            Err(error) => unreachable.push((repository, error)),
            Ok(snapshots) => match select(&snapshots, host, wanted) {
                Ok(Some(snapshot)) => return Found::Snapshot { repository, snapshot: snapshot.clone() },
                Ok(None) => searched.push(repository),
                Err(ids) => return Found::Ambiguous { repository, ids },
            },
        }
    }
    if unreachable.is_empty() {
        Found::Nowhere { searched }
    } else {
        Found::Unknown { unreachable }
    }
}

/// Like `find`, but a repository in `avoid` (a previous attempt failed there) is used only when no
/// other repository has the snapshot: a retry tries the next copy before the same one again.
pub fn find_avoiding(listings: Listings, host: &str, wanted: &SnapshotRef, avoid: &[String]) -> Found {
    if !avoid.is_empty() {
        let others: Listings = listings.iter().filter(|(r, _)| !avoid.contains(r)).cloned().collect();
        if let found @ Found::Snapshot { .. } = find(others, host, wanted) {
            return found;
        }
    }
    find(listings, host, wanted)
}

/// How long to wait before restore attempt `attempt + 1` after `attempt` failed: `base` doubled
/// each time, at most `cap`.
pub fn backoff(attempt: u32, base: std::time::Duration, cap: std::time::Duration) -> std::time::Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(id: &str, host: &str, time: &str, name: Option<&str>) -> Snapshot {
        Snapshot {
            id: id.into(),
            short_id: id[..8.min(id.len())].into(),
            time: time.into(),
            hostname: host.into(),
            paths: vec!["/data".into()],
            tags: name.map(|n| vec![format!("name={n}")]).unwrap_or_default(),
        }
    }

    fn listing() -> Vec<Snapshot> {
        vec![
            snapshot("aaaa1111", "shop-data", "2026-03-10T02:00:00+01:00", Some("nightly")),
            snapshot("bbbb2222", "shop-data", "2026-03-10T03:30:00+02:00", Some("pre-upgrade")),
            snapshot("cccc3333", "shop-data", "2026-03-10T00:30:00Z", Some("nightly")),
            snapshot("aaab4444", "shop-data", "2026-03-09T00:00:00Z", None),
            snapshot("dddd5555", "shop-other", "2026-03-11T00:00:00Z", Some("nightly")),
        ]
    }

    fn named(s: &str) -> SnapshotRef {
        SnapshotRef::Named(s.into())
    }

    #[test]
    fn latest_is_the_newest_instant_of_the_host() {
        // 03:30+02:00 (01:30Z) beats 02:00+01:00 (01:00Z) and 00:30Z, whatever the listing order.
        let snapshots = listing();
        assert_eq!(select(&snapshots, "shop-data", &SnapshotRef::Latest).unwrap().unwrap().id, "bbbb2222");
        assert_eq!(select(&snapshots, "shop-other", &SnapshotRef::Latest).unwrap().unwrap().id, "dddd5555");
        assert_eq!(select(&snapshots, "nobody-here", &SnapshotRef::Latest).unwrap(), None);
    }

    #[test]
    fn names_then_ids_then_prefixes() {
        let snapshots = listing();
        assert_eq!(select(&snapshots, "shop-data", &named("nightly")).unwrap().unwrap().id, "aaaa1111");
        assert_eq!(select(&snapshots, "shop-data", &named("pre-upgrade")).unwrap().unwrap().id, "bbbb2222");
        assert_eq!(select(&snapshots, "shop-data", &named("cccc")).unwrap().unwrap().id, "cccc3333");
        assert_eq!(select(&snapshots, "shop-data", &named("aaab4444")).unwrap().unwrap().id, "aaab4444");
        assert_eq!(select(&snapshots, "shop-data", &named("aaa")).unwrap_err(), ["aaaa1111", "aaab4444"]);
        assert_eq!(select(&snapshots, "shop-data", &named("dddd")).unwrap(), None, "ids of other hosts do not match");
        assert_eq!(select(&snapshots, "shop-data", &named("missing")).unwrap(), None);
    }

    #[test]
    fn latest_as_of_the_request_ignores_later_backups() {
        let at: jiff::Timestamp = "2026-03-10T01:00:00Z".parse().unwrap();
        let listings = vec![("s3:one".to_owned(), Ok(listing())), ("s3:two".to_owned(), Err("down".to_owned()))];
        let then = as_of(listings, at);
        // bbbb2222 (01:30Z) was taken after the request; aaaa1111 (01:00Z exactly) was the newest.
        assert!(
            matches!(find(then.clone(), "shop-data", &SnapshotRef::Latest), Found::Snapshot { ref snapshot, .. } if snapshot.id == "aaaa1111")
        );
        assert_eq!(then[1].1, Err("down".to_owned()), "an unreachable repository stays unreachable");
        let before_any = as_of(vec![("s3:one".to_owned(), Ok(listing()))], "2026-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(find(before_any, "shop-data", &SnapshotRef::Latest), Found::Nowhere { searched: vec!["s3:one".into()] });
    }

    #[test]
    fn a_retry_tries_the_next_copy_first() {
        let both = || vec![("s3:one".to_owned(), Ok(listing())), ("s3:two".to_owned(), Ok(listing()))];
        let wanted = SnapshotRef::Latest;
        let first = find_avoiding(both(), "shop-data", &wanted, &[]);
        assert!(matches!(first, Found::Snapshot { ref repository, .. } if repository == "s3:one"));
        let second = find_avoiding(both(), "shop-data", &wanted, &["s3:one".to_owned()]);
        assert!(matches!(second, Found::Snapshot { ref repository, .. } if repository == "s3:two"));
        // Only the failed copy exists: it is tried again rather than giving up.
        let only = vec![("s3:one".to_owned(), Ok(listing())), ("s3:two".to_owned(), Ok(vec![]))];
        let again = find_avoiding(only, "shop-data", &wanted, &["s3:one".to_owned()]);
        assert!(matches!(again, Found::Snapshot { ref repository, .. } if repository == "s3:one"));
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        use std::time::Duration;
        let (base, cap) = (Duration::from_secs(10), Duration::from_secs(600));
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n, base, cap).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 600, 600]);
        assert_eq!(backoff(1000, base, cap), cap);
    }

    #[test]
    fn repositories_in_priority_order_with_failover() {
        let wanted = SnapshotRef::Latest;
        let found = find(vec![("s3:one".into(), Ok(vec![])), ("s3:two".into(), Ok(listing()))], "shop-other", &wanted);
        assert!(matches!(found, Found::Snapshot { ref repository, .. } if repository == "s3:two"));

        let found = find(
            vec![("s3:one".into(), Err("connection refused".into())), ("s3:two".into(), Ok(listing()))],
            "shop-other",
            &wanted,
        );
        assert!(
            matches!(found, Found::Snapshot { ref repository, .. } if repository == "s3:two"),
            "a down repository is skipped"
        );

        let found = find(vec![("s3:one".into(), Ok(vec![])), ("s3:two".into(), Ok(vec![]))], "shop-data", &wanted);
        assert_eq!(found, Found::Nowhere { searched: vec!["s3:one".into(), "s3:two".into()] });

        let found = find(vec![("s3:one".into(), Err("down".into())), ("s3:two".into(), Ok(vec![]))], "shop-data", &wanted);
        assert_eq!(found, Found::Unknown { unreachable: vec![("s3:one".into(), "down".into())] }, "fail closed");
    }
}
