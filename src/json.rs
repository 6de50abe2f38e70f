//! The `--json` contract: what every document promsnap prints shares.
//!
//! Scripts and alerting read these documents at 3 a.m., so their shape is
//! an interface like the exit codes. Each command builds its own fields (a
//! struct next to its human output under `commands/`); this module wraps
//! them and fixes how values are written, once for all commands:
//!
//! - exactly one JSON object per run on stdout, also when the command
//!   fails or cannot start (the error document, [`failed`]);
//! - every document begins with `schema_version` (bumped when a field
//!   changes meaning or goes away), `command` and `ok`, which is true
//!   exactly when promsnap exits 0;
//! - a field that does not apply is `null`, never left out;
//! - times are RFC 3339 strings in UTC to the second
//!   (`2026-01-01T03:00:00Z`); Prometheus's millisecond timestamps are also
//!   given exactly, as integers, in fields ending in `_ms`;
//! - durations are seconds in fields ending in `_seconds`; sizes are bytes
//!   in fields starting with `bytes`; every other number is a count named
//!   for what it counts.
//!
//! A document whose command reads more than it should hold at once
//! (`list --json` of a fleet) is written while it is made: [`Streamer`]
//! writes its head and its long array element by element, and
//! [`close_stdout_stream`] ends it once the run has ended, with the fields
//! only the end knows (`ok`, and `error` when the run failed part way, so
//! that stdout still holds one JSON object). Such a document ends with `ok`
//! instead of beginning with it; the order of an object's fields means
//! nothing in JSON.
//!
//! `docs/json/` has a JSON Schema per document, and the README's "JSON
//! output" section is generated from them; a test validates real outputs
//! against the schemas.

use std::io::{BufWriter, Stdout, Write};
use std::sync::Mutex;

use anyhow::{bail, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{self, ExitStatus, Interrupted};

/// The version of the documents' shape; see `docs/json/`.
pub const SCHEMA_VERSION: u64 = 1;

/// A command's own fields, to be printed once the run has ended (and its
/// metrics were recorded, which decides `ok` and `metrics_error`).
#[derive(Debug, Clone, Default)]
pub struct Document(Map<String, Value>);

impl Document {
    /// The fields of `value`, which must serialize as an object.
    pub fn new(value: &impl Serialize) -> Result<Document> {
        match serde_json::to_value(value)? {
            Value::Object(fields) => Ok(Document(fields)),
            other => bail!("a --json document must be an object, not {other}"),
        }
    }
}

/// The document of a run that ended with `status` (success, or exit 3 for
/// problems found). `metrics_error` is `Some` for the commands that record
/// metrics: the field is there, `null` unless recording them failed.
pub fn finished(
    command: &str,
    status: ExitStatus,
    document: Document,
    metrics_error: Option<Option<&str>>,
) -> Value {
    let mut out = envelope(command, status);
    out.extend(document.0);
    if let Some(why) = metrics_error {
        out.insert("metrics_error".into(), json!(why));
    }
    Value::Object(out)
}

/// The document of a run that failed or could not start: the error as the
/// human output prints it (message, causes, hint) and the exit code.
pub fn failed(command: &str, err: &anyhow::Error, metrics_error: Option<&str>) -> Value {
    let status = error::status_of(err);
    let hint = match err.downcast_ref::<Interrupted>() {
        Some(_) => Some(INTERRUPTED_HINT),
        None => error::hint_of(err),
    };
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    let mut out = envelope(command, status);
    out.insert(
        "error".into(),
        json!({
            "message": err.to_string(),
            "causes": causes,
            "hint": hint,
            "exit_code": status.code(),
        }),
    );
    out.insert("metrics_error".into(), json!(metrics_error));
    Value::Object(out)
}

/// What an interrupted run tells the user (stderr and the error document).
pub const INTERRUPTED_HINT: &str =
    "stopped cleanly; nothing half-done was kept, run the command again to finish";

fn envelope(command: &str, status: ExitStatus) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("schema_version".into(), json!(SCHEMA_VERSION));
    out.insert("command".into(), json!(command));
    out.insert("ok".into(), json!(status == ExitStatus::Success));
    out
}

/// A point in time as every document writes it: RFC 3339, UTC, to the second.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A Prometheus millisecond timestamp as [`time`] writes it (the second it
/// falls in); `None` outside chrono's range.
pub fn time_ms(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(time)
}

