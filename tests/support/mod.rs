//! Test harness for the end-to-end tests: real Prometheus, real Garage (S3),
//! the real `promsnap` binary and the TSDB fixtures in `fixtures/data`.
//!
//! Everything here is blocking on purpose: tests drive a binary and external
//! servers, so plain `std::process` reads best. The few HTTP calls run on a
//! throwaway current-thread tokio runtime, which means these helpers must not
//! be called from inside an async test (`#[tokio::test]`).
//!
//! Policy: a missing Prometheus or Garage binary fails the test with a hint.
//! Never skip silently: a green run must mean the tests really ran.
//!
//! Every helper that more than one test module needs lives here (running
//! the binary is in `cmd`): test modules import from `support` only, never
//! from each other.

// Each test module uses a different subset of the harness.
#![allow(dead_code)]

mod cmd;
pub mod faultproxy;
mod garage;
mod prometheus;
mod pushgateway;
pub mod sets;

pub use cmd::{bare, finish, Run, Target};
pub use faultproxy::{FaultProxy, Faults};
pub use garage::{garage, Garage, OwnGarage};
pub use prometheus::{promtool, server, Prometheus, StartOptions};
pub use pushgateway::Pushgateway;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// First sample of the fixture data: 2026-01-01T00:00:00Z, in unix seconds.
pub const FIXTURE_START: i64 = 1_767_225_600;
/// Last sample of the fixture data: 2026-01-01T05:59:45Z (15 s interval).
pub const FIXTURE_END: i64 = 1_767_247_185;
/// A timestamp inside the middle block (2026-01-01T03:00:00Z).
pub const FIXTURE_MID: i64 = 1_767_236_400;
/// Number of series in every fixture block (and in the whole data set).
pub const FIXTURE_SERIES: usize = 38;
/// Number of 2h blocks in `fixtures/data`.
pub const FIXTURE_BLOCKS: usize = 3;

/// Finds `name` on `PATH` or in `~/.cargo/bin` (where `cargo install` puts
/// Garage), or fails the test with the way to install it.
pub fn require_tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    // Python tools (kubernetes-validate) live in the venv install-deps.sh makes.
    match std::env::var_os("PROMSNAP_VENV") {
        Some(venv) => dirs.push(Path::new(&venv).join("bin")),
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                dirs.push(Path::new(&home).join(".cache/promsnap/venv/bin"));
            }
        }
    }
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "required tool `{name}` was not found on PATH or in ~/.cargo/bin.\n\
                 The end-to-end tests need real Prometheus and Garage binaries; \
                 install them with `scripts/install-deps.sh` (Debian packages \
                 `prometheus` and `prometheus-pushgateway`, `cargo install garage --locked`)."
            )
        })
}

/// A loopback port that was free a moment ago. Another process may grab it
/// before the caller binds it; `Prometheus::start` retries for that reason.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("could not bind an ephemeral port on 127.0.0.1")
        .port()
}

/// `fixtures/` in the source tree.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every blob reference of the recipe `key` (a local repository): its
/// small files', its index's and its leaves' blobs.
pub fn blob_refs_of_recipe(repo: &Path, key: &str) -> Vec<serde_json::Value> {
    let recipe: serde_json::Value =
        serde_json::from_slice(&fs::read(repo.join(key)).unwrap()).unwrap();
    let leaves = recipe["chunks"]["leaves"].as_array().unwrap();
    let lists = recipe["small"]
        .as_object()
        .unwrap()
        .values()
        .chain([&recipe["index"]])
        .chain(leaves.iter().map(|l| &l["blobs"]));
    lists
        .flat_map(|list| list.as_array().unwrap().iter().cloned())
        .collect()
}

/// The packs the recipe `key` (a local repository) references.
pub fn packs_of_recipe(repo: &Path, key: &str) -> Vec<String> {
    // A recipe's packs are in the data directory its key names.
    let dir = match key.split('/').collect::<Vec<_>>().as_slice() {
        ["recipes", g, _, _] => format!("packs/{g}/"),
        _ => "packs/".to_string(),
    };
    let mut packs: Vec<String> = blob_refs_of_recipe(repo, key)
        .iter()
        .map(|b| {
            let p = b["pack"].as_str().unwrap();
            format!("{dir}{}/{p}", &p[..2])
        })
        .collect();
    packs.sort();
    packs.dedup();
    packs
}

/// A data directory `work/name` holding the fixture blocks with these
/// indexes (of [`fixture_blocks`]).
pub fn data_with(work: &Path, name: &str, blocks: &[usize]) -> PathBuf {
    let dir = work.join(name);
    fs::create_dir_all(&dir).unwrap();
    let all = fixture_blocks();
    for &i in blocks {
        copy_dir(&all[i], &dir.join(all[i].file_name().unwrap()));
    }
    dir
}

/// The block directories of `fixtures/data`, sorted by ULID (= by time here).
pub fn fixture_blocks() -> Vec<PathBuf> {
    let data = fixtures_dir().join("data");
    let mut blocks: Vec<PathBuf> = fs::read_dir(&data)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", data.display()))
        .map(|entry| entry.expect("readdir").path())
        .filter(|p| p.is_dir() && p.file_name().and_then(|n| n.to_str()).is_some_and(is_ulid))
        .collect();
    blocks.sort();
    assert_eq!(
        blocks.len(),
        FIXTURE_BLOCKS,
        "fixtures/data should hold {FIXTURE_BLOCKS} blocks; run fixtures/regenerate.sh"
    );
    blocks
}

