//! Names the build for `promsnap --version`: the commit it was built from and
//! the build date, as `PROMSNAP_COMMIT` and `PROMSNAP_BUILD_DATE`.
//!
//! The commit is the short hash of HEAD when building from a git checkout of
//! promsnap, with `-dirty` when the files that make up the binary (`src/`,
//! `build.rs`, `Cargo.toml`, `Cargo.lock`) differ from it; `unknown` when
//! there is no checkout (a source tarball, a vendored copy) or no `git`.
//! The date is `SOURCE_DATE_EPOCH`'s when that is set (reproducible builds),
//! else today's, in UTC.
//!
//! The script reruns when HEAD moves or those files change, so the commit
//! and the dirty mark stay true without rebuilding more than a change
//! already does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The files whose changes make a build `-dirty`.
const SOURCES: [&str; 4] = ["src", "build.rs", "Cargo.toml", "Cargo.lock"];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = match checkout(&root) {
        Some(()) => commit(&root).unwrap_or_else(|| "unknown".into()),
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=PROMSNAP_COMMIT={commit}");
    println!("cargo:rustc-env=PROMSNAP_BUILD_DATE={}", build_date());
}

/// `git` run in `root`; its trimmed stdout when it succeeds.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether `root` is the top of a git checkout (not a tarball unpacked inside
/// some other repository); if so, asks cargo to rerun when HEAD moves or a
/// source changes.
fn checkout(root: &Path) -> Option<()> {
    let top = PathBuf::from(git(root, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != root.canonicalize().ok()? {
        return None;
    }
    let mut watched = vec![git(root, &["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(root, &["rev-parse", "--git-path", &branch])?);
    }
    watched.push(git(root, &["rev-parse", "--git-path", "packed-refs"])?);
    watched.extend(SOURCES.iter().map(|s| s.to_string()));
    for path in watched {
        let path = root.join(path);
        // A path that does not exist would rerun the script on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(())
}

/// `abc1234` or `abc1234-dirty`.
fn commit(root: &Path) -> Option<String> {
    let hash = git(root, &["rev-parse", "--short=7", "HEAD"])?;
    let mut status = vec!["status", "--porcelain", "--"];
    status.extend(SOURCES);
    let dirty = !git(root, &status)?.is_empty();
    Some(match dirty {
        true => format!("{hash}-dirty"),
        false => hash,
    })
}

/// `YYYY-MM-DD` (UTC) of `SOURCE_DATE_EPOCH`, else of now.
fn build_date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01),
/// after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
