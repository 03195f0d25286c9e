//! What a restore drill's Job printed, and whether the drill passed: pure, from the Job's output.

use crate::api::DrillReport;

/// Fills `report` from the `datarestor-drill-...` lines of a drill Job's output (see
/// `job::DRILL_SCRIPT`); the other lines are restic's own.
pub fn read(output: &str, report: &mut DrillReport) {
    for line in output.lines() {
        if let Some(json) = line.strip_prefix("datarestor-drill-expected: ") {
            if let Ok(stats) = serde_json::from_str::<serde_json::Value>(json) {
                report.expected_entries = stats["total_file_count"].as_i64();
                report.expected_bytes = stats["total_size"].as_i64();
            }
        } else if let Some(found) = line.strip_prefix("datarestor-drill-restored: ") {
            for pair in found.split_whitespace() {
                match pair.split_once('=') {
                    Some(("entries", n)) => report.restored_entries = n.parse().ok(),
                    Some(("bytes", n)) => report.restored_bytes = n.parse().ok(),
                    _ => {}
                }
            }
        } else if let Some(code) = line.strip_prefix("datarestor-drill-command: exit=") {
            report.command_exit_code = code.trim().parse().ok();
        }
    }
}

/// The drill's verdict: Ok with a summary when the volume holds what the snapshot says and the
/// command (if any) passed; Err with a reason and a message otherwise.
pub fn verdict(report: &DrillReport, snapshot: &str) -> Result<String, (&'static str, String)> {
    let (Some(expected_entries), Some(expected_bytes), Some(entries), Some(bytes)) =
        (report.expected_entries, report.expected_bytes, report.restored_entries, report.restored_bytes)
    else {
        return Err(("DrillIncomplete", "the drill's Job did not report what it restored".into()));
    };
    if (entries, bytes) != (expected_entries, expected_bytes) {
        return Err((
            "DrillMismatch",
            format!(
                "snapshot {snapshot} holds {expected_entries} entries ({expected_bytes} bytes); the restore produced {entries} ({bytes} bytes)"
            ),
        ));
    }
    let found =
        format!("snapshot {snapshot} restored into {}: {entries} entries, {bytes} bytes, as the snapshot holds", report.claim);
    match report.command_exit_code {
        Some(0) => Ok(format!("{found}; the drill's command passed")),
        Some(code) => Err(("DrillCommandFailed", format!("{found}; the drill's command exited {code}"))),
        None => Ok(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_passes_only_when_the_volume_holds_the_snapshot_and_the_command_passes() {
        let output = "restoring <Snapshot 1a2b3c4d of [/data]> to /\n\
            datarestor-drill-expected: {\"total_size\":4096,\"total_file_count\":5,\"snapshots_count\":1}\n\
            datarestor-drill-restored: entries=5 bytes=4096\n\
            datarestor-drill-command: exit=0\n";
        let mut report = DrillReport { claim: "drill-x".into(), ..Default::default() };
        read(output, &mut report);
        assert_eq!((report.expected_entries, report.restored_bytes, report.command_exit_code), (Some(5), Some(4096), Some(0)));
        assert!(verdict(&report, "1a2b3c4d").unwrap().ends_with("the drill's command passed"));

        report.command_exit_code = Some(3);
        assert_eq!(verdict(&report, "1a2b3c4d").unwrap_err().0, "DrillCommandFailed");
        report.command_exit_code = None;
        report.restored_bytes = Some(4000);
        let (reason, message) = verdict(&report, "1a2b3c4d").unwrap_err();
        assert_eq!(reason, "DrillMismatch");
        assert!(message.contains("holds 5 entries (4096 bytes); the restore produced 5 (4000 bytes)"), "{message}");
        let mut empty = DrillReport::default();
        read("restic said nothing useful\n", &mut empty);
        assert_eq!(verdict(&empty, "x").unwrap_err().0, "DrillIncomplete");
    }
}
