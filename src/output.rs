//! Everything promsnap prints, and where it goes.
//!
//! stdout carries results: a human summary or table, or exactly one JSON
//! document with `--json`. stderr carries progress, notes and errors. The
//! [`Printer`] decides how progress looks: an indicatif bar when stderr is a
//! terminal, a plain timestamped line every few seconds when it is not (cron
//! and systemd journals), nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

use crate::error;
use crate::progress::{Progress, Silent, Warn};

/// How often the non-terminal progress line is printed.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Test-only, undocumented: the end-to-end tests set this variable to see
/// several progress lines in a run of seconds. Nothing else should.
const TEST_LOG_EVERY_VAR: &str = "PROMSNAP_TEST_PROGRESS_EVERY_MS";

/// [`LOG_EVERY`], unless a test shortened it (read once per process).
fn log_every() -> Duration {
    static EVERY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *EVERY.get_or_init(|| {
        std::env::var(TEST_LOG_EVERY_VAR)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(LOG_EVERY, Duration::from_millis)
    })
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    quiet: bool,
    tty: bool,
    /// `serve --log-format json`: every stderr line is one JSON object.
    json_logs: bool,
    /// Whether results go to stdout (not in a service, whose output is its log).
    results: bool,
}

/// A write to stdout found the pipe closed (`promsnap list | head`): whoever
/// reads the results has what it wanted. Process-wide, like stdout.
static STDOUT_READER_GONE: AtomicBool = AtomicBool::new(false);

impl Printer {
    pub fn new(quiet: bool) -> Self {
        Printer {
            quiet,
            tty: std::io::stderr().is_terminal(),
            json_logs: false,
            results: true,
        }
    }

    /// For `promsnap serve`: timestamped log lines (text or one JSON object
    /// per line) and no progress bars, whatever stderr is, and no results
    /// on stdout: the service says what each run did in its log.
    pub fn service(quiet: bool, json_logs: bool) -> Self {
        Printer {
            quiet,
            tty: false,
            json_logs,
            results: false,
        }
    }

    /// A line about what is happening (stderr; hidden by `--quiet`).
    pub fn info(&self, message: &str) {
        if !self.quiet {
            self.log("info", message, serde_json::Map::new());
        }
    }

    /// Something the user should know even in `--quiet` mode.
    pub fn warn(&self, message: &str) {
        match self.json_logs {
            true => self.log("warning", message, serde_json::Map::new()),
            false => stderr(&format!("{}\n", self.stamp(&format!("warning: {message}")))),
        }
    }

    /// One log line with structured `fields`: in text the message alone,
    /// prefixed with the level unless it is `info` (the fields are for JSON
    /// logs); in JSON one object with `time`, `level`, `message` and the
    /// fields. `info` lines are hidden by `--quiet`.
    pub fn log(
        &self,
        level: &str,
        message: &str,
        fields: serde_json::Map<String, serde_json::Value>,
    ) {
        if self.quiet && level == "info" {
            return;
        }
        if !self.json_logs {
            let text = match level {
                "info" => message.to_string(),
                other => format!("{other}: {message}"),
            };
            stderr(&format!("{}\n", self.stamp(&text)));
            return;
        }
        let mut line = serde_json::Map::new();
        line.insert("time".into(), json_now().into());
        line.insert("level".into(), level.into());
        line.insert("message".into(), message.into());
        line.extend(fields);
        stderr(&format!("{}\n", serde_json::Value::Object(line)));
    }

    /// [`Printer::warn`] as a callback, for library code that has a warning
    /// it cannot return (see [`Warn`]).
    pub fn warner(&self) -> Warn {
        let printer = *self;
        std::sync::Arc::new(move |message: &str| printer.warn(message))
    }

    fn stamp(&self, message: &str) -> String {
        if self.tty {
            message.to_string()
        } else {
            format!(
                "{} {message}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
            )
        }
    }

    /// Prints an error with its causes and hint.
    pub fn error(&self, err: &anyhow::Error) {
        if self.json_logs {
            let mut fields = serde_json::Map::new();
            let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
            fields.insert("causes".into(), causes.into());
            fields.insert("hint".into(), error::hint_of(err).into());
            self.log("error", &err.to_string(), fields);
            return;
        }
        let mut text = format!("error: {err}\n");
        for cause in err.chain().skip(1) {
            text.push_str(&format!("  caused by: {cause}\n"));
        }
        if let Some(hint) = error::hint_of(err) {
            text.push_str(&format!("hint: {hint}\n"));
        }
        stderr(&text);
    }

