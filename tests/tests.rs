//! The single integration test binary (`autotests = false`): every
//! end-to-end test module is listed here and shares `support`.

mod support;

mod backup;
mod cli;
mod cmd;
mod errors;
mod faults;
mod ha;
mod harness_selftest;
mod hostile;
mod interrupt;
mod ops;
mod prune;
mod restore_targeted;
mod roundtrip;
mod storage;
mod verify;
