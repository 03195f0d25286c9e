//! kube-rs 5 against kube-sim: a Controller with a finalizer and status patches, a watcher that
//! survives closed watches, raw watches resumed from a resourceVersion, typed error reasons.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_for_async, Sim};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(group = "test.sim", version = "v1", kind = "Thing", namespaced, status = "ThingStatus")]
pub struct ThingSpec {
    value: String,
    #[serde(default)]
    count: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct ThingStatus {
    seen: String,
}

struct Ctx {
    client: Client,
    cleaned: AtomicUsize,
}

const FINALIZER: &str = "test.sim/cleanup";

async fn reconcile(obj: Arc<Thing>, ctx: Arc<Ctx>) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    let api: Api<Thing> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, obj, |ev| async {
        match ev {
            Event::Apply(t) => {
                let status = json!({"apiVersion": "test.sim/v1", "kind": "Thing", "status": {"seen": t.spec.value}});
                api.patch_status(&t.name_any(), &PatchParams::apply("sim-test").force(), &Patch::Apply(status)).await?;
                Ok(Action::await_change())
            }
            Event::Cleanup(_) => {
                ctx.cleaned.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn error_policy(_: Arc<Thing>, _: &kube::runtime::finalizer::Error<kube::Error>, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_with_finalizer_and_status_patches() {
    let sim = Sim::start();
    let client = sim.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Thing::crd()).await.unwrap();
    wait_for_async(10, "CRD established", || async {
        let c = crds.get("things.test.sim").await.ok()?;
        c.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await;
    let ctx = Arc::new(Ctx { client: client.clone(), cleaned: AtomicUsize::new(0) });
    let things: Api<Thing> = Api::namespaced(client.clone(), "default");
    let controller = tokio::spawn(
        Controller::new(things.clone(), watcher::Config::default())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|_| async {}),
    );
    things.create(&PostParams::default(), &Thing::new("a", ThingSpec { value: "x".into(), count: None })).await.unwrap();
    wait_for_async(15, "status.seen = x and the finalizer", || async {
        let t = things.get("a").await.ok()?;
        (t.status.as_ref()?.seen == "x" && t.finalizers().iter().any(|f| f == FINALIZER)).then_some(())
    })
    .await;
    things.patch("a", &PatchParams::default(), &Patch::Merge(json!({"spec": {"value": "y"}}))).await.unwrap();
    wait_for_async(15, "status.seen = y", || async { (things.get("a").await.ok()?.status?.seen == "y").then_some(()) }).await;
    let t = things.get("a").await.unwrap();
    assert_eq!(t.metadata.generation, Some(2), "one spec change, one generation bump");
    things.delete("a", &DeleteParams::default()).await.unwrap();
    wait_for_async(15, "object gone after cleanup", || async { things.get_opt("a").await.unwrap().is_none().then_some(()) })
        .await;
    assert_eq!(ctx.cleaned.load(Ordering::SeqCst), 1);
    controller.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_resumes_from_resource_version_and_errors_carry_reasons() {
    let sim = Sim::start();
    let client = sim.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let rv = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mk = |n: &str| serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": n}, "data": {"k": n}})).unwrap();
    cms.create(&PostParams::default(), &mk("one")).await.unwrap();
    cms.create(&PostParams::default(), &mk("two")).await.unwrap();
    let events: Vec<WatchEvent<ConfigMap>> =
        cms.watch(&WatchParams::default().timeout(2), &rv).await.unwrap().take(2).try_collect().await.unwrap();
    let rvs: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(cm) => cm.resource_version().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // Resuming from the first event's resourceVersion yields only what came after it.
    let events: Vec<WatchEvent<ConfigMap>> =
        cms.watch(&WatchParams::default().timeout(1), &rvs[0]).await.unwrap().try_collect().await.unwrap();
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(cm) => Some(cm.name_any()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["two"]);

    assert!(cms.get_opt("missing").await.unwrap().is_none());
    match cms.create(&PostParams::default(), &mk("one")).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_watcher_recovers_from_closed_watches_and_restarts() {
    let mut sim = Sim::start();
    let client = sim.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(cms, watcher::Config::default()).applied_objects().boxed();
        while let Some(ev) = stream.next().await {
            if let Ok(cm) = ev {
                s2.lock().unwrap().push(cm.name_any());
            }
        }
    });
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mk = |n: &str| serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": n}})).unwrap();
    cms.create(&PostParams::default(), &mk("before")).await.unwrap();
    let has = |n: &'static str| {
        let seen = seen.clone();
        move || {
            let seen = seen.clone();
            async move { seen.lock().unwrap().iter().any(|x| x == n).then_some(()) }
        }
    };
    wait_for_async(10, "watcher sees 'before'", has("before")).await;
    sim.req(reqwest::Method::POST, "/sim/close-watches", None, Some(json!({}))).await;
    cms.create(&PostParams::default(), &mk("after-close")).await.unwrap();
    wait_for_async(10, "watcher sees 'after-close'", has("after-close")).await;
    sim.restart();
    let client = sim.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &mk("after-restart")).await.unwrap();
    wait_for_async(20, "watcher sees 'after-restart'", has("after-restart")).await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn recorder_events_are_visible_as_core_events() {
    use kube::runtime::events::{Event as KEvent, EventType, Recorder, Reporter};
    common::require_tool("kubectl");
    let sim = Sim::start();
    let client = sim.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = cms
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "subject"}})).unwrap())
        .await
        .unwrap();
    let recorder = Recorder::new(client.clone(), Reporter { controller: "sim-test".into(), instance: Some("t-1".into()) });
    let ev = KEvent {
        type_: EventType::Warning,
        reason: "BackupFailed".into(),
        note: Some("S3 unreachable".into()),
        action: "Backup".into(),
        secondary: None,
    };
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    // The same event again becomes a series (a merge patch on the events.k8s.io object).
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::default_namespaced(client);
    let list = core.list(&ListParams::default().fields("involvedObject.name=subject")).await.unwrap();
    assert_eq!(list.items.len(), 1, "{:?}", list.items);
    let e = &list.items[0];
    assert_eq!(
        (e.reason.as_deref(), e.message.as_deref(), e.type_.as_deref()),
        (Some("BackupFailed"), Some("S3 unreachable"), Some("Warning"))
    );
    assert_eq!(e.count, Some(2));
    assert!(e.last_timestamp.is_some());
    let described = sim.k(&["describe", "configmap", "subject"]);
    assert!(described.contains("BackupFailed") && described.contains("S3 unreachable"), "{described}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_watcher_gets_partial_object_metadata() {
    use kube::core::PartialObjectMeta;
    let sim = Sim::start();
    let client = sim.client().await;
    let cms: Api<PartialObjectMeta<ConfigMap>> = Api::default_namespaced(client.clone());
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, Option<String>)>::new()));
    let s2 = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(cms, watcher::Config::default().labels("watched=yes")).applied_objects().boxed();
        while let Some(Ok(m)) = stream.next().await {
            s2.lock().unwrap().push((m.name_any(), m.types.map(|t| t.kind)));
        }
    });
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let mk = |n: &str, l: &str| {
        serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": n, "labels": {"watched": l}}, "data": {"big": "x"}}))
            .unwrap()
    };
    cms.create(&PostParams::default(), &mk("in", "yes")).await.unwrap();
    cms.create(&PostParams::default(), &mk("out", "no")).await.unwrap();
    wait_for_async(10, "metadata watcher sees 'in'", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().iter().any(|(n, _)| n == "in").then_some(()) }
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|(n, _)| n == "in"), "{seen:?}");
    assert_eq!(seen[0].1.as_deref(), Some("PartialObjectMetadata"));
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_list_watcher_gets_initial_events() {
    let sim = Sim::start();
    let client = sim.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mk = |n: &str| serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": n}})).unwrap();
    cms.create(&PostParams::default(), &mk("existing")).await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let api = cms.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default().streaming_lists()).applied_objects().boxed();
        while let Some(Ok(cm)) = stream.next().await {
            s2.lock().unwrap().push(cm.name_any());
        }
    });
    let has = |n: &'static str| {
        let seen = seen.clone();
        move || {
            let seen = seen.clone();
            async move { seen.lock().unwrap().iter().any(|x| x == n).then_some(()) }
        }
    };
    wait_for_async(10, "initial event for 'existing'", has("existing")).await;
    cms.create(&PostParams::default(), &mk("later")).await.unwrap();
    wait_for_async(10, "live event for 'later'", has("later")).await;
    task.abort();
}
