//! Fault injection rules set through `/sim/faults`: fail the next N requests that match a verb and
//! a resource with a given HTTP code.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    /// get, list, watch, create, update, patch, delete, deletecollection, or "*".
    #[serde(default = "any")]
    pub verb: String,
    /// Plural resource name ("persistentvolumeclaims"), optionally "pods/log", or "*".
    #[serde(default = "any")]
    pub resource: String,
    /// Only requests in this namespace, when set.
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default = "default_code")]
    pub code: u16,
    /// How many matching requests fail; 0 means every one until cleared.
    #[serde(default = "one")]
    pub count: u64,
    #[serde(default)]
    pub message: Option<String>,
}

fn any() -> String {
    "*".into()
}
fn default_code() -> u16 {
    500
}
fn one() -> u64 {
    1
}

#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).push(rule);
    }
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The error to answer with, consuming one use of the first matching rule.
    pub fn check(&self, verb: &str, resource: &str, namespace: &str) -> Option<ApiError> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let idx = rules.iter().position(|r| {
            (r.verb == "*" || r.verb == verb)
                && (r.resource == "*" || r.resource == resource)
                && r.namespace.as_deref().is_none_or(|n| n == namespace)
        })?;
        let rule = rules[idx].clone();
        if rule.count == 1 {
            rules.remove(idx);
        } else if rule.count > 1 {
            rules[idx].count -= 1;
        }
        let msg = rule.message.unwrap_or_else(|| format!("injected fault: {verb} {resource}"));
        Some(ApiError::from_code(rule.code, msg))
    }
}
