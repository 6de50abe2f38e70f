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
//! (`list --json` of a fleet) has its long array spooled: [`Spool`] writes
//! the array's elements to an anonymous temporary file as they are made,
//! and [`close_stdout_stream`] prints the whole document once the run has
//! ended, the array copied from the file. So such a document obeys the same
//! rules as every other (it begins with `ok`; a run that fails part way
//! prints the error document instead), and memory holds one element at a
//! time, whatever the array's length.
//!
//! `docs/json/` has a JSON Schema per document, and the README's "JSON
//! output" section is generated from them; a test validates real outputs
//! against the schemas.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
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

/// The long array of a document, spooled to an anonymous temporary file
/// element by element (module documentation). Laid out as
/// `serde_json::to_string_pretty` prints a document whole.
pub struct Spool {
    /// The document's fields before the array, in order.
    head: Map<String, Value>,
    array: String,
    file: BufWriter<File>,
    count: u64,
}

/// Where the spooled array goes in the pretty-printed document: a string
/// no field holds (it would print as `"\u0000..."`).
const SPOOLED: &str = "\u{0}promsnap-spooled-array";

impl Spool {
    /// A document with `fields` (an object's fields, in their order), then
    /// the array `array`, in a new anonymous temporary file.
    pub fn new(fields: &impl Serialize, array: &str) -> Result<Spool> {
        let file = tempfile::tempfile().map_err(|e| {
            crate::error::local_io(e, "could not create a temporary file for the JSON document")
        })?;
        Ok(Spool {
            head: Document::new(fields)?.0,
            array: array.to_string(),
            file: BufWriter::new(file),
            count: 0,
        })
    }

    /// Adds an element to the array.
    pub fn element(&mut self, value: &impl Serialize) -> Result<()> {
        let text = indent(&serde_json::to_string_pretty(value)?, "    ");
        let sep = if self.count == 0 { "" } else { "," };
        write!(self.file, "{sep}\n    {text}")
            .map_err(|e| crate::error::local_io(e, "could not spool the JSON document"))?;
        self.count += 1;
        Ok(())
    }

    /// Prints the whole document to `out`: `document`'s envelope
    /// (`schema_version`, `command`, `ok`), the fields given to
    /// [`new`](Self::new), the array, then `document`'s other fields.
    pub fn finish(self, document: &Value, out: &mut impl Write) -> Result<()> {
        let Value::Object(end) = document else {
            bail!("a --json document must be an object, not {document}");
        };
        let mut whole = Map::new();
        for key in ["schema_version", "command", "ok"] {
            if let Some(v) = end.get(key) {
                whole.insert(key.to_string(), v.clone());
            }
        }
        whole.extend(self.head);
        whole.insert(self.array.clone(), json!(SPOOLED));
        for (k, v) in end {
            if !whole.contains_key(k) {
                whole.insert(k.clone(), v.clone());
            }
        }
        let text = serde_json::to_string_pretty(&Value::Object(whole))?;
        let marker = serde_json::to_string(SPOOLED)?;
        let (before, after) = text
            .split_once(&marker)
            .expect("the spooled array's place is in the document");
        let mut file = self.file.into_inner().map_err(|e| {
            crate::error::local_io(e.into_error(), "could not spool the JSON document")
        })?;
        file.rewind()?;
        out.write_all(before.as_bytes())?;
        out.write_all(b"[")?;
        io::copy(&mut file, out)?;
        match self.count {
            0 => out.write_all(b"]")?,
            _ => out.write_all(b"\n  ]")?,
        }
        out.write_all(after.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    }
}

/// Pretty-printed JSON one level deeper: no string holds a raw newline, so
/// every newline starts a line of the value.
fn indent(text: &str, by: &str) -> String {
    text.replace('\n', &format!("\n{by}"))
}

/// The document being spooled for stdout, if one is: `conclude` prints it
/// once the run has ended, whoever ended it (an interruption too).
static STDOUT_SPOOL: Mutex<Option<Spool>> = Mutex::new(None);

/// Starts spooling a document for stdout (see [`Spool::new`]).
pub fn open_stdout_stream(fields: &impl Serialize, array: &str) -> Result<()> {
    let spool = Spool::new(fields, array)?;
    *STDOUT_SPOOL.lock().unwrap_or_else(|e| e.into_inner()) = Some(spool);
    Ok(())
}

/// Adds to the document being spooled for stdout.
pub fn with_stdout_stream(f: impl FnOnce(&mut Spool) -> Result<()>) -> Result<()> {
    let mut open = STDOUT_SPOOL.lock().unwrap_or_else(|e| e.into_inner());
    f(open.as_mut().expect("a document spooled for stdout"))
}

/// Prints the document spooled for stdout, ended by `document` (what
/// [`finished`] made of the run); `None` when none is spooled, or when the
/// run failed (`document` is the error document, which the caller prints
/// instead; the spool is thrown away).
pub fn close_stdout_stream(document: &Value) -> Option<Result<()>> {
    let spool = STDOUT_SPOOL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()?;
    if document.get("error").is_some_and(|e| !e.is_null()) {
        return None;
    }
    let mut out = BufWriter::new(io::stdout().lock());
    Some(match spool.finish(document, &mut out) {
        // The reader went away (`promsnap list --json | head`).
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    })
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
    fn a_spooled_document_is_the_document_printed_whole() {
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
            let end = finished(
                "list",
                ExitStatus::Problems,
                Document::new(&json!({"damaged": [{"id": "x"}]})).unwrap(),
                None,
            );
            let mut s = Spool::new(&fields, "snapshots").unwrap();
            for item in &items[..n] {
                s.element(item).unwrap();
            }
            let mut out = Vec::new();
            s.finish(&end, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            // Byte for byte what printing it whole gives.
            let printed = serde_json::to_string_pretty(&whole).unwrap() + "\n";
            assert_eq!(text, printed);
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
            assert_eq!(keys[..3], ["schema_version", "command", "ok"]);
        }
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
