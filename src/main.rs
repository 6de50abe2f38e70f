//! The promsnap binary: parse the command line, run the command on a tokio
//! runtime, and turn the outcome into an exit code. Ctrl-C and SIGTERM
//! cancel the running command: its drop guards remove staging files and the
//! local snapshot, and S3 multipart uploads are aborted before we exit 130.
//! Every run that started, however it ended (interrupted too), is then
//! recorded as metrics when `--metrics-file` or `--pushgateway` ask for it.

use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

use clap::Parser;

use promsnap::cli::Cli;
use promsnap::error::{self, ExitStatus, Interrupted};
use promsnap::output::Printer;
use promsnap::{commands, storage};

fn main() -> ExitCode {
    // The shell asking for completions (COMPLETE=bash promsnap -- ...) is
    // answered here, and the process ends.
    commands::complete_from_env();
    let cli = Cli::parse();
    let printer = Printer::new(cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&anyhow::Error::new(e).context("could not start the async runtime"));
            return ExitCode::from(ExitStatus::Failure.code());
        }
    };
    let result = runtime.block_on(async {
        let mut shutdown = Shutdown::register();
        let mut invocation = commands::Invocation::prepare(cli)?;
        let outcome = tokio::select! {
            r = invocation.execute(&printer) => r,
            () = shutdown.wait() => Err(Interrupted.into()),
        };
        // Let cleanup that drop guards started (multipart aborts) finish.
        storage::cleanup::wait(Duration::from_secs(10)).await;
        tokio::select! {
            r = invocation.record(outcome, &printer) => r,
            () = shutdown.wait() => Err(Interrupted.into()),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(10));
    let status = match result {
        Ok(status) => status,
        Err(err) => {
            if err.downcast_ref::<Interrupted>().is_some() {
                eprintln!("interrupted: stopped cleanly; nothing half-done was kept, run the command again to finish");
            } else {
                printer.error(&err);
            }
            error::status_of(&err)
        }
    };
    ExitCode::from(status.code())
}

/// SIGINT (Ctrl-C) and SIGTERM, with their handlers installed before any
/// work starts: a signal that arrives in the first milliseconds of a run
/// still stops it cleanly (exit 130) instead of killing it outright.
struct Shutdown {
    int: Option<Signal>,
    term: Option<Signal>,
}

impl Shutdown {
    fn register() -> Self {
        Shutdown {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Returns when either signal arrives.
    async fn wait(&mut self) {
        async fn next(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = next(&mut self.int) => {}
            () = next(&mut self.term) => {}
        }
    }
}