/// The fixture block a backup with `--concurrency 1` packs last: work runs
/// largest block first, so it is the one with the fewest bytes (ties keep
/// ULID order).
pub fn fixture_block_packed_last() -> PathBuf {
    // `min_by_key` keeps the first of equal minima: reversed, the last.
    fixture_blocks()
        .into_iter()
        .rev()
        .min_by_key(|b| dir_size(b))
        .unwrap()
}

/// Bytes in the files below `dir`; 0 while it does not exist.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The manifest block a restore with `--concurrency 1` unpacks last: the
/// one with the smallest archive (ties keep manifest order).
pub fn block_restored_last(manifest: &serde_json::Value) -> &serde_json::Value {
    let blocks = manifest["blocks"].as_array().unwrap();
    blocks
        .iter()
        .rev()
        .min_by_key(|b| {
            // What the restore orders by: the block's stored bytes (format
            // 2's recipes record them), else its archive's size.
            b["bytes_stored"]
                .as_u64()
                .unwrap_or_else(|| b["object"]["size"].as_u64().unwrap())
        })
        .unwrap()
}

/// Copies the fixture blocks into `dst` (created if needed), as a fresh
/// Prometheus data directory.
pub fn fixture_data_dir(dst: &Path) {
    for block in fixture_blocks() {
        copy_dir(&block, &dst.join(block.file_name().unwrap()));
    }
}

/// Adds a chunk segment of `mib` MiB of random bytes (which zstd cannot
/// shrink) to every block in `data`.
pub fn add_random_chunks(data: &Path, mib: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for entry in fs::read_dir(data).unwrap() {
        let block = entry.unwrap().path();
        if !block.join("meta.json").is_file() {
            continue;
        }
        let mut bytes = vec![0u8; mib << 20];
        rng.fill_bytes(&mut bytes);
        fs::write(block.join("chunks/000002"), bytes).unwrap();
    }
}

/// Whether `name` is a ULID the way Prometheus parses block dirs: 26 chars of
/// Crockford base32.
pub fn is_ulid(name: &str) -> bool {
    name.len() == 26 && name.parse::<ulid::Ulid>().is_ok()
}

/// Recursive copy of regular files and directories (fixtures have no links).
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("readdir {}: {e}", src.display())) {
        let entry = entry.expect("readdir entry");
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&from, &to);
        } else {
            fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
        }
    }
}

/// The `promsnap` binary under test, with no `PROMSNAP_*` or `AWS_*`
/// variables inherited: a developer's own S3 settings must never leak in.
/// Nor `COMPLETE` and `_CLAP_*`, which would turn a run into a shell
/// completion. PATH starts with the chosen Prometheus's promtool directory.
pub fn promsnap() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_promsnap"));
    cmd.env("PATH", prometheus::server_path());
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("PROMSNAP_")
            || key_str.starts_with("AWS_")
            || key_str.starts_with("_CLAP_")
            || key_str == "COMPLETE"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Every manifest file of a local repository (`snapshots/<group>/<id>.json`,
/// and `snapshots/<id>.json` of earlier versions, not the sentinel), in id
/// order: oldest first.
pub fn manifest_paths(repo: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(repo.join("snapshots")) else {
        return found;
    };
    for e in entries {
        let path = e.expect("readable").path();
        match path.is_dir() {
            true => found.extend(
                fs::read_dir(&path)
                    .expect("a group directory")
                    .map(|e| e.expect("readable").path()),
            ),
            false if path.file_name().unwrap() != "zzzzzzzz-repository-format-2.json" => {
                found.push(path)
            }
            false => {}
        }
    }
    found.sort_by_key(|p| p.file_name().unwrap().to_owned());
    found
}

/// The manifest file of snapshot `id` in a local repository.
pub fn manifest_path(repo: &Path, id: &str) -> PathBuf {
    let name = format!("{id}.json");
    manifest_paths(repo)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("no manifest of {id} in {}", repo.display()))
}

/// The key (path below the repository) of a manifest file.
pub fn manifest_key(repo: &Path, path: &Path) -> String {
    path.strip_prefix(repo)
        .expect("a manifest of this repository")
        .to_str()
        .unwrap()
        .to_string()
}

/// The only manifest in a local repository: its path and its JSON (tests
/// that tamper with a repository edit it and write it back).
pub fn only_manifest(repo: &Path) -> (PathBuf, serde_json::Value) {
    let paths = manifest_paths(repo);
    assert!(
        paths.len() == 1,
        "{} manifests in {}, not one",
        paths.len(),
        repo.display()
    );
    let path = paths.into_iter().next().unwrap();
    let json =
        serde_json::from_slice(&fs::read(&path).expect("read manifest")).expect("manifest JSON");
    (path, json)
}

/// Waits until `done` holds, or fails the test naming `what` once `timeout`
/// has passed. Tests wait for a state they can observe (a file, an upload,
/// an answer), never for a fixed time.
pub fn wait_until(timeout: Duration, what: &str, done: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, done),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// The polling behind [`wait_until`], for callers that add their own
/// diagnostics: whether `done` held before `timeout` passed. Polls every
/// 10 ms at first and backs off to every 500 ms, so that a state reached
/// quickly is seen at once and a slow check (a query) is not repeated in a
/// tight loop.
pub fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Last `lines` lines of a (log) file, for panic messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("<cannot read log: {e}>"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// GET `url`; returns (status, body). Errors only when no HTTP answer came.
pub fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    http(reqwest::Method::GET, url)
}

/// POST to `url` with an empty body; returns (status, body).
pub fn http_post(url: &str) -> anyhow::Result<(u16, String)> {
    http(reqwest::Method::POST, url)
}

fn http(method: reqwest::Method, url: &str) -> anyhow::Result<(u16, String)> {
    block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let resp = client.request(method, url).send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    })
}

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("could not build a tokio runtime")
        .block_on(future)
}
