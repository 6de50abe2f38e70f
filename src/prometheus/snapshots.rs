//! The snapshots promsnap asks Prometheus for, and what a killed run leaves.
//!
//! A snapshot is a directory of hard links under `<data-dir>/snapshots/`.
//! It costs nothing while the blocks it links exist, but once Prometheus
//! compacts or deletes them, the snapshot alone keeps them on disk. A backup
//! therefore removes its snapshot however it ends (success, error, Ctrl-C):
//! that is [`Taken`]'s `Drop`.
//!
//! A `kill -9`, an OOM kill or a power cut skips `Drop`. So right after
//! Prometheus names the snapshot, promsnap writes a marker next to it,
//! `snapshots/.promsnap-<name>`, holding its process id, and removes the
//! marker last. The next backup of the same data directory (which holds the
//! run lock, so no other promsnap works there) calls [`remove_orphans`]: every
//! marker whose process is gone takes its snapshot with it. Snapshots that
//! someone else took (no marker) are never touched. The one window left is
//! between Prometheus answering and the marker being written: microseconds.
//!
//! Cleanup that fails does not stop a backup: [`remove_orphans`] returns its
//! warnings, and [`Taken`]'s `Drop` hands them to a [`Warn`] callback.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::progress::Warn;

const MARKER_PREFIX: &str = ".promsnap-";

/// A snapshot this run took; removed on drop unless kept.
pub struct Taken {
    dir: PathBuf,
    marker: PathBuf,
    keep: bool,
    warn: Warn,
}

impl Taken {
    /// Records that `data_dir/snapshots/name` belongs to this process.
    /// `warn` hears about a removal that fails when it is dropped.
    pub fn record(data_dir: &Path, name: &str, keep: bool, warn: Warn) -> Result<Taken> {
        if !is_snapshot_name(name) {
            bail!("Prometheus named its snapshot {name:?}, which is not a plain directory name");
        }
        let snapshots = data_dir.join("snapshots");
        let taken = Taken {
            dir: snapshots.join(name),
            marker: snapshots.join(format!("{MARKER_PREFIX}{name}")),
            keep,
            warn,
        };
        if let Err(e) = std::fs::write(&taken.marker, format!("{}\n", std::process::id())) {
            let marker = taken.marker.display().to_string();
            drop(taken); // removes the snapshot, if it can
            return Err(e).with_context(|| {
                format!(
                    "could not write {marker}: promsnap needs write access to Prometheus's \
                     snapshots directory, to remove its snapshot afterwards"
                )
            });
        }
        Ok(taken)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    (self.warn)(&format!(
                        "could not remove the local snapshot {}: {e}; the next backup tries \
                         again, or remove it by hand",
                        self.dir.display()
                    ));
                    return; // keep the marker, so the next run retries
                }
            }
        }
        let _ = std::fs::remove_file(&self.marker);
    }
}

/// What [`remove_orphans`] did.
#[derive(Debug, Default)]
pub struct Orphans {
    /// Names of the snapshots removed.
    pub removed: Vec<String>,
    /// Removals that failed: they must not stop a backup.
    pub warnings: Vec<String>,
}

/// Removes the snapshots of promsnap runs that died before cleaning up.
pub fn remove_orphans(data_dir: &Path) -> Orphans {
    let snapshots = data_dir.join("snapshots");
    let Ok(entries) = std::fs::read_dir(&snapshots) else {
        return Orphans::default(); // no snapshots yet
    };
    let mut removed = Vec::new();
    let mut warnings = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(MARKER_PREFIX))
        else {
            continue;
        };
        if !is_snapshot_name(name) {
            continue; // not a marker of ours
        }
        let marker = entry.path();
        let owner = std::fs::read_to_string(&marker).unwrap_or_default();
        if owner.trim().parse().is_ok_and(is_running_promsnap) {
            continue;
        }
        let dir = snapshots.join(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed.push(name.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warnings.push(format!(
                    "could not remove {}, left by an earlier promsnap run: {e}",
                    dir.display()
                ));
                continue;
            }
        }
        let _ = std::fs::remove_file(&marker);
    }
    removed.sort();
    Orphans { removed, warnings }
}