    /// Progress reporting for work of a known byte size.
    pub fn progress(&self, label: &str) -> Arc<dyn Progress> {
        if self.quiet {
            Arc::new(Silent)
        } else if self.tty {
            Arc::new(Bar::new(label))
        } else {
            let mut lines = LogLines::new(label);
            lines.json = self.json_logs;
            Arc::new(lines)
        }
    }

    /// Writes a result to stdout. A closed pipe (`promsnap list | head`) is
    /// not an error.
    pub fn stdout(&self, text: &str) -> Result<()> {
        if !self.results {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                STDOUT_READER_GONE.store(true, Ordering::Relaxed);
                Ok(())
            }
            other => Ok(other?),
        }
    }

    /// Whether stdout's reader has gone (a write found the pipe closed): a
    /// command printing results as it reads them can stop reading.
    pub fn reader_gone(&self) -> bool {
        STDOUT_READER_GONE.load(Ordering::Relaxed)
    }

    /// Writes one JSON document to stdout.
    pub fn json<T: serde::Serialize>(&self, value: &T) -> Result<()> {
        let mut text = serde_json::to_string_pretty(value)?;
        text.push('\n');
        self.stdout(&text)
    }

    /// Whether a human summary should be printed (not with `--quiet`).
    pub fn summaries(&self) -> bool {
        !self.quiet && self.results
    }
}

/// Now in UTC, to the millisecond, for JSON log lines.
fn json_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Writes to stderr. Unlike `eprint!`, a closed or broken stderr is not a
/// panic: a message nobody can read is dropped.
fn stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(label: &str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar { bar }
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }
    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn note(&self, message: &str) {
        self.bar.set_message(message.to_string());
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Progress as a log line every [`LOG_EVERY`], for cron and journals: a
/// run shorter than that prints none, a long one a line per interval.
struct LogLines {
    label: String,
    total: AtomicU64,
    done: AtomicU64,
    started: Instant,
    every: Duration,
    /// When the last line was printed, and where lines go (stderr).
    last: Mutex<(Instant, Box<dyn Write + Send>)>,
    /// One JSON object per line (`serve --log-format json`).
    json: bool,
}

impl LogLines {
    fn new(label: &str) -> Self {
        Self::writing_to(label, log_every(), Box::new(std::io::stderr()))
    }

    fn writing_to(label: &str, every: Duration, out: Box<dyn Write + Send>) -> Self {
        LogLines {
            label: label.to_string(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            started: Instant::now(),
            every,
            last: Mutex::new((Instant::now(), out)),
            json: false,
        }
    }
}

impl Progress for LogLines {
    fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        // Waits for a thread that is printing (rarely: a line every
        // `every`): skipping instead could drop the line of the last bytes.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let (when, out) = &mut *last;
        if when.elapsed() < self.every {
            return;
        }
        *when = Instant::now();
        // Read under the lock: lines never go backwards.
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed).max(1);
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        if self.json {
            let line = serde_json::json!({
                "time": json_now(),
                "level": "info",
                "message": format!("{}: {:.0}%", self.label, done as f64 * 100.0 / total as f64),
                "bytes_done": done,
                "bytes_total": total,
                "bytes_per_second": rate as u64,
            });
            let _ = writeln!(out, "{line}");
            return;
        }
        let _ = writeln!(
            out,
            "{} {}: {:.0}% ({} of {}, {}/s)",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            self.label,
            done as f64 * 100.0 / total as f64,
            HumanBytes(done),
            HumanBytes(total),
            HumanBytes(rate as u64)
        );
    }

    fn note(&self, _: &str) {}
}

pub use crate::time::format_ms;

/// Bytes in at most 8 characters, three significant digits: `842 MiB`,
/// `1.21 GiB`, `3.52 KiB`, `0 B`.
pub fn short_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = n as f64;
    let mut unit = 0;
    // 999.5 and above would round to 1000, four digits.
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match (unit, value) {
        (0, _) => format!("{n} B"),
        (_, v) if v < 9.995 => format!("{v:.2} {}", UNITS[unit]),
        (_, v) if v < 99.95 => format!("{v:.1} {}", UNITS[unit]),
        (_, v) => format!("{v:.0} {}", UNITS[unit]),
    }
}

/// Lays out rows as left-aligned columns separated by two spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    Columns::new(header).part(rows)
}

