//! The single integration test binary (`autotests = false`): every
//! end-to-end test module is listed here, one line on what it covers, and
//! takes its helpers from `support` only.

mod support; // the harness: Prometheus, Garage, Pushgateway, fault proxy, running promsnap

mod backup; // authentication, data dir discovery, quiet cron runs, big unchanged TSDBs
mod cli; // --help, list's table, absolute paths, --version, completions, a closed stdout pipe
mod compat; // a repository written by promsnap 0.1 (format 1, before init) still reads and takes backups
mod contract; // exit 0 means what it says: init, instances, ids, times, secrets in URLs
mod deploy; // deploy/kubernetes: manifests parse, carry the tested rules, and their arguments resolve
mod errors; // clear errors, hints and exit codes for bad input; nothing damaged
mod faults; // Garage killed mid-upload, injected S3 faults: complete or fail clearly
mod fleet; // many servers in one repository: one instance's commands read only its manifests
mod format2; // repository format 2 on real compactions: dedup, round trips, prune, verify, hostile recipes
mod format2_live; // format 2 with a live server compacting, deleting and merging between backups to Garage
mod groupdata; // format 2 data below the group's directory: a prune of one instance deletes only there
mod ha; // replicas of one HA group store one backup per period
mod harness_selftest; // the harness itself against the real servers
mod histograms; // native histograms back up, verify, restore and answer the same queries
mod hostile; // a damaged or hostile repository: bounded reads, checked names
mod interrupt; // Ctrl-C, SIGTERM and kill -9 mid-backup: clean stop, next run finishes
mod json; // every --json document against its schema; the README's JSON and exit-code tables
mod ops; // metrics and alert rules, the run lock, secrets from files, bandwidth limit
mod prom3; // what Prometheus 3.x changes: lock file, flags, UTF-8 names, newer chunk encodings
mod prune; // retention and garbage collection, racing backups and prunes
mod restore_targeted; // config files, time windows, merging into a running Prometheus
mod roundtrip; // backup, restore, and a second Prometheus answers exactly as the first
mod sidecar; // restore --if-empty seeds a new replica; serve: schedule, endpoints, SIGTERM
mod storage; // the shared storage suite on a real S3 server (Garage)
mod verify; // verify and check-dir against a corruption corpus, every level
