//! The commands people run by hand (also as the kubectl plugin `kubectl datarestor`): `status`
//! lists every protected PVC from the catalog; `snapshots` shows what one PVC can be restored from
//! (its Catalog); `backup` and `restore` write the request annotations (checked with the same grammar
//! the operator parses) and wait for the operator's answer.

use crate::annotation;
use crate::api::{Catalog, CatalogStatus, ClusterWide, Config, Task};
use crate::catalog::{self, ClusterView, PvcRecord};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::{Api, Client, ResourceExt};
use std::time::Duration;

/// Every protected PVC (in `namespace`, or everywhere), as a table or JSON.
pub async fn status(client: Client, namespace: Option<&str>, cluster_wide: &ClusterWide, json: bool) -> anyhow::Result<String> {
    // Configs anywhere may protect the PVCs asked about (administrators' namespaces); a user who
    // may read Configs only in their namespace sees what that namespace's Configs protect.
    let configs = match Api::<DeserializeGuard<Config>>::all(client.clone()).list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) if e.code == 403 && namespace.is_some() => {
            eprintln!("note: Configs outside {} cannot be read; PVCs they protect are not shown", namespace.unwrap_or_default());
            Api::<DeserializeGuard<Config>>::namespaced(client.clone(), namespace.unwrap_or_default())
                .list(&ListParams::default())
                .await?
        }
        listed => listed?,
    };
    let configs: Vec<&Config> = configs.items.iter().filter_map(|g| g.0.as_ref().ok()).collect();
    let (pvcs, tasks) = match namespace {
        Some(ns) => (
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns).list(&ListParams::default()).await?,
            Api::<DeserializeGuard<Task>>::namespaced(client, ns).list(&ListParams::default()).await?,
        ),
        None => (
            Api::<PersistentVolumeClaim>::all(client.clone()).list(&ListParams::default()).await?,
            Api::<DeserializeGuard<Task>>::all(client).list(&ListParams::default()).await?,
        ),
    };
    let pvcs: Vec<&PersistentVolumeClaim> = pvcs.items.iter().collect();
    let tasks: Vec<&Task> = tasks.items.iter().filter_map(|g| g.0.as_ref().ok()).collect();
    let now = Timestamp::now();
    let records = catalog::records(&ClusterView { configs: &configs, pvcs: &pvcs, tasks: &tasks, cluster_wide, now });
    if json {
        let items: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let mut item = serde_json::to_value(r).expect("a record serializes");
                item["health"] = r.health(now).into();
                item
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&serde_json::json!({ "items": items }))? + "\n");
    }
    Ok(table(&records, now))
}

fn minute(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%MZ").to_string()
}

/// The Task's own size format, without the space, so a table cell is one word.
fn bytes(n: i64) -> String {
    crate::controller::task::human_bytes(n.max(0) as u64).replace(' ', "")
}

/// Every protected PVC, one line each.
pub fn table(records: &[PvcRecord], now: Timestamp) -> String {
    let header = ["NAMESPACE", "PVC", "CONFIG", "LAST BACKUP", "SNAPSHOT", "SIZE", "BACKUPS", "NEXT DUE", "RESTORE", "HEALTH"];
    let dash = || "-".to_owned();
    let rows: Vec<[String; 10]> = records
        .iter()
        .map(|r| {
            let last = r.last_backup.as_ref();
            [
                r.namespace.clone(),
                r.pvc.clone(),
                r.config.clone().unwrap_or_else(dash),
                last.map_or_else(dash, |b| minute(b.time)),
                last.and_then(|b| b.snapshot.clone()).unwrap_or_else(dash),
                last.and_then(|b| b.bytes).map_or_else(dash, bytes),
                r.backups.to_string(),
                r.backup_due.map_or_else(dash, minute),
                r.restore_state.clone().unwrap_or_else(dash),
                r.health(now).to_owned(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "No protected PVCs found.\n".into();
    }
    aligned(header, &rows)
}

/// A header and rows in aligned columns, as kubectl prints them.
fn aligned<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: [&str; N]| {
        let mut text: String = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}   ")).collect();
        text.truncate(text.trim_end().len());
        text + "\n"
    };
    let mut out = line(header);
    for row in rows {
        out += &line(row.each_ref().map(String::as_str));
    }
    out
}

/// A PVC's snapshots per repository, newest first, from its Catalog.
pub async fn snapshots(client: Client, namespace: &str, pvc: &str, json: bool) -> anyhow::Result<String> {
    let Some(catalog) = Api::<Catalog>::namespaced(client, namespace).get_opt(pvc).await? else {
        anyhow::bail!(
            "{namespace}/{pvc} has no Catalog: no backup or restore of it has finished since the operator began keeping them"
        );
    };
    let status = catalog.status.unwrap_or_default();
    if json {
        return Ok(serde_json::to_string_pretty(&status.repositories)? + "\n");
    }
    Ok(snapshot_table(pvc, &status))
}

/// One line per snapshot, then where each repository's list comes from.
pub fn snapshot_table(pvc: &str, status: &CatalogStatus) -> String {
    let header = ["REPOSITORY", "SNAPSHOT", "TIME", "NAME"];
    let rows: Vec<[String; 4]> = status
        .repositories
        .iter()
        .flat_map(|r| {
            r.snapshots.iter().map(|s| {
                [r.repository.clone(), s.short_id.clone(), minute(s.time.0), s.name.clone().unwrap_or_else(|| "-".into())]
            })
        })
        .collect();
    if rows.is_empty() {
        return format!("No snapshots of {pvc} are known.\n");
    }
    let mut out = aligned(header, &rows);
    out += "\n";
    for r in &status.repositories {
        let source = match &r.listed_at {
            Some(at) => format!("listed from the repository at {} (retention), and backups since", minute(at.0)),
            None => "recorded from this operator's backups; not yet listed from the repository".into(),
        };
        let shown =
            if r.snapshots.len() as i64 == r.count { String::new() } else { format!(", newest {} shown", r.snapshots.len()) };
        out += &format!("{}: {} snapshots{shown}, {source}\n", r.repository, r.count);
    }
    out += &format!("Restore one with: kubectl datarestor restore {pvc} SNAPSHOT (or REPOSITORY|SNAPSHOT)\n");
    out
}

/// Which request to write.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    Backup,
    Restore,
}

