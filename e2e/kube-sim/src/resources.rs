//! The kinds the simulator serves: a fixed table of built-in resources plus one entry per served
//! version of every established CRD.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Subresources served besides the main resource: "status", "scale", "log".
    pub subresources: Vec<String>,
    /// The CRD's openAPIV3Schema for this version; None for built-ins.
    pub schema: Option<Value>,
    /// The CRD version's additionalPrinterColumns.
    pub columns: Option<Value>,
    /// Discovery categories (`kubectl get all`).
    pub categories: Vec<String>,
}

impl ResourceType {
    /// Storage key: objects are stored once per group+resource, whatever version they are read at.
    pub fn key(&self) -> String {
        // events.k8s.io Events share core Events' storage (converted on the way in and out).
        if self.group == "events.k8s.io" && self.plural == "events" {
            return "/events".into();
        }
        format!("{}/{}", self.group, self.plural)
    }
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// "pods", "deployments.apps": how the API server names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    pub fn has_sub(&self, s: &str) -> bool {
        self.subresources.iter().any(|x| x == s)
    }
}

/// (group, version, plural, singular, kind, namespaced, short names, subresources)
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
);

const BUILTINS: &[Builtin] = &[
    ("", "v1", "namespaces", "namespace", "Namespace", false, &["ns"], &["status"]),
    ("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true, &["pvc"], &["status"]),
    ("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false, &["pv"], &["status"]),
    ("", "v1", "pods", "pod", "Pod", true, &["po"], &["status", "log", "eviction"]),
    ("", "v1", "secrets", "secret", "Secret", true, &[], &[]),
    ("", "v1", "configmaps", "configmap", "ConfigMap", true, &["cm"], &[]),
    ("", "v1", "events", "event", "Event", true, &["ev"], &[]),
    ("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], &[]),
    ("", "v1", "services", "service", "Service", true, &["svc"], &["status"]),
    ("", "v1", "endpoints", "endpoints", "Endpoints", true, &["ep"], &[]),
    ("", "v1", "nodes", "node", "Node", false, &["no"], &["status"]),
    ("events.k8s.io", "v1", "events", "event", "Event", true, &[], &[]),
    ("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, &[], &[]),
    ("apps", "v1", "deployments", "deployment", "Deployment", true, &["deploy"], &["status", "scale"]),
    ("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, &["rs"], &["status", "scale"]),
    ("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, &["sts"], &["status", "scale"]),
    ("batch", "v1", "jobs", "job", "Job", true, &[], &["status"]),
    ("batch", "v1", "cronjobs", "cronjob", "CronJob", true, &["cj"], &["status"]),
    ("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false, &["sc"], &[]),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["status"],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
        &[],
        &[],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        "ValidatingWebhookConfiguration",
        false,
        &[],
        &[],
    ),
    ("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, &[], &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, &[], &[]),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false,
        &[],
        &[],
    ),
    ("authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview", false, &[], &[]),
    ("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, &["pdb"], &["status"]),
];

pub fn builtins() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|(g, v, p, s, k, ns, short, sub)| ResourceType {
            group: g.to_string(),
            version: v.to_string(),
            plural: p.to_string(),
            singular: s.to_string(),
            kind: k.to_string(),
            namespaced: *ns,
            short_names: short.iter().map(|x| x.to_string()).collect(),
            subresources: sub.iter().map(|x| x.to_string()).collect(),
            schema: None,
            columns: None,
            categories: if ["pods", "services", "deployments", "replicasets", "statefulsets", "jobs", "cronjobs"].contains(p) {
                vec!["all".to_string()]
            } else {
                vec![]
            },
        })
        .collect()
}

/// The resource types a CRD object declares (one per served version).
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let singular = names["singular"].as_str().map(str::to_string).unwrap_or_else(|| kind.to_lowercase());
    let short: Vec<String> = names["shortNames"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = vec![];
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"] == Value::Bool(false) {
            continue;
        }
        let mut subs = vec![];
        if v.pointer("/subresources/status").is_some() {
            subs.push("status".to_string());
        }
        out.push(ResourceType {
            group: group.to_string(),
            version: v["name"].as_str().unwrap_or_default().to_string(),
            plural: plural.to_string(),
            singular: singular.clone(),
            kind: kind.to_string(),
            namespaced,
            short_names: short.clone(),
            subresources: subs,
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            columns: v.get("additionalPrinterColumns").cloned(),
            categories: names["categories"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        });
    }
    out
}

/// Group/version pairs in discovery order, core first.
pub fn group_versions(types: &[ResourceType]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![];
    for t in types {
        let gv = (t.group.clone(), t.version.clone());
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}
