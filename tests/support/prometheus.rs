//! A real Prometheus server on a loopback port, serving a given data dir.
//!
//! It runs without scrape configs, so the TSDB holds exactly the blocks the
//! test put there (plus an empty head), and with a 100y retention so that
//! old fixture blocks are not deleted at the first reload (retention counts
//! from the newest block, not from the wall clock), unless the test passes
//! its own `--storage.tsdb.retention.time` in `extra_args`.
//!
//! Which Prometheus: `PROMSNAP_TEST_PROMETHEUS` picks the server every
//! end-to-end test runs against, `2.42` (the default: Debian 12's package, on
//! PATH) or `3.5` (the 3.5 LTS from Debian sid that `scripts/install-deps.sh`
//! unpacks into `~/.cache/promsnap/prometheus-3.5`, or
//! `$PROMSNAP_TEST_PROMETHEUS_3_5_DIR`). `scripts/test.sh` runs the
//! integration tests once per server. The binaries' `--version` must match
//! the choice, so a run that says 3.5 really ran 3.5; promtool comes from the
//! same place, for the tests and for the promsnap under test (`server_path`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::{free_port, http_get, require_tool, tail};

/// Environment variable choosing the server: `2.42` or `3.5`.
pub const SERVER_ENV: &str = "PROMSNAP_TEST_PROMETHEUS";
/// Environment variable overriding where the 3.5 binaries are unpacked.
const DIR_3_5_ENV: &str = "PROMSNAP_TEST_PROMETHEUS_3_5_DIR";

/// The Prometheus release line the end-to-end tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// Debian 12's 2.42 (no lock file unless asked, no UTF-8 names).
    V2_42,
    /// The 3.5 LTS (lock file by default, UTF-8 metric and label names).
    V3_5,
}

/// The chosen server's binaries and the version they report.
#[derive(Debug)]
pub struct Server {
    pub line: Line,
    pub prometheus: PathBuf,
    pub promtool: PathBuf,
    /// First line of `prometheus --version`.
    pub version: String,
}

impl Server {
    /// `major.minor` as the tests name it: `2.42` or `3.5`.
    pub fn name(&self) -> &'static str {
        match self.line {
            Line::V2_42 => "2.42",
            Line::V3_5 => "3.5",
        }
    }

    pub fn is_v3(&self) -> bool {
        self.line == Line::V3_5
    }
}

/// The server chosen by `PROMSNAP_TEST_PROMETHEUS`, found and checked once.
/// A missing or mismatched server fails the test with a hint, never skips it.
pub fn server() -> &'static Server {
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(find_server)
}

/// The promtool of the chosen server.
pub fn promtool() -> PathBuf {
    server().promtool.clone()
}

/// `PATH` with the chosen server's promtool directory first, for the
/// promsnap under test (`verify --restore-test` runs promtool from PATH).
pub fn server_path() -> std::ffi::OsString {
    let dir = server()
        .promtool
        .parent()
        .expect("promtool has a directory")
        .to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&rest)))
        .expect("PATH entries without separators")
}

fn find_server() -> Server {
    let choice = std::env::var(SERVER_ENV).unwrap_or_else(|_| "2.42".into());
    let (line, prometheus, promtool) = match choice.as_str() {
        "2.42" => (
            Line::V2_42,
            require_tool("prometheus"),
            require_tool("promtool"),
        ),
        "3.5" => {
            let dir = std::env::var_os(DIR_3_5_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(default_3_5_dir);
            let bin = dir.join("usr/bin");
            for tool in ["prometheus", "promtool"] {
                assert!(
                    bin.join(tool).is_file(),
                    "{SERVER_ENV}=3.5 but {} does not exist.\n\
                     Run scripts/install-deps.sh (it unpacks Debian sid's prometheus and \
                     promtool 3.5 into {}), or point {DIR_3_5_ENV} at a directory with \
                     usr/bin/prometheus and usr/bin/promtool 3.5.",
                    bin.join(tool).display(),
                    dir.display()
                );
            }
            (Line::V3_5, bin.join("prometheus"), bin.join("promtool"))
        }
        other => panic!("{SERVER_ENV}={other:?}: expected 2.42 or 3.5"),
    };
    let version = version_line(&prometheus);
    let tool_version = version_line(&promtool);
    let want = format!("version {choice}.");
    for (bin, found) in [(&prometheus, &version), (&promtool, &tool_version)] {
        assert!(
            found.contains(&want),
            "{SERVER_ENV}={choice} but {} says {found:?}.\n\
             Install the {choice} server with scripts/install-deps.sh, or choose the \
             server that is installed with {SERVER_ENV}.",
            bin.display()
        );
    }
    Server {
        line,
        prometheus,
        promtool,
        version,
    }
}

/// `$XDG_CACHE_HOME/promsnap/prometheus-3.5`, as `scripts/install-deps.sh`
/// writes it (`~/.cache` without XDG_CACHE_HOME).
fn default_3_5_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME is set");
    cache.join("promsnap/prometheus-3.5")
}

