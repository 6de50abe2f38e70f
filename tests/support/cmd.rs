//! Running the promsnap binary in tests and reading what it said.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use super::{promsnap, Garage};

/// What one run of promsnap printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code and that stderr mentions every `needle`.
    pub fn expect_failure(&self, code: i32, needles: &[&str]) -> &Self {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr lacks {n:?}:\n{}",
                self.stderr
            );
        }
        self
    }
}

pub fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Where a test's backups go: a local directory or a fresh Garage bucket.
#[derive(Clone)]
pub struct Target {
    pub repo: String,
    pub env: Vec<(String, String)>,
}

impl Target {
    /// A new repository in `dir` (created by `promsnap init`).
    pub fn local(dir: &Path) -> Target {
        Target::uninitialised(dir).initialised()
    }

    /// `dir` as a location that holds no repository (yet).
    pub fn uninitialised(dir: &Path) -> Target {
        Target {
            repo: dir.display().to_string(),
            env: Vec::new(),
        }
    }

    /// A new repository in a fresh Garage bucket.
    pub fn garage(garage: &Garage, bucket_prefix: &str) -> Target {
        let bucket = garage.new_bucket(bucket_prefix);
        Target {
            repo: format!("s3://{bucket}/prom"),
            env: garage.env(),
        }
        .initialised()
    }

    /// Runs `promsnap init` on this target.
    pub fn initialised(self) -> Target {
        self.ok(&["init"]);
        self
    }

    /// The bucket of an `s3://` target.
    pub fn bucket(&self) -> &str {
        let path = self
            .repo
            .strip_prefix("s3://")
            .unwrap_or_else(|| panic!("{} is not an S3 repository", self.repo));
        path.split('/').next().unwrap_or(path)
    }

    /// `promsnap <args> --repo <repo>` with this target's environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = promsnap();
        cmd.args(args)
            .arg("--repo")
            .arg(&self.repo)
            .envs(self.env.iter().cloned());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        finish(self.cmd(args).output().expect("run promsnap"))
    }

    /// The snapshots `list --json` shows, oldest first.
    pub fn snapshots(&self) -> Vec<Value> {
        match self.ok(&["list", "--json"]).json()["snapshots"].take() {
            Value::Array(list) => list,
            other => panic!("list --json has no snapshots array: {other}"),
        }
    }

    /// Runs and requires exit 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "promsnap {args:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    }
}

/// promsnap without a repository (completions, --help, usage errors).
pub fn bare(args: &[&str]) -> Run {
    finish(promsnap().args(args).output().expect("run promsnap"))
}
