//! promsnap: back up and restore Prometheus TSDB data.
//!
//! Data flows one way: `commands` (one thin async fn per subcommand) call
//! into `repo` (the repository format: manifests, backup, restore), which
//! uses `archive` (block <-> tar.zst), `storage` (local directory or S3) and
//! `tsdb` (what a block is). Nothing below `commands` prints; progress goes
//! through the `progress` trait and `output` decides how it looks.

pub mod archive;
pub mod buffers;
pub mod cli;
pub mod commands;
pub mod direct_io;
pub mod duration;
pub mod error;
pub mod hash_thread;
pub mod json;
pub mod metrics;
pub mod output;
pub mod progress;
pub mod prometheus;
pub mod redact;
pub mod repo;
pub mod retry;
pub mod run_lock;
pub mod schedule;
pub mod settings;
pub mod storage;
pub mod time;
pub mod tsdb;
