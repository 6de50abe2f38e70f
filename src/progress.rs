//! How long-running library code reports progress without printing.
//!
//! Nothing below `commands/` writes to the terminal. Work that takes time
//! reports through this trait; `output.rs` decides whether that becomes an
//! indicatif bar (a person at a terminal), a periodic log line (cron) or
//! nothing (`--quiet`, tests).

/// Receives progress from a running operation. Must be cheap: `advance` is
/// called from the hot read loop of every block.
pub trait Progress: Send + Sync {
    /// Work of `total` bytes is starting (called once, possibly again when the
    /// total becomes known more precisely).
    fn set_total(&self, total: u64);
    /// `bytes` more bytes are done.
    fn advance(&self, bytes: u64);
    /// A short line about what is happening (e.g. a block finished).
    fn note(&self, message: &str);
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn note(&self, _: &str) {}
}

/// Where library code sends a warning it cannot return: one that comes up
/// in a `Drop` (cleanup that failed) or while work goes on. Commands pass
/// [`crate::output::Printer::warner`]; tests can collect them.
pub type Warn = std::sync::Arc<dyn Fn(&str) + Send + Sync>;
