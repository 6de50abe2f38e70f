//! A real Prometheus Pushgateway (Debian package `prometheus-pushgateway`)
//! on a free loopback port, for the `--pushgateway` tests. Stopped on drop.

use std::fs::{self, File};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{free_port, http_get, require_tool, tail};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Pushgateway {
    /// Base URL without trailing slash, e.g. `http://127.0.0.1:40200`.
    pub url: String,
    child: Child,
    workdir: TempDir,
}

impl Pushgateway {
    pub fn start() -> Pushgateway {
        let bin = require_tool("prometheus-pushgateway");
        let workdir = tempfile::Builder::new()
            .prefix("promsnap-pushgateway-")
            .tempdir()
            .expect("tempdir for the pushgateway");
        let log_path = workdir.path().join("pushgateway.log");
        // free_port() is racy: retry when the port was taken meanwhile.
        for _attempt in 0..3 {
            let port = free_port();
            let log = File::create(&log_path).expect("create pushgateway log");
            let mut child = Command::new(&bin)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    if log.contains("address already in use") {
                        break;
                    }
                    panic!("pushgateway exited early ({status}):\n{log}");
                }
                if let Ok((200, _)) = http_get(&format!("{url}/-/ready")) {
                    return Pushgateway {
                        url,
                        child,
                        workdir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "pushgateway was not ready within {READY_TIMEOUT:?}:\n{}",
                        tail(&log_path, 30)
                    );
                }
                sleep(Duration::from_millis(50));
            }
        }
        panic!("pushgateway: no free port after 3 attempts");
    }

    /// What the Pushgateway exposes for Prometheus to scrape.
    pub fn metrics(&self) -> String {
        let (status, body) = http_get(&format!("{}/metrics", self.url)).expect("GET /metrics");
        assert_eq!(status, 200, "pushgateway /metrics: {body}");
        body
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.workdir.path().join("pushgateway.log")).unwrap_or_default()
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
