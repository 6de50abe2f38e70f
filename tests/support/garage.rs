//! One single-node Garage S3 server per test process, started on first use.
//!
//! Starting Garage and applying a cluster layout takes a few seconds, so all
//! tests of a process share one instance and isolate themselves by bucket
//! (`Garage::new_bucket`).
//!
//! Lifetime: a `static` is never dropped, so nothing in Rust would stop the
//! server when the test process ends. Garage is therefore started by a tiny
//! `sh` watchdog which polls the test process's pid once a second; when the
//! test process is gone (normal exit, panic, SIGKILL alike) it sends Garage
//! SIGTERM and removes the temp dir. The watchdog ignores SIGINT/SIGHUP so
//! that a Ctrl-C on the test run still reaches that cleanup instead of
//! orphaning Garage (background jobs of a non-interactive shell ignore
//! SIGINT themselves).
//!
//! Fault tests that stop the server need a Garage of their own:
//! [`OwnGarage`] runs one the test can stop and start again on the same
//! ports and data, under the same kind of watchdog.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{free_port, http_get, require_tool, tail};

/// Fixed test credentials, imported with `garage key import`. Garage wants
/// `GK` + 24 hex digits for the id and 64 hex digits for the secret.
const ACCESS_KEY: &str = "GK70726f6d736e61702d7465";
const SECRET_KEY: &str = "7465737420736563726574206f6e6c792c206e6f7420612072656164206b6579";
const KEY_NAME: &str = "promsnap-test";
const REGION: &str = "garage";

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

const WATCHDOG: &str = r#"
trap '' INT HUP QUIT
"$1" -c "$2" server >"$3" 2>&1 &
garage=$!
while kill -0 "$4" 2>/dev/null; do sleep 1; done
kill -TERM "$garage" 2>/dev/null
wait "$garage"
rm -rf "$5"
"#;

/// Like [`WATCHDOG`], for a Garage the test stops and starts: it writes the
/// server's pid to $5 (so the test can kill just the server) and ends with
/// either the server or the test process.
const OWN_WATCHDOG: &str = r#"
trap '' INT HUP QUIT
"$1" -c "$2" server >>"$3" 2>&1 &
garage=$!
echo "$garage" >"$5"
while kill -0 "$4" 2>/dev/null && kill -0 "$garage" 2>/dev/null; do sleep 0.2; done
kill -KILL "$garage" 2>/dev/null
wait "$garage"
"#;

pub struct Garage {
    /// S3 endpoint, e.g. `http://127.0.0.1:40125` (path-style addressing).
    pub endpoint: String,
    /// Always `garage`.
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Temp dir with config, metadata, data and `garage.log`.
    pub dir: PathBuf,
    config: PathBuf,
    bin: PathBuf,
}

/// The shared Garage of this test process, started (and set up with the
/// test key) on first call.
pub fn garage() -> &'static Garage {
    static GARAGE: OnceLock<Garage> = OnceLock::new();
    GARAGE.get_or_init(Garage::start)
}

impl Garage {
    // The watchdog is never waited for: it must outlive this process to
    // clean up after it (see the module docs).
    #[allow(clippy::zombie_processes)]
    fn start() -> Garage {
        let bin = require_tool("garage");
        let dir = tempfile::Builder::new()
            .prefix("promsnap-garage-")
            .tempdir()
            .expect("tempdir for garage")
            .keep(); // the watchdog deletes it
        let s3_port = free_port();
        let config = dir.join("garage.toml");
        fs::write(&config, config_toml(&dir, s3_port)).expect("write garage.toml");

        Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("garage-watchdog") // $0
            .arg(&bin)
            .arg(&config)
            .arg(dir.join("garage.log"))
            .arg(std::process::id().to_string())
            .arg(&dir)
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot spawn sh for the garage watchdog");

        let garage = Garage {
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            region: REGION.to_string(),
            access_key: ACCESS_KEY.to_string(),
            secret_key: SECRET_KEY.to_string(),
            dir,
            config,
            bin,
        };
        garage.setup();
        garage
    }

    /// Waits for the node, gives it a one-node layout and imports the key.
    fn setup(&self) {
        self.retry("node status", &["status"]);
        let node = self.retry("node id", &["node", "id", "-q"]);
        let node_id = stdout(&node)
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        self.run(&["layout", "assign", "-z", "dc1", "-c", "1G", &node_id]);
        self.run(&["layout", "apply", "--version", "1"]);
        self.run(&[
            "key", "import", "--yes", "-n", KEY_NAME, ACCESS_KEY, SECRET_KEY,
        ]);
        self.wait_s3();
    }

    /// Creates bucket `name` and gives the test key read, write and owner
    /// rights on it.
    pub fn create_bucket(&self, name: &str) {
        self.run(&["bucket", "create", name]);
        self.run(&[
            "bucket", "allow", "--read", "--write", "--owner", name, "--key", ACCESS_KEY,
        ]);
    }

    /// Creates a bucket with a name unique within this test process
    /// (`<prefix>-<pid>-<n>`) and returns the name.
    pub fn new_bucket(&self, prefix: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        self.create_bucket(&name);
        name
    }