/// Prometheus names snapshots `<UTC time>-<16 hex digits>`; anything that
/// could leave the snapshots directory (`/`, `..`) or hide (`.x`) is refused.
fn is_snapshot_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether `pid` is a live promsnap process (not this one).
fn is_running_promsnap(pid: u32) -> bool {
    pid != std::process::id()
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim().starts_with("promsnap"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(data: &Path, name: &str) -> PathBuf {
        let dir = data.join("snapshots").join(name);
        std::fs::create_dir_all(dir.join("01KATC00000000000000000000")).unwrap();
        std::fs::write(dir.join("01KATC00000000000000000000/meta.json"), "{}").unwrap();
        dir
    }

    /// A [`Warn`] that collects what it hears.
    fn collect() -> (Warn, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = heard.clone();
        let warn: Warn = std::sync::Arc::new(move |m: &str| sink.lock().unwrap().push(m.into()));
        (warn, heard)
    }

    #[test]
    fn a_dropped_snapshot_is_removed_with_its_marker_and_a_kept_one_stays() {
        let data = tempfile::tempdir().unwrap();
        let (warn, heard) = collect();
        let dir = snapshot(data.path(), "20261125T101010Z-00aa");
        drop(Taken::record(data.path(), "20261125T101010Z-00aa", false, warn.clone()).unwrap());
        assert!(!dir.exists());
        let kept = snapshot(data.path(), "20261125T101011Z-00bb");
        drop(Taken::record(data.path(), "20261125T101011Z-00bb", true, warn).unwrap());
        assert!(heard.lock().unwrap().is_empty());
        assert!(kept.exists());
        let left: Vec<_> = std::fs::read_dir(data.path().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["20261125T101011Z-00bb"], "no marker is left behind");
    }

    #[test]
    fn orphans_of_dead_runs_are_removed_and_nothing_else() {
        let data = tempfile::tempdir().unwrap();
        let snaps = data.path().join("snapshots");
        let orphan = snapshot(data.path(), "20261125T010000Z-dead");
        // A process id that cannot be running: above the kernel's limit.
        std::fs::write(
            snaps.join(".promsnap-20261125T010000Z-dead"),
            "4294967295\n",
        )
        .unwrap();
        // Someone else's snapshot, without a marker.
        let foreign = snapshot(data.path(), "20261125T020000Z-0ther");
        // A marker of a promsnap that still runs (a copy of `sleep` named
        // promsnap-sleep stands in for it).
        let live = snapshot(data.path(), "20261125T030000Z-11fe");
        let fake = data.path().join("promsnap-sleep");
        std::fs::copy("/bin/sleep", &fake).unwrap();
        let mut running = std::process::Command::new(&fake).arg("30").spawn().unwrap();
        let marker = format!("{}\n", running.id());
        std::fs::write(snaps.join(".promsnap-20261125T030000Z-11fe"), marker).unwrap();
        // A marker whose process id now belongs to something else (pid 1).
        let reused = snapshot(data.path(), "20261125T040000Z-1111");
        std::fs::write(snaps.join(".promsnap-20261125T040000Z-1111"), "1\n").unwrap();
        // A marker naming a path outside the snapshots directory.
        std::fs::write(snaps.join(".promsnap-..%2F.."), "4294967295\n").unwrap();

        let orphans = remove_orphans(data.path());
        running.kill().unwrap();
        running.wait().unwrap();
        assert_eq!(
            orphans.removed,
            ["20261125T010000Z-dead", "20261125T040000Z-1111"]
        );
        assert!(orphans.warnings.is_empty());
        assert!(!orphan.exists() && !reused.exists());
        assert!(!snaps.join(".promsnap-20261125T010000Z-dead").exists());
        assert!(foreign.exists(), "a snapshot without a marker is not ours");
        assert!(live.exists(), "a running promsnap's snapshot is left alone");
        assert!(snaps.join(".promsnap-..%2F..").exists());
    }

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "-x", "a b"] {
            assert!(!is_snapshot_name(bad), "{bad:?}");
            let (warn, _) = collect();
            assert!(Taken::record(Path::new("/nonexistent"), bad, false, warn).is_err());
        }
        assert!(is_snapshot_name("20261125T101010Z-2a8c1f0e9b3d4a5f"));
    }
}