/// A [`table`] printed a part at a time (`list` of a fleet, group by
/// group), so that a part need not wait for the rows after it: a column is
/// as wide as its widest cell so far (or a width known beforehand), and
/// never narrows. A later part with a wider cell moves the columns right
/// of it from there on. One part alone is exactly [`table`].
pub struct Columns {
    header: Vec<String>,
    widths: Vec<usize>,
    started: bool,
}

impl Columns {
    pub fn new(header: &[&str]) -> Columns {
        Columns {
            header: header.iter().map(|h| h.to_string()).collect(),
            widths: header.iter().map(|h| h.chars().count()).collect(),
            started: false,
        }
    }

    /// Makes column `i` at least `width` characters wide.
    pub fn at_least(&mut self, i: usize, width: usize) {
        self.widths[i] = self.widths[i].max(width);
    }

    /// The lines of `rows`, after the header in the first part.
    pub fn part(&mut self, rows: &[Vec<String>]) -> String {
        for row in rows {
            for (w, cell) in self.widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            out.push_str(&self.line(&self.header));
        }
        for row in rows {
            out.push_str(&self.line(row));
        }
        out
    }

    fn line(&self, cells: &[String]) -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&self.widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bytes_keep_three_digits() {
        let cases = [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "0.98 KiB"),
            (3_604, "3.52 KiB"),
            (882_981_650, "842 MiB"),
            (1_299_227_607, "1.21 GiB"),
            (1_048_051_712, "0.98 GiB"),
            (u64::MAX, "16.0 EiB"),
        ];
        for (n, text) in cases {
            assert_eq!(short_bytes(n), text, "{n}");
            assert!(short_bytes(n).len() <= 8);
        }
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["ID", "N"],
            &[
                vec!["abc".into(), "1".into()],
                vec!["a".into(), "22".into()],
            ],
        );
        assert_eq!(t, "ID   N\nabc  1\na    22\n");

        // In parts: the first as wide as it needs, later ones widen.
        let mut c = Columns::new(&["ID", "N"]);
        c.at_least(1, 2);
        assert_eq!(c.part(&[vec!["a".into(), "1".into()]]), "ID  N\na   1\n");
        assert_eq!(c.part(&[]), "");
        assert_eq!(c.part(&[vec!["abcd".into(), "1".into()]]), "abcd  1\n");
        assert_eq!(c.part(&[vec!["b".into(), "22".into()]]), "b     22\n");
    }

    /// What a `LogLines` printed, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(str::to_string).collect()
        }
    }

    /// Without a terminal (cron, journald), progress is one plain line per
    /// interval with a UTC timestamp, the share done and the rate; a run
    /// shorter than the interval prints nothing at all.
    #[test]
    fn log_lines_for_cron_are_timestamped_and_rate_limited() {
        let quiet = Captured::default();
        let p = LogLines::writing_to("backup", LOG_EVERY, Box::new(quiet.clone()));
        p.set_total(4 << 20);
        for _ in 0..4 {
            p.advance(1 << 20);
        }
        assert!(quiet.lines().is_empty(), "{:?}", quiet.lines());

        let every = Captured::default();
        let p = LogLines::writing_to("backup", Duration::ZERO, Box::new(every.clone()));
        p.set_total(4 << 20);
        p.advance(1 << 20);
        p.advance(1 << 20);
        let lines = every.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let (stamp, rest) = lines[1].split_once(' ').unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
            "{stamp}"
        );
        assert!(
            rest.starts_with("backup: 50% (2.00 MiB of 4.00 MiB, "),
            "{rest}"
        );
        assert!(rest.ends_with("/s)"), "{rest}");
    }

    /// Threads that advance at once never drop the last line, and lines
    /// never go backwards (verify advances from its readers and its
    /// fetching threads together).
    #[test]
    fn log_lines_from_many_threads_end_at_what_was_done() {
        let every = Captured::default();
        let p = LogLines::writing_to("verify", Duration::ZERO, Box::new(every.clone()));
        p.set_total(8 * 1000);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| (0..1000).for_each(|_| p.advance(1)));
            }
        });
        let shares: Vec<u64> = (every.lines().iter())
            .map(|l| l.split_once("verify: ").unwrap().1)
            .map(|l| l.split_once('%').unwrap().0.parse().unwrap())
            .collect();
        assert_eq!(shares.len(), 8000);
        assert_eq!(shares.last(), Some(&100), "{:?}", &shares[7990..]);
        assert!(shares.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(format_ms(1_767_225_600_000), "2026-01-01 00:00");
    }
}
