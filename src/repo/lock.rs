//! Repository locks: backups share the repository, prune has it alone.
//!
//! The danger they prevent: a backup decides to reuse a stored block while a
//! prune, which found no manifest referencing that block, deletes it; the
//! backup then writes a manifest that references a deleted object. So every
//! backup holds a *shared* lock from before it looks at the stored blocks
//! until after its manifest is written, and prune holds an *exclusive* lock
//! while it deletes.
//!
//! Object stores have no atomic "create if absent", so a lock is taken in
//! three steps: write our own lock object, list all lock objects, and if a
//! live lock conflicts with ours, delete ours again and retry later. Why at
//! most one of a conflicting pair proceeds, on a store with read-after-write
//! consistency (S3 since 2020, Garage, a local directory): say backup B and
//! prune P both proceed. B's listing did not show P's lock, so B listed
//! before P wrote; P's listing did not show B's lock, so P listed before B
//! wrote. With each writing before it lists, that is
//! `B.write < B.list < P.write < P.list < B.write`, a contradiction. Both may
//! back off at once; random waits make that rare, and it is never unsafe.
//!
//! Locks must not block cron forever after a crash (a common complaint about
//! restic). A lock records host, pid, command, and an expiry a few minutes
//! ahead; its holder refreshes it well before it expires. Others treat an
//! expired lock, or one from a dead process on their own host, as stale and
//! delete it. A holder whose refreshes failed until its own lease ran out
//! must not act on the repository any more: [`RepoLock::check`] says so, and
//! backup checks before writing its manifest, prune before every deletion.
//! `promsnap unlock` removes stale locks by hand, or all with `--all`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Repository;
use crate::error::Hinted;
use crate::storage::{BadObject, Key, NotFound};

/// How long a lock stays valid without a refresh.
const LEASE: Duration = Duration::from_secs(600);
/// How often the holder refreshes it.
const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// The largest lock object read; real ones are a few hundred bytes.
const MAX_LOCK_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Backups: any number at once, but never during a prune.
    Shared,
    /// Prune: alone.
    Exclusive,
    /// One replica of an HA group deciding whether, and then storing, the
    /// group's backup: conflicts only with the same group's `Ha` locks.
    Ha,
}

/// What a lock object says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub kind: LockKind,
    /// The HA group, for `Ha` locks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub command: String,
    pub host: String,
    pub pid: u32,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

impl LockInfo {
    fn conflicts_with(&self, other: &LockInfo) -> bool {
        use LockKind::*;
        match (self.kind, other.kind) {
            (Ha, Ha) => self.group == other.group,
            (Ha, _) | (_, Ha) => false,
            (Exclusive, _) | (_, Exclusive) => true,
            (Shared, Shared) => false,
        }
    }

    /// Expired, or held by a process of this host that no longer exists.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        if self.expires < now {
            return true;
        }
        self.host == hostname() && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    pub fn describe(&self) -> String {
        format!(
            "{} (pid {}) on {} since {}, lease until {}",
            self.command,
            self.pid,
            self.host,
            self.created.format("%Y-%m-%d %H:%M:%S UTC"),
            self.expires.format("%H:%M:%S UTC")
        )
    }
}

/// The error behind "the repository is locked": who holds it.
#[derive(Debug)]
pub struct Locked(pub LockInfo);

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "held by {}", self.0.describe())
    }
}

impl std::error::Error for Locked {}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn lock_key(id: &str) -> Result<Key> {
    Key::new(format!("locks/{id}.json"))
}

/// A held lock. Refreshed in the background; released by [`RepoLock::release`]
/// or, best effort, when dropped.
pub struct RepoLock {
    repo: Repository,
    key: Key,
    /// Our lease's end as a unix timestamp in ms, advanced by each refresh.
    expires_ms: Arc<AtomicI64>,
    refresher: tokio::task::JoinHandle<()>,
}

impl RepoLock {
    /// Fails when our lease ran out (refreshes failed): the repository may
    /// since have been changed by someone who thought we were gone.
    pub fn check(&self) -> Result<()> {
        let expires = self.expires_ms.load(Ordering::SeqCst);
        if Utc::now().timestamp_millis() >= expires {
            return Err(Hinted::failure(
                "the repository lock expired while this command ran (it could not be refreshed)",
                "nothing more was written; check the connection to the repository and rerun",
            )
            .into());
        }
        Ok(())
    }

    pub async fn release(self) -> Result<()> {
        self.refresher.abort();
        let (repo, key) = (self.repo.clone(), self.key.clone());
        std::mem::forget(self);
        repo.storage().delete(&key).await
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        self.refresher.abort();
        let (storage, key) = (self.repo.storage().clone(), self.key.clone());
        crate::storage::cleanup::spawn(async move {
            let _ = storage.delete(&key).await;
        });
    }
}

