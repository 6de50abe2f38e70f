//! Errors as the user sees them, and how the process ends.
//!
//! Everything below `commands/` returns `anyhow::Result`, adding context as the
//! error travels up. Where we know what the user should do next, the error
//! carries a [`Hinted`] layer: `main` prints the message, the chain of causes,
//! then the hint, and takes the exit code from it. Exit codes are part of the
//! interface (see the README), so they are chosen in exactly one place.

use std::fmt;

/// How a run of promsnap ends. The numbers are documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success,
    /// The operation failed; nothing was half-done that a rerun cannot finish.
    Failure,
    /// Bad flags, configuration or input: fix the command line, not the system.
    Usage,
    /// Finished, but found problems (verify) or could not finish housekeeping.
    Problems,
    /// Another promsnap run holds the local lock; this one did nothing.
    Busy,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

impl ExitStatus {
    /// Every status, in the order of the README's exit-code table (a test
    /// checks the table against this list and [`ExitStatus::meaning`]).
    pub const ALL: [ExitStatus; 6] = [
        ExitStatus::Success,
        ExitStatus::Failure,
        ExitStatus::Usage,
        ExitStatus::Problems,
        ExitStatus::Busy,
        ExitStatus::Interrupted,
    ];

    /// What the code means, as the README's table begins to say it.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::Failure => "the operation failed",
            ExitStatus::Usage => "usage or configuration error, or a refusal",
            ExitStatus::Problems => "finished, but found problems",
            ExitStatus::Busy => "another run holds the lock",
            ExitStatus::Interrupted => "interrupted",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Problems => 3,
            ExitStatus::Busy => 4,
            ExitStatus::Interrupted => 130,
        }
    }
}

/// An error that tells the user what to do about it.
///
/// Used either as the root error or as a context layer over the real cause,
/// so the cause chain is still printed.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: String,
    pub status: ExitStatus,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

impl Hinted {
    /// A failure (exit 1) with a hint.
    pub fn failure(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted {
            message: message.into(),
            hint: hint.into(),
            status: ExitStatus::Failure,
        }
    }

    /// A usage or configuration error (exit 2) with a hint.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted {
            message: message.into(),
            hint: hint.into(),
            status: ExitStatus::Usage,
        }
    }
}

/// Marks an operation that stopped because the user interrupted it.
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Context that marks a failure of this machine or of the connection to
/// the repository (a full scratch disk, a download that broke off) rather
/// than something wrong with the data being read. `verify` reports what is
/// wrong with a backup as problems (exit 3) and fails on these (exit 1): a
/// full `/tmp` must never read as a damaged backup.
#[derive(Debug)]
pub struct Environment {
    pub what: String,
    pub place: Place,
}

/// Which part of the environment failed: what the hint should point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// This machine's disk (scratch space, the restore target).
    Disk,
    /// The connection to the repository.
    Connection,
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Environment {}

/// A failed operation on this machine's disk (`what` names it, e.g. "could
/// not write /x/index"), marked as an [`Environment`] failure.
pub fn local_io(e: std::io::Error, what: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(e).context(Environment {
        what: what.into(),
        place: Place::Disk,
    })
}

/// Where `err` failed, if it is an [`Environment`] failure.
pub fn environment(err: &anyhow::Error) -> Option<Place> {
    err.downcast_ref::<Environment>().map(|e| e.place)
}

/// Whether any layer of `err` is an [`Environment`] failure.
pub fn is_environment(err: &anyhow::Error) -> bool {
    environment(err).is_some()
}

/// The hint for a run that failed on its environment, not on the backup:
/// `disk` says what the local disk needed room for.
pub fn environment_hint(place: Place, disk: &str) -> String {
    match place {
        Place::Disk => {
            format!("this is a failure of this machine, not damage in the backup; {disk}")
        }
        Place::Connection => "this is a failure of the connection to the repository, not damage \
                              in the backup; run it again (--retries and --timeout set how hard \
                              each request is retried)"
            .to_string(),
    }
}

/// The exit status an error should end the process with.
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    if err.downcast_ref::<Interrupted>().is_some() {
        return ExitStatus::Interrupted;
    }
    match err.downcast_ref::<Hinted>() {
        Some(h) => h.status,
        None => ExitStatus::Failure,
    }
}

/// The hint to print under an error, if any layer of it carries one.
pub fn hint_of(err: &anyhow::Error) -> Option<&str> {
    err.downcast_ref::<Hinted>().map(|h| h.hint.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn hint_and_status_survive_more_context() {
        let inner: anyhow::Result<()> = Err(std::io::Error::other("connection refused").into());
        let err = inner
            .context(Hinted::usage("bad endpoint", "check --s3-endpoint"))
            .context("could not list snapshots")
            .unwrap_err();
        assert_eq!(status_of(&err), ExitStatus::Usage);
        assert_eq!(hint_of(&err), Some("check --s3-endpoint"));
        let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
        assert_eq!(
            chain,
            [
                "could not list snapshots",
                "bad endpoint",
                "connection refused"
            ]
        );
    }

    #[test]
    fn plain_errors_are_failures_without_hint() {
        let err = anyhow::anyhow!("boom");
        assert_eq!(status_of(&err), ExitStatus::Failure);
        assert_eq!(hint_of(&err), None);
        assert_eq!(status_of(&Interrupted.into()), ExitStatus::Interrupted);
    }
}