/// The time range of some blocks, in both forms: `min_time` is the first
/// millisecond with data, `max_time` the end (exclusive, as in Prometheus's
/// meta.json). All `null` when there are no blocks.
#[derive(Debug, Clone, Serialize)]
pub struct DataRange {
    pub min_time: Option<String>,
    pub max_time: Option<String>,
    pub min_time_ms: Option<i64>,
    pub max_time_ms: Option<i64>,
}

impl DataRange {
    pub fn new(min_ms: Option<i64>, max_ms: Option<i64>) -> DataRange {
        DataRange {
            min_time: min_ms.and_then(time_ms),
            max_time: max_ms.and_then(time_ms),
            min_time_ms: min_ms,
            max_time_ms: max_ms,
        }
    }
}

/// A document written a part at a time, pretty-printed as
/// `serde_json::to_string_pretty` prints it whole (one field a line, arrays
/// of objects one element after the other).
pub struct Streamer<W: Write> {
    out: W,
    /// The top-level fields written so far (the end writes the others).
    written: Vec<String>,
    /// Elements written to the open array, if one is open.
    array: Option<usize>,
    /// The reader went away (`promsnap list --json | head`): nothing more
    /// is written, and that is not an error.
    gone: bool,
}

impl<W: Write> Streamer<W> {
    /// Starts the document: the envelope's `schema_version` and `command`,
    /// then `fields` (an object's fields, in their order).
    pub fn new(out: W, command: &str, fields: &impl Serialize) -> Result<Self> {
        let mut s = Streamer {
            out,
            written: Vec::new(),
            array: None,
            gone: false,
        };
        s.write("{")?;
        s.field("schema_version", &json!(SCHEMA_VERSION))?;
        s.field("command", &json!(command))?;
        for (name, value) in Document::new(fields)?.0 {
            s.field(&name, &value)?;
        }
        Ok(s)
    }

    /// Opens the array field `name`; [`Streamer::element`] adds to it.
    pub fn begin_array(&mut self, name: &str) -> Result<()> {
        self.end_array()?;
        self.key(name)?;
        self.write("[")?;
        self.array = Some(0);
        Ok(())
    }

    /// One element of the open array.
    pub fn element(&mut self, value: &impl Serialize) -> Result<()> {
        let n = self.array.expect("an open array");
        let text = indent(&serde_json::to_string_pretty(value)?, "    ");
        let sep = if n == 0 { "" } else { "," };
        self.write(&format!("{sep}\n    {text}"))?;
        self.array = Some(n + 1);
        Ok(())
    }

    /// Sends what is buffered on to the reader.
    pub fn flush(&mut self) -> Result<()> {
        let result = self.out.flush();
        self.check(result)
    }

    /// Ends the document with the fields of `document` not yet written (it
    /// is the whole document as [`finished`] or [`failed`] make it).
    pub fn close(mut self, document: &Value) -> Result<W> {
        self.end_array()?;
        if let Value::Object(fields) = document {
            for (name, value) in fields {
                if !self.written.contains(name) {
                    self.field(name, value)?;
                }
            }
        }
        self.write("\n}\n")?;
        self.flush()?;
        Ok(self.out)
    }

    fn end_array(&mut self) -> Result<()> {
        match self.array.take() {
            Some(0) => self.write("]"),
            Some(_) => self.write("\n  ]"),
            None => Ok(()),
        }
    }

    fn key(&mut self, name: &str) -> Result<()> {
        let sep = if self.written.is_empty() { "" } else { "," };
        self.write(&format!("{sep}\n  {}: ", json!(name)))?;
        self.written.push(name.to_string());
        Ok(())
    }

    fn field(&mut self, name: &str, value: &Value) -> Result<()> {
        self.key(name)?;
        self.write(&indent(&serde_json::to_string_pretty(value)?, "  "))
    }

    fn write(&mut self, text: &str) -> Result<()> {
        if self.gone {
            return Ok(());
        }
        let result = self.out.write_all(text.as_bytes());
        self.check(result)
    }

    fn check(&mut self, result: std::io::Result<()>) -> Result<()> {
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.gone = true;
                Ok(())
            }
            other => Ok(other?),
        }
    }
}

/// Pretty-printed JSON one level deeper: no string holds a raw newline, so
/// every newline starts a line of the value.
fn indent(text: &str, by: &str) -> String {
    text.replace('\n', &format!("\n{by}"))
}

