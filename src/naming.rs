//! Kubernetes object names the operator derives: deterministic, valid, and short enough.

/// Longest name that can also serve as a label value (Jobs label their pods with their name).
pub const MAX_NAME_LEN: usize = 63;

/// Joins `parts` with `-` into a valid DNS-1123 label of at most 63 characters. When the joined
/// name is too long it is cut and a hash of the whole is appended, so distinct inputs stay distinct
/// and the same input always gives the same name.
pub fn bounded_name(parts: &[&str]) -> String {
    let joined: String = parts.join("-").to_ascii_lowercase();
    let mut clean: String = joined.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    if clean.len() <= MAX_NAME_LEN && clean == joined {
        return clean.trim_matches('-').to_owned();
    }
    let hash = format!("{:08x}", fnv1a(joined.as_bytes()) as u32);
    clean.truncate(MAX_NAME_LEN - hash.len() - 1);
    format!("{}-{hash}", clean.trim_matches('-'))
}

/// `value` as a label value: unchanged when it fits (63 characters), else cut and hashed like a
/// name. PVC and Config names may be up to 253 characters; label values may not.
pub fn label_value(value: &str) -> String {
    if value.len() <= MAX_NAME_LEN {
        value.to_owned()
    } else {
        bounded_name(&[value])
    }
}

/// A small stable hash (FNV-1a); names must not change between releases or platforms.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The Task for one schedule slot of one PVC and repository. Deterministic, so a repeated
/// reconcile, a retry or a restarted operator finds the Task already there instead of making a
/// second one.
/// `repository_key` tells apart Configs and repositories that back up the same PVC in one slot.
pub fn scheduled_task_name(pvc: &str, repository_key: &str, slot: jiff::Timestamp) -> String {
    let slot = jiff::fmt::strtime::format("%Y%m%d-%H%M", slot).unwrap_or_else(|_| slot.as_second().to_string());
    bounded_name(&["backup", pvc, &slot, repository_key])
}

/// The Task for one annotation request. The PVC's uid and the resourceVersion at which the
/// request was seen identify it: retries before the annotation is removed find the same Task,
/// and the same value written again later is a new request.
pub fn request_task_name(kind: &str, pvc: &str, pvc_uid: &str, resource_version: &str, value: &str) -> String {
    let identity = format!("{pvc_uid}/{resource_version}/{kind}/{value}");
    bounded_name(&[kind, pvc, &format!("{:08x}", fnv1a(identity.as_bytes()) as u32)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_are_deterministic_per_slot_and_request() {
        let slot: jiff::Timestamp = "2026-03-10T02:00:00Z".parse().unwrap();
        assert_eq!(scheduled_task_name("data", "1a2b3c4d", slot), "backup-data-20260310-0200-1a2b3c4d");
        assert_ne!(scheduled_task_name("data", "99999999", slot), scheduled_task_name("data", "1a2b3c4d", slot));
        let a = request_task_name("backup", "data", "uid-1", "41", "pre-upgrade");
        assert_eq!(a, request_task_name("backup", "data", "uid-1", "41", "pre-upgrade"));
        assert_ne!(a, request_task_name("backup", "data", "uid-1", "57", "pre-upgrade"));
        assert_ne!(a, request_task_name("restore", "data", "uid-1", "41", "pre-upgrade"));
        assert!(a.starts_with("backup-data-") && a.len() <= MAX_NAME_LEN);
    }

    #[test]
    fn label_values_fit() {
        assert_eq!(label_value("data-db-0"), "data-db-0");
        let long = format!("{}.v2", "a".repeat(100));
        let value = label_value(&long);
        assert!(value.len() <= MAX_NAME_LEN, "{value}");
        assert_ne!(value, label_value(&format!("{}.v3", "a".repeat(100))));
    }

    #[test]
    fn short_names_are_kept() {
        assert_eq!(bounded_name(&["backup", "data-db-0", "29561042"]), "backup-data-db-0-29561042");
    }

    #[test]
    fn long_or_odd_names_are_cut_and_hashed() {
        let long = "p".repeat(200);
        let a = bounded_name(&["backup", &long, "1"]);
        let b = bounded_name(&["backup", &long, "2"]);
        assert!(a.len() <= MAX_NAME_LEN && b.len() <= MAX_NAME_LEN, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, bounded_name(&["backup", &long, "1"]));
        let odd = bounded_name(&["restore", "My_PVC.v2"]);
        assert!(odd.starts_with("restore-my-pvc-v2-"), "{odd}");
        assert!(odd.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
}
