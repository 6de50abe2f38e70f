//! The single integration test binary (`autotests = false`): every
//! end-to-end test module is listed here and shares `support`.

mod support;

mod backup;
mod cli;
mod cmd;
mod errors;
mod ha;
mod harness_selftest;
mod prune;
mod roundtrip;
mod storage;
mod verify;
