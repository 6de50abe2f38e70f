//! The Prometheus server: everything promsnap knows about the server it
//! backs up or restores into, in one place.
//!
//! - [`client`]: the HTTP API, as far as backups need it (snapshot,
//!   buildinfo, flags, configuration, readiness), with its retry rules.
//! - [`connect`]: finding the server to use among the `--prometheus-url`s
//!   of replicas that share one data directory, waiting for one that is
//!   still starting, and what it says about itself.
//! - [`flags`]: what its command-line flags tell: its data directory, its
//!   time retention, its configuration file.
//! - [`snapshots`]: the snapshots promsnap asks it for, marked so that even a
//!   `kill -9` leaves none behind on its disk.
//! - [`config_files`]: its configuration and rule files, read on this host to
//!   be stored with the backup.
//!
//! Nothing here prints: warnings are returned (or, from a `Drop`, passed to
//! a [`crate::progress::Warn`] callback), and commands decide how they look.

pub mod client;
pub mod config_files;
pub mod connect;
pub mod flags;
pub mod snapshots;

pub use client::{NotReady, Prometheus, PrometheusOptions};
pub use connect::{connect, Connected, ServerInfo};
pub use flags::Flags;
