//! The promsnap binary: parse the command line, run the command on a tokio
//! runtime, and turn the outcome into an exit code. Ctrl-C and SIGTERM
//! cancel the running command: its drop guards remove staging files and the
//! local snapshot, and S3 multipart uploads are aborted before we exit 130.
//! Every run that started, however it ended (interrupted too), is then
//! recorded as metrics when `--metrics-file` or `--pushgateway` ask for it,
//! and only then is its result printed (`commands::conclude`). `serve`
//! handles the signals itself: they stop it, and it exits 0.

use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

use clap::Parser;

use promsnap::cli::{Cli, Command, LogFormat};
use promsnap::commands::{Finished, Request};
use promsnap::error::Interrupted;
use promsnap::output::Printer;
use promsnap::{commands, storage};

fn main() -> ExitCode {
    return_large_buffers();
    // The shell asking for completions (COMPLETE=bash promsnap -- ...) is
    // answered here, and the process ends.
    commands::complete_from_env();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Backup(_) | Command::Serve(_)) {
        keep_blob_buffers();
    }
    // serve --log-format json (the flag or its environment variable): even
    // an error that stops it before it starts is one JSON log line.
    let printer = match &cli.command {
        Command::Serve(a) if a.log_format == Some(LogFormat::Json) => {
            Printer::service(cli.global.quiet, true)
        }
        _ => Printer::new(cli.global.quiet),
    };
    // Known before the settings are resolved: a run that cannot even start
    // still answers --json with the error document.
    let request = Request::of(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let err = anyhow::Error::new(e).context("could not start the async runtime");
            let status = commands::conclude(&request, Finished::failed(err), &printer);
            return ExitCode::from(status.code());
        }
    };
    let finished = runtime.block_on(async {
        let mut shutdown = Shutdown::register();
        let mut invocation = match commands::Invocation::prepare(cli) {
            Ok(invocation) => invocation,
            Err(err) => return Finished::failed(err),
        };
        if invocation.handles_signals() {
            let outcome = invocation.execute(&printer).await;
            return invocation.record(outcome).await;
        }
        let outcome = tokio::select! {
            r = invocation.execute(&printer) => r,
            () = shutdown.wait() => Err(Interrupted.into()),
        };
        // Let cleanup that drop guards started (multipart aborts) finish.
        storage::cleanup::wait(Duration::from_secs(10)).await;
        tokio::select! {
            f = invocation.record(outcome) => f,
            () = shutdown.wait() => Finished::failed(Interrupted.into()),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(10));
    let status = commands::conclude(&request, finished, &printer);
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

/// Makes glibc hand every allocation of 1 MiB or more (packs being filled,
/// runs of blobs read at once, hashing batches) to `mmap`, so that it goes
/// back to the system when freed. By default glibc raises that threshold to
/// the largest buffer freed so far (up to 32 MiB); from then on such buffers
/// come from its per-thread arenas, and one freed on another thread than
/// the one that allocated it (a blob decoded on one, joined on another)
/// stays resident. Measured on the large bench set: `verify --deep` peaked
/// at 250-265 MB resident with the default and at 184 MB with this, the
/// restore at 235-245 MB and 156-162 MB, for 0-10 % more time (page faults
/// on fresh buffers; `crate::buffers` recycles the largest ones).
///
/// Setting that threshold also fixes glibc's trim threshold at its default,
/// 128 KiB (see [`keep_blob_buffers`]).
fn return_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; it runs first
    // in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// For a backup: has glibc keep up to 2 MiB free at the top of an arena.
/// At its default of 128 KiB, an arena gave back its top whenever a blob of
/// 256 KiB (cut on the reading thread, freed by a compressing one) was freed
/// there, and the next blob faulted its pages in again: on the large bench
/// set a backup took 75 thousand page faults instead of 165, for 3 MB more
/// peak RSS. A restore gained nothing from it and peaked 10 MB higher, so
/// only backups get it.
fn keep_blob_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as above; main calls it before the runtime starts threads.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 << 20);
    }
}
