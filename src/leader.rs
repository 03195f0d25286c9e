//! Leader election with a `coordination.k8s.io` Lease: of several replicas, only the holder runs
//! the controllers; the others serve the restore gate and wait.
//!
//! A Lease counts as expired when its record has not changed for `duration` *by this replica's
//! clock* (the time it last saw a new resourceVersion), so clocks that disagree between nodes do not
//! matter. Every write is a replace with the resourceVersion read, so two replicas never both win.
//! A leader that cannot renew within the renew deadline stops acting (the process exits and is
//! restarted as a standby); on shutdown it gives the Lease up so a standby takes over at once.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica (its pod name).
    pub identity: String,
    /// How long a Lease nobody renews keeps standbys waiting.
    pub duration: Duration,
}

impl LeaseSettings {
    /// How often the leader renews, and standbys look.
    pub fn retry_period(&self) -> Duration {
        self.duration / 5
    }

    /// A leader that has not renewed for this long stops acting, before any standby may take over.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// What a replica does with the Lease it read.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or its holder stopped renewing: take it.
    Take,
    /// This replica holds it: renew it.
    Renew,
    /// Another replica holds it: look again after this long at the latest.
    Wait(Duration),
}

/// `unchanged_for`: how long this replica has seen the same record (resourceVersion).
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, unchanged_for: Duration, default_duration: Duration) -> Decision {
    let holder = spec.and_then(|s| s.holder_identity.as_deref()).unwrap_or_default();
    if holder.is_empty() {
        return Decision::Take;
    }
    if holder == identity {
        return Decision::Renew;
    }
    let duration = spec
        .and_then(|s| s.lease_duration_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .map_or(default_duration, Duration::from_secs);
    match duration.checked_sub(unchanged_for) {
        Some(left) if !left.is_zero() => Decision::Wait(left),
        _ => Decision::Take,
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// The record this replica writes when it takes or renews the Lease.
fn held(previous: Option<&LeaseSpec>, settings: &LeaseSettings) -> LeaseSpec {
    let previous_holder = previous.and_then(|s| s.holder_identity.clone()).unwrap_or_default();
    let renewing = previous_holder == settings.identity;
    let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(settings.duration.as_secs().max(1) as i32),
        acquire_time: if renewing { previous.and_then(|s| s.acquire_time.clone()) } else { Some(now()) },
        renew_time: Some(now()),
        lease_transitions: Some(if renewing || previous_holder.is_empty() { transitions } else { transitions + 1 }),
        ..LeaseSpec::default()
    }
}

/// Holds the Lease once acquired; `keep` renews it until it is lost or released.
#[derive(Clone)]
pub struct Leadership {
    api: Api<Lease>,
    settings: LeaseSettings,
}

/// Waits until this replica holds the Lease.
pub async fn acquire(client: Client, settings: LeaseSettings) -> Leadership {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut seen: Option<(String, Instant)> = None;
    let mut waiting_logged = false;
    loop {
        match try_acquire(&api, &settings, &mut seen).await {
            Ok(None) => {
                tracing::info!(lease = %settings.name, identity = %settings.identity, "became the leader");
                return Leadership { api, settings };
            }
            Ok(Some((holder, wait))) => {
                if !waiting_logged {
                    tracing::info!(lease = %settings.name, %holder, "another replica leads; standing by");
                    waiting_logged = true;
                }
                tokio::time::sleep(wait.min(settings.retry_period())).await;
            }
            Err(error) => {
                tracing::warn!(%error, lease = %settings.name, "could not read or write the leader Lease");
                tokio::time::sleep(settings.retry_period()).await;
            }
        }
    }
}

/// `Ok(None)` once held; `Ok(Some((holder, wait)))` while another replica holds it.
async fn try_acquire(
    api: &Api<Lease>,
    settings: &LeaseSettings,
    seen: &mut Option<(String, Instant)>,
) -> Result<Option<(String, Duration)>, kube::Error> {
    let Some(lease) = api.get_opt(&settings.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta { name: Some(settings.name.clone()), ..ObjectMeta::default() },
            spec: Some(held(None, settings)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Some((String::new(), Duration::ZERO))),
            Err(e) => Err(e),
        };
    };
    let version = lease.metadata.resource_version.clone().unwrap_or_default();
    let since = match seen {
        Some((seen_version, at)) if *seen_version == version => *at,
        _ => {
            let at = Instant::now();
            *seen = Some((version, at));
            at
        }
    };
    match decide(lease.spec.as_ref(), &settings.identity, since.elapsed(), settings.duration) {
        Decision::Wait(wait) => {
            let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
            Ok(Some((holder, wait)))
        }
        Decision::Take | Decision::Renew => {
            let mut taken = lease.clone();
            taken.spec = Some(held(lease.spec.as_ref(), settings));
            match api.replace(&settings.name, &PostParams::default(), &taken).await {
                Ok(_) => Ok(None),
                // Another replica wrote first: read again.
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Some((String::new(), Duration::ZERO))),
                Err(e) => Err(e),
            }
        }
    }
}