fn version_line(bin: &Path) -> String {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} --version: {e}", bin.display()));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines().next().unwrap_or_default().to_string()
}

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A config with nothing to scrape: Prometheus only serves its TSDB.
const EMPTY_CONFIG: &str = "global:\n  scrape_interval: 15s\n";

/// How to start Prometheus. `Default` matches `Prometheus::start`: admin API
/// on, no extra flags, the empty config.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Pass `--web.enable-admin-api` (snapshots need it).
    pub admin_api: bool,
    /// Appended after the harness's own flags.
    pub extra_args: Vec<String>,
    /// Contents of prometheus.yml; `None` means no scrape configs.
    pub config_yaml: Option<String>,
    /// Contents of a `--web.config.file` (e.g. basic_auth_users); with one,
    /// a 401 from `/-/ready` counts as up.
    pub web_config_yaml: Option<String>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            admin_api: true,
            extra_args: Vec::new(),
            config_yaml: None,
            web_config_yaml: None,
        }
    }
}

pub struct Prometheus {
    /// Base URL without trailing slash, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// The `--storage.tsdb.path` it serves.
    pub data_dir: PathBuf,
    pub port: u16,
    /// Its stdout+stderr.
    pub log_path: PathBuf,
    child: Option<Child>,
    // Holds the config and log; removed on drop.
    _workdir: TempDir,
}

/// How a start attempt ended.
enum Startup {
    Ready,
    PortTaken,
    Failed(String),
}

impl Prometheus {
    /// Starts Prometheus (admin API on) on `data_dir` and waits until ready.
    pub fn start(data_dir: &Path) -> Prometheus {
        Prometheus::start_with(data_dir, StartOptions::default())
    }