impl Request {
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Self::Backup => (crate::api::MANUAL_BACKUP_ANNOTATION, crate::controller::task::BACKUP_RESULT_ANNOTATION),
            Self::Restore => (crate::api::MANUAL_RESTORE_ANNOTATION, crate::controller::restore::RESULT_ANNOTATION),
        }
    }
}

/// Writes the request annotation on the PVC (after checking `value` with the operator's grammar)
/// and, with `wait`, returns the operator's answer once the request's Task has ended.
pub async fn request(
    client: Client,
    namespace: &str,
    pvc: &str,
    kind: Request,
    value: &str,
    wait: Option<Duration>,
) -> anyhow::Result<String> {
    annotation::parse(value).map_err(|e| anyhow::anyhow!("{value:?}: {e}"))?;
    let (request_key, result_key) = kind.keys();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client, namespace);
    api.get(pvc).await?; // a missing PVC is said plainly, before anything is written
                         // The previous answer goes, so the next one read is this request's.
    let patch = serde_json::json!({"metadata": {"annotations": {request_key: value, result_key: null}}});
    api.patch(pvc, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let Some(limit) = wait else {
        return Ok(format!("requested: {request_key}={value} on {namespace}/{pvc}\n"));
    };
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let current = api.get(pvc).await?;
        let answer = current.annotations().get(result_key).cloned();
        // Only an ended request's answer is final (an accepted one is answered again when its
        // Task ends).
        if let Some(answer) = answer {
            if answer.starts_with("Completed") {
                return Ok(format!("{answer}\n"));
            }
            if answer.starts_with("Failed") || answer.starts_with("Rejected") {
                anyhow::bail!("{answer}");
            }
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("no answer within {}s; `kubectl get tasks -n {namespace}` shows the request's Task", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Backup;

    #[test]
    fn the_table_aligns_and_says_what_is_missing() {
        let now: Timestamp = "2026-11-29T08:00:00Z".parse().unwrap();
        let record = |pvc: &str, backup: Option<Backup>, due: &str| PvcRecord {
            namespace: "shop".into(),
            pvc: pvc.into(),
            config: Some("backup-system/backup".into()),
            backups: usize::from(backup.is_some()),
            last_backup: backup,
            last_backup_failed: false,
            backup_due: Some(due.parse().unwrap()),
            restore_state: None,
            held_since: None,
            repositories_down: vec![],
        };
        let backup = Backup {
            time: "2026-11-29T02:01:00Z".parse().unwrap(),
            task: "t".into(),
            repository: Some("s3:http://s3/b".into()),
            snapshot: Some("1a2b3c4d".into()),
            bytes: Some(3 * 1024 * 1024 / 2),
        };
        let text = table(
            &[record("data", Some(backup), "2026-11-30T02:00:00Z"), record("logs-long-name", None, "2026-11-29T02:00:00Z")],
            now,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].contains("2026-11-29 02:01Z") && lines[1].contains("1a2b3c4d") && lines[1].contains("1.5MiB"), "{text}");
        assert!(lines[1].ends_with("Healthy"), "{text}");
        assert!(lines[2].ends_with("BackupOverdue"), "never backed up and past its first slot: {text}");
        let column = |line: &str| line.find("backup-system").unwrap();
        assert_eq!(column(lines[1]), column(lines[2]), "columns align:\n{text}");
        assert_eq!(table(&[], now), "No protected PVCs found.\n");
    }

    #[test]
    fn the_snapshot_table_says_where_each_list_comes_from() {
        use crate::api::{CatalogRepository, CatalogSnapshot};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let snapshot = |id: &str, name: Option<&str>| CatalogSnapshot {
            id: format!("{id}ffff"),
            short_id: id.into(),
            time: Time("2026-11-29T02:01:00Z".parse().unwrap()),
            name: name.map(Into::into),
        };
        let status = CatalogStatus {
            repositories: vec![
                CatalogRepository {
                    repository: "s3:http://a/b".into(),
                    count: 3,
                    snapshots: vec![snapshot("1a2b3c4d", Some("nightly")), snapshot("5e6f7a8b", None)],
                    listed_at: Some(Time("2026-11-29T04:00:00Z".parse().unwrap())),
                },
                CatalogRepository {
                    repository: "s3:http://c/d".into(),
                    count: 1,
                    snapshots: vec![snapshot("9c0d1e2f", None)],
                    listed_at: None,
                },
            ],
            ..Default::default()
        };
        let text = snapshot_table("data", &status);
        assert!(text.lines().nth(1).unwrap().contains("1a2b3c4d") && text.lines().nth(1).unwrap().ends_with("nightly"), "{text}");
        assert!(
            text.contains("s3:http://a/b: 3 snapshots, newest 2 shown, listed from the repository at 2026-11-29 04:00Z"),
            "{text}"
        );
        assert!(text.contains("s3:http://c/d: 1 snapshots, recorded from this operator's backups"), "{text}");
        assert_eq!(snapshot_table("data", &CatalogStatus::default()), "No snapshots of data are known.\n");
    }
}