/// The document being streamed to stdout, if one is: `main` may end a run
/// (an interruption) while the command that opened it is not there to end
/// it, so it lives here, where [`close_stdout_stream`] finds it.
static STDOUT_STREAM: Mutex<Option<Streamer<BufWriter<Stdout>>>> = Mutex::new(None);

/// Starts streaming a document to stdout (see [`Streamer::new`]).
pub fn open_stdout_stream(command: &str, fields: &impl Serialize) -> Result<()> {
    let streamer = Streamer::new(BufWriter::new(std::io::stdout()), command, fields)?;
    *STDOUT_STREAM.lock().expect("the stream lock") = Some(streamer);
    Ok(())
}

/// Writes to the document being streamed to stdout.
pub fn with_stdout_stream(
    f: impl FnOnce(&mut Streamer<BufWriter<Stdout>>) -> Result<()>,
) -> Result<()> {
    let mut open = STDOUT_STREAM.lock().expect("the stream lock");
    f(open.as_mut().expect("a document streaming to stdout"))
}

/// Ends the document streaming to stdout with the rest of `document`;
/// `None` when no document is streaming (the caller prints `document`).
pub fn close_stdout_stream(document: &Value) -> Option<Result<()>> {
    let streamer = STDOUT_STREAM.lock().expect("the stream lock").take()?;
    Some(streamer.close(document).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Hinted;
    use anyhow::Context;

    #[test]
    fn times_are_utc_seconds_and_milliseconds_stay_exact() {
        let r = DataRange::new(Some(1_767_225_600_999), None);
        assert_eq!(r.min_time.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(r.min_time_ms, Some(1_767_225_600_999));
        assert_eq!((r.max_time, r.max_time_ms), (None, None));
    }

    #[test]
    fn a_streamed_document_is_the_document_printed_whole() {
        let fields = json!({"repository": "/r", "instance": null});
        let items = [json!({"id": "a", "n": [1, 2]}), json!({"id": "b", "n": []})];
        for n in [0, 1, 2] {
            let whole = finished(
                "list",
                ExitStatus::Problems,
                Document::new(&json!({
                    "repository": "/r", "instance": null,
                    "snapshots": &items[..n], "damaged": [{"id": "x"}],
                }))
                .unwrap(),
                None,
            );
            let mut s = Streamer::new(Vec::new(), "list", &fields).unwrap();
            s.begin_array("snapshots").unwrap();
            for item in &items[..n] {
                s.element(item).unwrap();
            }
            let text = String::from_utf8(s.close(&whole).unwrap()).unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, whole, "{text}");
            let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
            assert_eq!(keys[..2], ["schema_version", "command"]);
            assert_eq!(keys.last().unwrap().as_str(), "damaged");
            // Laid out as a document printed whole, up to the fields' order.
            if n == 2 {
                let pretty = serde_json::to_string_pretty(&whole["snapshots"]).unwrap();
                assert!(text.contains(&indent(&pretty, "  ")), "{text}");
            }
        }
    }

    /// A run that fails (or is interrupted) with its document half
    /// written still leaves one JSON object, which says it failed.
    #[test]
    fn a_streamed_document_cut_short_ends_as_a_failure() {
        let mut s = Streamer::new(Vec::new(), "list", &json!({"repository": "/r"})).unwrap();
        s.begin_array("snapshots").unwrap();
        s.element(&json!({"id": "a"})).unwrap();
        let err = anyhow::Error::new(Interrupted);
        let text = String::from_utf8(s.close(&failed("list", &err, None)).unwrap()).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["error"]["exit_code"], 130);
        assert_eq!(doc["snapshots"], json!([{"id": "a"}]));
    }

    #[test]
    fn documents_start_with_the_envelope_and_errors_keep_their_chain() {
        let doc = Document::new(&json!({"blocks": 3})).unwrap();
        let v = finished("list", ExitStatus::Success, doc, None);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["schema_version", "command", "ok", "blocks"]);
        assert!(Document::new(&json!([1])).is_err());

        let err: anyhow::Error = Err::<(), _>(anyhow::anyhow!("refused"))
            .context(Hinted::usage("no repository", "run promsnap init"))
            .unwrap_err();
        let v = failed("backup", &err, None);
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["message"], "no repository");
        assert_eq!(v["error"]["causes"], json!(["refused"]));
        assert_eq!(v["error"]["hint"], "run promsnap init");
        assert_eq!(v["error"]["exit_code"], 2);
        assert_eq!(v["metrics_error"], Value::Null);
    }
}