    pub fn start_with(data_dir: &Path, opts: StartOptions) -> Prometheus {
        let bin = server().prometheus.clone();
        let workdir = tempfile::Builder::new()
            .prefix("promsnap-prometheus-")
            .tempdir()
            .expect("tempdir for prometheus");
        let config = workdir.path().join("prometheus.yml");
        fs::write(&config, opts.config_yaml.as_deref().unwrap_or(EMPTY_CONFIG))
            .expect("write prometheus.yml");
        let log_path = workdir.path().join("prometheus.log");
        let mut opts = opts;
        if let Some(web) = opts.web_config_yaml.clone() {
            let path = workdir.path().join("web.yml");
            fs::write(&path, web).expect("write web.yml");
            opts.extra_args
                .push(format!("--web.config.file={}", path.display()));
        }

        // free_port() is racy (the port is released before Prometheus binds
        // it), so retry a few times when the listen address is taken.
        for _attempt in 0..3 {
            let port = free_port();
            let mut child = spawn(&bin, &config, data_dir, port, &opts, &log_path);
            let url = format!("http://127.0.0.1:{port}");
            match wait_ready(&mut child, &url, &log_path, opts.web_config_yaml.is_some()) {
                Startup::Ready => {
                    return Prometheus {
                        url,
                        data_dir: data_dir.to_path_buf(),
                        port,
                        log_path,
                        child: Some(child),
                        _workdir: workdir,
                    }
                }
                Startup::PortTaken => continue,
                Startup::Failed(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "prometheus on {} {why}; log tail:\n{}",
                        data_dir.display(),
                        tail(&log_path, 40)
                    );
                }
            }
        }
        panic!(
            "prometheus: no free port after 3 attempts; log tail:\n{}",
            tail(&log_path, 40)
        );
    }

    /// Instant query at `time` (unix seconds); returns the response's `data`
    /// object (`{"resultType": ..., "result": [...]}`). Panics on API errors.
    pub fn query(&self, expr: &str, time: i64) -> Value {
        self.api("query", &[("query", expr), ("time", &time.to_string())])
    }

    /// Range query; returns the response's `data` object.
    pub fn query_range(&self, expr: &str, start: i64, end: i64, step_seconds: i64) -> Value {
        self.api(
            "query_range",
            &[
                ("query", expr),
                ("start", &start.to_string()),
                ("end", &end.to_string()),
                ("step", &step_seconds.to_string()),
            ],
        )
    }

    /// The value of an instant query that must return exactly one sample
    /// (scalar or one-element vector), as f64.
    pub fn query_f64(&self, expr: &str, time: i64) -> f64 {
        let data = self.query(expr, time);
        let value = match data["resultType"].as_str() {
            Some("scalar") => &data["result"][1],
            Some("vector") if data["result"].as_array().map(Vec::len) == Some(1) => {
                &data["result"][0]["value"][1]
            }
            _ => panic!("`{expr}` at {time}: expected exactly one sample, got {data}"),
        };
        value
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("`{expr}` at {time}: not a number: {value}"))
    }

    /// GET `/api/v1/<path>` with query parameters; returns `data`.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", self.url), params)
            .expect("valid URL");
        let (status, body) = http_get(url.as_str()).unwrap_or_else(|e| panic!("GET {url}: {e:#}"));
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {url}: HTTP {status}, not JSON ({e}): {body}"));
        if json["status"] != "success" {
            panic!("GET {url}: HTTP {status}: {body}");
        }
        json["data"].clone()
    }

    /// The whole server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stops the server gracefully (SIGTERM, so it closes the TSDB and
    /// releases `<data_dir>/lock`), killing it if it hangs. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // std has no way to send SIGTERM; sh's builtin `kill` always exists
        // (procps' /usr/bin/kill may not, e.g. in slim images).
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {}", child.id()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(
    bin: &Path,
    config: &Path,
    data_dir: &Path,
    port: u16,
    opts: &StartOptions,
    log_path: &Path,
) -> Child {
    // Never inherit the test's stdout/stderr: a child holding cargo's pipes
    // can keep a CI step waiting after the tests are done.
    // Truncated per attempt, so wait_ready only sees this attempt's errors.
    let log = File::create(log_path).expect("create prometheus log");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data_dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    // Prometheus refuses a repeated flag, so a test's own retention replaces ours.
    let retention = "--storage.tsdb.retention.time";
    if !opts.extra_args.iter().any(|a| a.starts_with(retention)) {
        cmd.arg(format!("{retention}=100y"));
    }
    if opts.admin_api {
        cmd.arg("--web.enable-admin-api");
    }
    cmd.args(&opts.extra_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log fd"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

fn wait_ready(child: &mut Child, url: &str, log_path: &Path, auth: bool) -> Startup {
    let deadline = Instant::now() + READY_TIMEOUT;
    let ready_url = format!("{url}/-/ready");
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            if log.contains("address already in use") {
                return Startup::PortTaken;
            }
            return Startup::Failed(format!("exited early ({status})"));
        }
        // /-/ready answers 503 while the TSDB is still loading.
        match http_get(&ready_url) {
            Ok((200, _)) => return Startup::Ready,
            // 401: basic auth; 400: TLS on (we asked over plain HTTP).
            Ok((401 | 400, _)) if auth => return Startup::Ready,
            _ => {}
        }
        sleep(Duration::from_millis(100));
    }
    Startup::Failed(format!("was not ready within {READY_TIMEOUT:?}"))
}
