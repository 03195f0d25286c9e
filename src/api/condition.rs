//! Kubernetes-style status conditions, kept as a list keyed by `type`.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The three values a condition's `status` may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            Self::True
        } else {
            Self::False
        }
    }
}

/// Sets (or adds) the condition of `type_`. `lastTransitionTime` only moves when the status
/// changes, so watchers can tell how long a state has held.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Timestamp,
) {
    let message = message.into();
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if existing.status != status.as_str() {
            existing.last_transition_time = Time(now);
        }
        existing.status = status.as_str().to_owned();
        existing.reason = reason.to_owned();
        existing.message = message;
        existing.observed_generation = observed_generation;
        return;
    }
    conditions.push(Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation,
        last_transition_time: Time(now),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let t2: Timestamp = "2026-01-01T02:00:00Z".parse().unwrap();
        let mut conditions = Vec::new();
        set_condition(&mut conditions, "Ready", ConditionStatus::True, "Ok", "fine", Some(1), t0);
        set_condition(&mut conditions, "Ready", ConditionStatus::True, "Ok", "still fine", Some(2), t1);
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, Time(t0));
        assert_eq!(conditions[0].message, "still fine");
        assert_eq!(conditions[0].observed_generation, Some(2));
        set_condition(&mut conditions, "Ready", ConditionStatus::False, "Down", "gone", Some(2), t2);
        assert_eq!(conditions[0].last_transition_time, Time(t2));
        assert_eq!(conditions[0].status, "False");
    }
}
