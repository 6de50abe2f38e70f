//! Prometheus HA groups: replicas that scrape the same targets all run the
//! same backup job, and the group stores one backup per period.
//!
//! A replica first takes the group's `Ha` lock (see `lock.rs`: two replicas
//! starting at the same moment cannot both get it), then looks for a
//! snapshot of its group younger than the minimum interval. The second
//! replica to get the lock therefore sees the first one's manifest and
//! skips; a replica that cannot get the lock within the wait skips too,
//! since another is storing the group's backup right now. A replica that is
//! down simply does not take part, so the others still back up.

use std::time::Duration;

use anyhow::Result;

use super::lock::{LockInfo, LockKind, Locked, RepoLock};
use super::manifest::Manifest;
use super::Repository;

pub enum Claim {
    /// This replica stores the group's backup, holding the group lock until
    /// its manifest is written.
    Held(RepoLock),
    /// Another replica has done it, or is doing it: why.
    Skip(String),
}

/// Decides whether this replica backs up `group` now.
pub async fn claim(
    repo: &Repository,
    group: &str,
    min_interval: Duration,
    wait: Duration,
    waiting: &(dyn Fn(&LockInfo) + Sync),
) -> Result<Claim> {
    let lock = match repo
        .lock_group(LockKind::Ha, Some(group), "backup", wait, waiting)
        .await
    {
        Ok(lock) => lock,
        Err(e) => match e.downcast_ref::<Locked>() {
            Some(Locked(holder)) => {
                return Ok(Claim::Skip(format!(
                    "another replica of HA group {group} is storing its backup right now: {}",
                    holder.describe()
                )))
            }
            None => return Err(e),
        },
    };
    if let Some(m) = recent(repo, group, min_interval).await? {
        lock.release().await?;
        return Ok(Claim::Skip(format!(
            "replica {} already stored snapshot {} of HA group {group} at {} (less than {} ago)",
            m.instance,
            m.id,
            m.created.format("%Y-%m-%d %H:%M:%S UTC"),
            crate::duration::Duration(min_interval)
        )));
    }
    Ok(Claim::Held(lock))
}

/// The newest snapshot of `group` younger than `min`. Snapshot ids start
/// with their UTC time, so only recent manifests are read.
async fn recent(repo: &Repository, group: &str, min: Duration) -> Result<Option<Manifest>> {
    let since = chrono::Utc::now() - chrono::Duration::from_std(min)?;
    let mut newest: Option<Manifest> = None;
    let listed = repo.listed().await?;
    for l in super::catalog::of_group(&listed, group) {
        let stamp =
            l.id.get(..16)
                .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%SZ").ok());
        if stamp.is_some_and(|t| t.and_utc() < since - chrono::Duration::seconds(1)) {
            continue;
        }
        // A damaged manifest's group is unknown: it does not count.
        let Ok(m) = repo.read_manifest(l).await? else {
            continue;
        };
        if m.ha_group.as_deref() == Some(group)
            && m.created >= since
            && newest.as_ref().is_none_or(|n| m.created > n.created)
        {
            newest = Some(m);
        }
    }
    Ok(newest)
}