    /// Environment for the `promsnap` binary to reach this Garage.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("PROMSNAP_S3_ENDPOINT", self.endpoint.as_str()),
            ("PROMSNAP_S3_REGION", self.region.as_str()),
            ("PROMSNAP_S3_PATH_STYLE", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An S3 client of this Garage with the test key, for looking behind
    /// promsnap's back (open multipart uploads, objects it must not see).
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "test",
        );
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(creds)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Multipart uploads started and neither completed nor aborted in `bucket`.
    pub fn open_uploads(&self, bucket: &str) -> usize {
        let client = self.s3_client();
        super::block_on(async {
            client
                .list_multipart_uploads()
                .bucket(bucket)
                .send()
                .await
                .expect("list multipart uploads")
                .uploads()
                .len()
        })
    }

    /// `garage -c <config>`, for ad-hoc admin commands in tests.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c").arg(&self.config).stdin(Stdio::null());
        // Settings of a developer's own Garage must not redirect the CLI.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GARAGE_") {
                cmd.env_remove(&key);
            }
        }
        cmd
    }

    /// Runs a garage CLI command that must succeed; returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cli().args(args).output().expect("run garage CLI");
        if !out.status.success() {
            panic!(
                "`garage {}` failed ({}):\n{}{}\ngarage log tail:\n{}",
                args.join(" "),
                out.status,
                stdout(&out),
                String::from_utf8_lossy(&out.stderr),
                tail(&self.dir.join("garage.log"), 30)
            );
        }
        out
    }

    /// Runs a CLI command until it succeeds (the server may still be booting).
    fn retry(&self, what: &str, args: &[&str]) -> Output {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let out = self.cli().args(args).output().expect("run garage CLI");
            if out.status.success() {
                return out;
            }
            if Instant::now() > deadline {
                panic!(
                    "garage did not come up ({what} kept failing for {BOOT_TIMEOUT:?}):\n{}\
                     \ngarage log tail:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    tail(&self.dir.join("garage.log"), 30)
                );
            }
            sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the S3 API answers HTTP at all (any status).
    fn wait_s3(&self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        while http_get(&self.endpoint).is_err() {
            if Instant::now() > deadline {
                panic!(
                    "garage S3 API at {} did not answer; log tail:\n{}",
                    self.endpoint,
                    tail(&self.dir.join("garage.log"), 30)
                );
            }
            sleep(Duration::from_millis(100));
        }
    }
}

/// A Garage for one test, which it may stop (SIGKILL, like a crash or a
/// power cut) and start again with the same ports, key and data.
/// Dereferences to [`Garage`] for buckets, `env()` and the CLI.
pub struct OwnGarage {
    garage: Garage,
    watchdog: Option<Child>,
    _dir: tempfile::TempDir,
}

impl OwnGarage {
    pub fn start() -> OwnGarage {
        let bin = require_tool("garage");
        let tmp = tempfile::Builder::new()
            .prefix("promsnap-own-garage-")
            .tempdir()
            .expect("tempdir for garage");
        let dir = tmp.path().to_path_buf();
        let s3_port = free_port();
        let config = dir.join("garage.toml");
        fs::write(&config, config_toml(&dir, s3_port)).expect("write garage.toml");
        let mut own = OwnGarage {
            garage: Garage {
                endpoint: format!("http://127.0.0.1:{s3_port}"),
                region: REGION.to_string(),
                access_key: ACCESS_KEY.to_string(),
                secret_key: SECRET_KEY.to_string(),
                dir,
                config,
                bin,
            },
            watchdog: None,
            _dir: tmp,
        };
        own.spawn();
        own.garage.setup();
        own
    }

    // The watchdog is reaped in `stop`.
    #[allow(clippy::zombie_processes)]
    fn spawn(&mut self) {
        let g = &self.garage;
        let child = Command::new("sh")
            .arg("-c")
            .arg(OWN_WATCHDOG)
            .arg("garage-watchdog")
            .arg(&g.bin)
            .arg(&g.config)
            .arg(g.dir.join("garage.log"))
            .arg(std::process::id().to_string())
            .arg(g.dir.join("garage.pid"))
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot spawn sh for the garage watchdog");
        self.watchdog = Some(child);
    }

    /// Kills the server (no graceful shutdown) and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(mut watchdog) = self.watchdog.take() else {
            return;
        };
        let pid_file = self.garage.dir.join("garage.pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            match fs::read_to_string(&pid_file) {
                Ok(p) if !p.trim().is_empty() => break p.trim().to_string(),
                _ if Instant::now() > deadline => panic!("garage never wrote its pid"),
                _ => sleep(Duration::from_millis(20)),
            }
        };
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -KILL {pid}"))
            .status();
        let _ = watchdog.wait();
        let _ = fs::remove_file(&pid_file);
    }

    /// Starts the server again on the same ports and data; returns once its
    /// S3 API answers.
    pub fn restart(&mut self) {
        assert!(self.watchdog.is_none(), "stop() first");
        self.spawn();
        self.garage.retry("node status after restart", &["status"]);
        self.garage.wait_s3();
    }
}

impl std::ops::Deref for OwnGarage {
    type Target = Garage;
    fn deref(&self) -> &Garage {
        &self.garage
    }
}

impl Drop for OwnGarage {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config_toml(dir: &std::path::Path, s3_port: u16) -> String {
    let (rpc_port, admin_port) = (free_port(), free_port());
    // A fixed secret is fine: it only guards RPC on loopback in a temp dir.
    format!(
        r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = 1
# Store objects as sent, so tests can reason about stored bytes.
compression_level = "none"

rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
"#,
        dir = dir.display(),
        secret = "5eed".repeat(16),
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
