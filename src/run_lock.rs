//! One promsnap at a time: a local lock so two cron runs cannot overlap.
//!
//! Repository locks (`repo/lock.rs`) let the backups and prunes of many hosts
//! coordinate through the repository. This lock is simpler and local: an
//! `flock` on a file, taken before anything else happens and held until the
//! process exits. When last night's backup is still running as the next one
//! starts (a slow link, a huge TSDB), the second run exits at once with its
//! own exit code (4) instead of asking Prometheus for another snapshot. The
//! kernel drops an flock when its process dies, however it dies, so a lock
//! file left behind is harmless and never needs removing.
//!
//! Which file, unless `--lock-file` names one: a backup locks the Prometheus
//! it backs up, with `<data-dir>/.promsnap.lock` when its data directory is
//! known; prune and verify lock their repository (never with a file inside
//! it: a dry run must not change a repository). Otherwise the lock is
//! `promsnap-<hash>.lock` in
//! `$XDG_RUNTIME_DIR` or the temp dir, the hash taken over what the run is
//! about (for a backup: the Prometheus URLs or directory, and the
//! repository), so two Prometheus servers on one host, or two HA replicas,
//! never wait for each other, while two runs of the same cron job do.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::error::{ExitStatus, Hinted};

/// The lock file's name in a data directory.
pub const FILE_NAME: &str = ".promsnap.lock";

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock at `path` without waiting; a lock held by another process
/// is an [`ExitStatus::Busy`] error that says who holds it.
pub fn acquire(path: &Path, command: &str) -> Result<RunLock> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path);
    let (mut file, writable) = match opened {
        Ok(f) => (f, true),
        // Someone else's lock file (a shared temp dir): flock works on a
        // read-only descriptor too.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && path.is_file() => {
            (File::open(path).map_err(|e| cannot_open(path, e))?, false)
        }
        Err(e) => return Err(cannot_open(path, e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(busy(path, &mut file)),
        Err(TryLockError::Error(e)) => {
            return Err(anyhow::Error::new(e).context(format!("could not lock {}", path.display())))
        }
    }
    if writable {
        // Who holds it, for the message of the run that finds it taken.
        let holder = format!(
            "pid {} ({command}, since {})\n",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        let noted = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(holder.as_bytes()));
        noted.with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(RunLock {
        _file: file,
        path: path.to_path_buf(),
    })
}

fn cannot_open(path: &Path, e: std::io::Error) -> anyhow::Error {
    anyhow::Error::new(e).context(Hinted::usage(
        format!("could not open the lock file {}", path.display()),
        "pass --lock-file with a path this user can write (or set lock.file in the \
         configuration file)",
    ))
}

fn busy(path: &Path, file: &mut File) -> anyhow::Error {
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    let holder = holder.trim();
    let who = if holder.is_empty() || holder.len() > 200 {
        "another promsnap run".to_string()
    } else {
        format!("another promsnap run, {holder},")
    };
    Hinted {
        message: format!(
            "{who} holds the lock {}: not starting a second one",
            path.display()
        ),
        hint: "this run changed nothing; the running one finishes the job. If runs overlap \
               regularly, space them out (the lock is released when the other run exits, \
               even if it crashes)"
            .into(),
        status: ExitStatus::Busy,
    }
    .into()
}

/// The default lock file (see the module docs): `.promsnap.lock` in `dir`
/// when that directory exists, else a file in the runtime dir named after
/// a hash of `key` (which says what the run is about).
pub fn default_path(dir: Option<&Path>, key: &str) -> PathBuf {
    if let Some(dir) = dir.filter(|d| d.is_dir()) {
        return dir.join(FILE_NAME);
    }
    let hash = Sha256::digest(key.as_bytes());
    let name = format!("promsnap-{}.lock", &hex::encode(hash)[..16]);
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::status_of;

    #[test]
    fn a_second_holder_is_refused_with_exit_4_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = acquire(&path, "backup").unwrap();
        let err = acquire(&path, "prune").unwrap_err();
        assert_eq!(status_of(&err), ExitStatus::Busy);
        assert_eq!(ExitStatus::Busy.code(), 4);
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("(backup, since"), "{text}");
        drop(held);
        acquire(&path, "prune").unwrap();
    }

    #[test]
    fn default_paths() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            default_path(Some(dir.path()), "k"),
            dir.path().join(FILE_NAME)
        );
        let a = default_path(None, "backup http://one s3://b/p");
        let b = default_path(None, "backup http://two s3://b/p");
        assert_ne!(a, b);
        assert_eq!(a, default_path(None, "backup http://one s3://b/p"));
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("promsnap-"));
        // A directory that does not exist here falls back to the hash.
        let missing = dir.path().join("missing");
        assert_eq!(default_path(Some(&missing), "k"), default_path(None, "k"));
    }
}
