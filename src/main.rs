//! The promsnap binary: parse the command line, run the command on a tokio
//! runtime, and turn the outcome into an exit code. Ctrl-C and SIGTERM
//! cancel the running command: its drop guards remove staging files and the
//! local snapshot, and S3 multipart uploads are aborted before we exit 130.
//! Every run that started, however it ended (interrupted too), is then
//! recorded as metrics when `--metrics-file` or `--pushgateway` ask for it.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use promsnap::cli::Cli;
use promsnap::error::{self, ExitStatus, Interrupted};
use promsnap::output::Printer;
use promsnap::{commands, storage};

fn main() -> ExitCode {
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
        let mut invocation = commands::Invocation::prepare(cli)?;
        let outcome = tokio::select! {
            r = invocation.execute(&printer) => r,
            () = shutdown_signal() => Err(Interrupted.into()),
        };
        // Let cleanup that drop guards started (multipart aborts) finish.
        storage::cleanup::wait(Duration::from_secs(10)).await;
        tokio::select! {
            r = invocation.record(outcome, &printer) => r,
            () = shutdown_signal() => Err(Interrupted.into()),
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

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