impl Leadership {
    /// Renews the Lease every retry period; returns (with the reason) once it is lost: not renewed
    /// within the renew deadline, or taken by another replica. A renewal counts from when its
    /// request was sent, and each attempt is cut off at the deadline, so a request that hangs (a
    /// dead connection) cannot keep a leader acting past it.
    pub async fn keep(&self) -> String {
        let deadline = self.settings.renew_deadline();
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period()).await;
            let left = deadline.saturating_sub(renewed.elapsed());
            if left.is_zero() {
                return format!("the Lease was not renewed for {}s", renewed.elapsed().as_secs());
            }
            let sent = Instant::now();
            match tokio::time::timeout(left, self.renew()).await {
                Ok(Ok(true)) => renewed = sent,
                Ok(Ok(false)) => return "another replica holds the Lease".into(),
                Ok(Err(error)) => tracing::warn!(%error, "could not renew the leader Lease"),
                Err(_) => tracing::warn!("renewing the leader Lease did not finish in time"),
            }
            if renewed.elapsed() >= deadline {
                return format!("the Lease was not renewed for {}s", renewed.elapsed().as_secs());
            }
        }
    }

    /// `Ok(false)` when another replica holds the Lease now. A conflicting write (the record
    /// changed since it was read) is read and tried once more.
    async fn renew(&self) -> Result<bool, kube::Error> {
        let mut conflicts = 0;
        loop {
            let mut lease = self.api.get(&self.settings.name).await?;
            if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(self.settings.identity.as_str()) {
                return Ok(false);
            }
            lease.spec = Some(held(lease.spec.as_ref(), &self.settings));
            match self.api.replace(&self.settings.name, &PostParams::default(), &lease).await {
                Ok(_) => return Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 && conflicts == 0 => conflicts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Gives the Lease up (on shutdown, once the controllers have stopped), so a standby takes
    /// over without waiting for it to expire.
    pub async fn release(&self) {
        let Ok(mut lease) = self.api.get(&self.settings.name).await else { return };
        if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(self.settings.identity.as_str()) {
            return;
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(now());
        }
        match self.api.replace(&self.settings.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.settings.name, "leader Lease released"),
            Err(error) => tracing::warn!(%error, "could not release the leader Lease; a standby takes over once it expires"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, duration: i32) -> LeaseSpec {
        LeaseSpec { holder_identity: Some(holder.into()), lease_duration_seconds: Some(duration), ..LeaseSpec::default() }
    }

    const DEFAULT: Duration = Duration::from_secs(15);

    #[test]
    fn a_lease_is_taken_only_when_free_or_unrenewed_for_its_duration() {
        assert_eq!(decide(None, "a", Duration::ZERO, DEFAULT), Decision::Take);
        assert_eq!(decide(Some(&spec("", 15)), "a", Duration::ZERO, DEFAULT), Decision::Take);
        assert_eq!(decide(Some(&spec("a", 15)), "a", Duration::ZERO, DEFAULT), Decision::Renew);
        assert_eq!(decide(Some(&spec("b", 15)), "a", Duration::from_secs(5), DEFAULT), Decision::Wait(Duration::from_secs(10)));
        assert_eq!(decide(Some(&spec("b", 15)), "a", Duration::from_secs(15), DEFAULT), Decision::Take);
        // A released Lease (duration 1) is taken a second after it was seen.
        assert_eq!(decide(Some(&spec("b", 1)), "a", Duration::from_secs(1), DEFAULT), Decision::Take);
        let no_duration = LeaseSpec { holder_identity: Some("b".into()), ..LeaseSpec::default() };
        assert_eq!(decide(Some(&no_duration), "a", Duration::from_secs(14), DEFAULT), Decision::Wait(Duration::from_secs(1)));
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_keeps_the_acquire_time() {
        let settings =
            LeaseSettings { name: "l".into(), namespace: "n".into(), identity: "a".into(), duration: Duration::from_secs(15) };
        let first = held(None, &settings);
        assert_eq!((first.holder_identity.as_deref(), first.lease_transitions), (Some("a"), Some(0)));
        let renewed = held(Some(&first), &settings);
        assert_eq!(renewed.acquire_time, first.acquire_time);
        assert_eq!(renewed.lease_transitions, Some(0));
        let taken = held(Some(&LeaseSpec { lease_transitions: Some(3), ..spec("b", 15) }), &settings);
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(settings.renew_deadline(), Duration::from_secs(10));
        assert!(settings.renew_deadline() < settings.duration, "a leader stops before a standby may start");
    }
}