/// A lock that `unlock` found.
#[derive(Debug)]
pub struct Unlocked {
    /// Whose lock it is, for the user.
    pub what: String,
    /// Whether it was removed (stale, or `--all`).
    pub removed: bool,
}

impl Repository {
    /// Takes a lock of `kind` for `command`, waiting up to `wait` for
    /// conflicting locks to go away. `waiting` is told once who we wait for.
    pub async fn lock(
        &self,
        kind: LockKind,
        command: &str,
        wait: Duration,
        waiting: &(dyn Fn(&LockInfo) + Sync),
    ) -> Result<RepoLock> {
        self.lock_group(kind, None, command, wait, waiting).await
    }

    /// [`Repository::lock`] for an HA group's `Ha` lock (or any kind with a group).
    pub async fn lock_group(
        &self,
        kind: LockKind,
        group: Option<&str>,
        command: &str,
        wait: Duration,
        waiting: &(dyn Fn(&LockInfo) + Sync),
    ) -> Result<RepoLock> {
        let started = tokio::time::Instant::now();
        let mut told = false;
        let mut pause = Duration::from_millis(100);
        loop {
            let mut info = new_info(kind, command);
            info.group = group.map(str::to_string);
            let key = lock_key(&info.id)?;
            self.write_lock(&key, &info).await?;
            let conflict = self.conflicting(&info).await;
            let conflict = match conflict {
                Ok(c) => c,
                Err(e) => {
                    let _ = self.storage().delete(&key).await;
                    return Err(e);
                }
            };
            let Some(holder) = conflict else {
                return Ok(self.start_refreshing(key, info));
            };
            self.storage().delete(&key).await?;
            if started.elapsed() >= wait {
                // Like the local run lock: another run holds it, this one
                // did nothing (exit 4).
                return Err(Hinted {
                    message: format!(
                        "the repository {} is locked by {}",
                        self.describe(),
                        holder.describe()
                    ),
                    hint: "wait for it to finish (or raise --lock-wait); if that process is \
                           gone, its lock expires by itself, or run `promsnap unlock`"
                        .into(),
                    status: crate::error::ExitStatus::Busy,
                }
                .into());
            }
            if !told {
                waiting(&holder);
                told = true;
            }
            let jitter = Duration::from_millis(rand::random::<u64>() % 500);
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn write_lock(&self, key: &Key, info: &LockInfo) -> Result<()> {
        let json = serde_json::to_vec_pretty(info).expect("locks serialize");
        self.storage()
            .put_bytes(key, Bytes::from(json))
            .await
            .with_context(|| format!("could not write lock {key}"))?;
        Ok(())
    }

    /// Every lock in the repository; `None` for an object that is not a lock
    /// (puts are atomic, so that is damage, and it is removed as stale):
    /// one that does not parse, or is larger than [`MAX_LOCK_BYTES`].
    pub async fn locks(&self) -> Result<Vec<(Key, Option<LockInfo>)>> {
        let objects = self.storage().list("locks/").await?;
        let mut out = Vec::new();
        for o in objects {
            match self.storage().get_bytes(&o.key, MAX_LOCK_BYTES).await {
                Ok(bytes) => out.push((o.key, serde_json::from_slice(&bytes).ok())),
                Err(e) if e.downcast_ref::<NotFound>().is_some() => {} // released meanwhile
                Err(e) if e.downcast_ref::<BadObject>().is_some() => out.push((o.key, None)),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Removes the locks of runs that are gone (expired, or dead processes
    /// on this host), and with `all` every lock: `promsnap unlock`.
    pub async fn unlock(&self, all: bool) -> Result<Vec<Unlocked>> {
        let now = Utc::now();
        let mut out = Vec::new();
        for (key, info) in self.locks().await? {
            let stale = info.as_ref().is_none_or(|i| i.is_stale(now));
            let what = info
                .as_ref()
                .map_or("an unreadable lock".to_string(), LockInfo::describe);
            let removed = stale || all;
            if removed {
                self.storage().delete(&key).await?;
            }
            out.push(Unlocked { what, removed });
        }
        Ok(out)
    }

    /// The first live lock that conflicts with `ours`; deletes stale ones.
    async fn conflicting(&self, ours: &LockInfo) -> Result<Option<LockInfo>> {
        let now = Utc::now();
        for (key, info) in self.locks().await? {
            let Some(info) = info else {
                self.storage().delete(&key).await?;
                continue;
            };
            if info.id == ours.id {
                continue;
            }
            if info.is_stale(now) {
                self.storage().delete(&key).await?;
                continue;
            }
            if info.conflicts_with(ours) {
                return Ok(Some(info));
            }
        }
        Ok(None)
    }

    fn start_refreshing(&self, key: Key, info: LockInfo) -> RepoLock {
        let expires_ms = Arc::new(AtomicI64::new(info.expires.timestamp_millis()));
        let refresher = {
            let (repo, key, expires_ms) = (self.clone(), key.clone(), expires_ms.clone());
            tokio::spawn(async move {
                let mut info = info;
                loop {
                    tokio::time::sleep(REFRESH_EVERY).await;
                    let now = Utc::now();
                    info.expires = now + chrono::Duration::from_std(LEASE).expect("small");
                    if repo.write_lock(&key, &info).await.is_ok() {
                        // The lease counts from before the write, to be safe.
                        let ours = now + chrono::Duration::from_std(LEASE).expect("small");
                        expires_ms.store(ours.timestamp_millis(), Ordering::SeqCst);
                    }
                }
            })
        };
        RepoLock {
            repo: self.clone(),
            key,
            expires_ms,
            refresher,
        }
    }
}

fn new_info(kind: LockKind, command: &str) -> LockInfo {
    let now = Utc::now();
    LockInfo {
        id: format!(
            "{}-{:016x}",
            now.format("%Y%m%dT%H%M%SZ"),
            rand::random::<u64>()
        ),
        kind,
        group: None,
        command: command.to_string(),
        host: hostname(),
        pid: std::process::id(),
        created: now,
        expires: now + chrono::Duration::from_std(LEASE).expect("small"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    fn repo(dir: &std::path::Path) -> Repository {
        Repository::new(Arc::new(LocalStorage::new(dir.to_path_buf())))
    }

    #[tokio::test]
    async fn shared_locks_coexist_and_exclusive_waits_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let r = repo(dir.path());
        let a = r
            .lock(LockKind::Shared, "backup", Duration::ZERO, &|_| {})
            .await
            .unwrap();
        let b = r
            .lock(LockKind::Shared, "backup", Duration::ZERO, &|_| {})
            .await
            .unwrap();
        let told = std::sync::Mutex::new(None);
        let err = r
            .lock(
                LockKind::Exclusive,
                "prune",
                Duration::from_millis(300),
                &|h| *told.lock().unwrap() = Some(h.command.clone()),
            )
            .await
            .err()
            .unwrap();
        assert!(format!("{err}").contains("locked by backup"), "{err}");
        assert_eq!(told.lock().unwrap().as_deref(), Some("backup"));
        a.release().await.unwrap();
        b.release().await.unwrap();
        let p = r
            .lock(LockKind::Exclusive, "prune", Duration::ZERO, &|_| {})
            .await
            .unwrap();
        assert!(r
            .lock(LockKind::Shared, "backup", Duration::ZERO, &|_| {})
            .await
            .is_err());
        p.check().unwrap();
        p.release().await.unwrap();
        assert!(r.locks().await.unwrap().is_empty(), "locks left behind");
    }

    #[tokio::test]
    async fn ha_locks_exclude_only_their_own_group() {
        let dir = tempfile::tempdir().unwrap();
        let r = repo(dir.path());
        let none = &|_: &LockInfo| {};
        let a = r
            .lock_group(LockKind::Ha, Some("eu1"), "backup", Duration::ZERO, none)
            .await
            .unwrap();
        assert!(r
            .lock_group(LockKind::Ha, Some("eu1"), "backup", Duration::ZERO, none)
            .await
            .is_err());
        let b = r
            .lock_group(LockKind::Ha, Some("us1"), "backup", Duration::ZERO, none)
            .await
            .unwrap();
        let p = r
            .lock(LockKind::Exclusive, "prune", Duration::ZERO, none)
            .await
            .unwrap();
        for l in [a, b, p] {
            l.release().await.unwrap();
        }
    }

    #[tokio::test]
    async fn stale_locks_are_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let r = repo(dir.path());
        let mut expired = new_info(LockKind::Exclusive, "prune");
        expired.host = "elsewhere".into();
        expired.expires = Utc::now() - chrono::Duration::seconds(1);
        r.write_lock(&lock_key(&expired.id).unwrap(), &expired)
            .await
            .unwrap();
        let mut dead = new_info(LockKind::Exclusive, "prune");
        dead.pid = u32::MAX - 1; // no such process on this host
        r.write_lock(&lock_key(&dead.id).unwrap(), &dead)
            .await
            .unwrap();
        r.storage()
            .put_bytes(
                &Key::new("locks/garbage.json").unwrap(),
                Bytes::from_static(b"{"),
            )
            .await
            .unwrap();
        let lock = r
            .lock(LockKind::Shared, "backup", Duration::ZERO, &|_| {})
            .await
            .unwrap();
        assert_eq!(
            r.locks().await.unwrap().len(),
            1,
            "stale locks were not removed"
        );
        lock.release().await.unwrap();
    }

    #[test]
    fn a_lapsed_lease_fails_the_check() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let r = repo(dir.path());
            let lock = r
                .lock(LockKind::Shared, "backup", Duration::ZERO, &|_| {})
                .await
                .unwrap();
            lock.expires_ms
                .store(Utc::now().timestamp_millis() - 1, Ordering::SeqCst);
            assert!(lock.check().is_err());
        });
    }
}
