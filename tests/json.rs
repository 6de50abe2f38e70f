//! The machine interface: every `--json` document of a real run matches its
//! schema in `docs/json/`, a run that cannot start still prints one (the
//! error document), a verify whose metrics fail says so on one line and in
//! its document, and the README's "JSON output" tables and exit-code table
//! say what the schemas and the binary do.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde_json::Value;

use promsnap::error::ExitStatus;

use crate::support::{self, bare, Run, Target};

/// The commands with a `--json` document, in the README's order, and the
/// error document every one of them prints when it fails.
const SCHEMAS: [&str; 8] = [
    "init",
    "backup",
    "list",
    "restore",
    "prune",
    "verify",
    "check-dir",
    "error",
];

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn schema(name: &str) -> Value {
    let path = repo_file(&format!("docs/json/{name}.schema.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that `run` printed one JSON document valid against the schema
/// `name` and exited `code`; returns the document.
pub(crate) fn valid(name: &str, run: &Run, code: i32) -> Value {
    assert_eq!(
        run.code, code,
        "exit code of the {name} run; stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let doc = run.json();
    let validator = jsonschema::draft202012::new(&schema(name))
        .unwrap_or_else(|e| panic!("docs/json/{name}.schema.json is not a valid schema: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} document does not match docs/json/{name}.schema.json:\n{}\n{doc:#}",
        errors.join("\n")
    );
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["ok"], code == 0, "ok must mean exit 0: {doc:#}");
    doc
}

/// One pass through every command on a local repository, the way a script
/// would drive it, including HA skips, --prune, --config-to, restore
/// windows, damage found and failures; each document is validated.
#[test]
fn every_json_document_matches_its_schema() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let data = data.to_str().unwrap();
    let rules = work.path().join("rules.yml");
    fs::write(&rules, "groups: []\n").unwrap();
    let config = work.path().join("promsnap.toml");
    fs::write(&config, "[prune]\nkeep_last = 5\n").unwrap();
    let target = Target::uninitialised(&work.path().join("repo"));

    let init = valid("init", &target.run(&["init", "--json"]), 0);
    assert_eq!(init["adopted_existing"], false);

    let backup = |extra: &[&str]| {
        let mut args = vec!["backup", "--from-dir", data, "--json"];
        args.extend_from_slice(extra);
        target.run(&args)
    };
    let first = valid(
        "backup",
        &backup(&["--instance", "a", "--include", rules.to_str().unwrap()]),
        0,
    );
    assert_eq!(first["skipped"], false);
    assert_eq!(first["min_time"], "2026-01-01T00:00:00Z");
    assert_eq!(first["min_time_ms"], support::FIXTURE_START * 1000);
    let stored = valid(
        "backup",
        &backup(&["--instance", "b", "--ha-group", "g"]),
        0,
    );
    assert_eq!(stored["ha_group"], "g");
    let skipped = valid(
        "backup",
        &backup(&["--instance", "c", "--ha-group", "g"]),
        0,
    );
    assert_eq!(skipped["skipped"], true, "{skipped:#}");
    let pruned = target.run(&[
        "--config",
        config.to_str().unwrap(),
        "backup",
        "--from-dir",
        data,
        "--instance",
        "a",
        "--prune",
        "--json",
    ]);
    let pruned = valid("backup", &pruned, 0);
    assert_eq!(pruned["prune"]["snapshots_removed"], 0, "{pruned:#}");

    let list = valid("list", &target.run(&["list", "--json"]), 0);
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 3);

    let verified = valid("verify", &target.run(&["verify", "--json"]), 0);
    // Three snapshots of the same three blocks in two groups (a, and g):
    // 9 references; each group stores each block below its own directory,
    // one recipe and two packs (chunk data, index and meta.json).
    assert_eq!(
        (
            &verified["snapshots_checked"],
            &verified["block_references"],
            &verified["objects_checked"]
        ),
        (&3.into(), &9.into(), &18.into())
    );
    let scratch = work.path().join("scratch");
    let deep = target.run(&[
        "verify",
        "latest",
        "--instance",
        "a",
        "--deep",
        "--restore-test",
        "--scratch-dir",
        scratch.to_str().unwrap(),
        "--json",
    ]);
    let deep = valid("verify", &deep, 0);
    assert_eq!(deep["restore_test"][0]["blocks_loaded_by_promtool"], 3);

    let dry = target.run(&["prune", "--keep-last", "1", "--dry-run", "--json"]);
    let dry = valid("prune", &dry, 0);
    assert_eq!(dry["snapshots_removed"], 1, "{dry:#}");

    let first_id = first["snapshot_id"].as_str().unwrap();
    let restored = work.path().join("restored");
    let restored_s = restored.to_str().unwrap();
    let configs = work.path().join("configs");
    let run = target.run(&[
        "restore",
        first_id,
        "--data-dir",
        restored_s,
        "--from",
        "2026-01-01T02:30:00Z",
        "--config-to",
        configs.to_str().unwrap(),
        "--json",
    ]);
    let restore = valid("restore", &run, 0);
    assert_eq!(restore["blocks_selected"], 2, "{restore:#}");
    assert_eq!(restore["time_range"]["from"], "2026-01-01T02:30:00Z");
    let run = target.run(&[
        "restore",
        first_id,
        "--no-data",
        "--config-to",
        work.path().join("configs-only").to_str().unwrap(),
        "--json",
    ]);
    let configs_only = valid("restore", &run, 0);
    assert_eq!(configs_only["data_dir"], Value::Null);

    let check = valid("check-dir", &bare(&["check-dir", restored_s, "--json"]), 0);
    assert_eq!(check["blocks_checked"], 2);
    let damaged = work.path().join("damaged");
    let block = &support::fixture_blocks()[0];
    let copy = damaged.join(block.file_name().unwrap());
    support::copy_dir(block, &copy);
    fs::write(copy.join("chunks/000001"), b"not a chunk segment").unwrap();
    let run = bare(&["check-dir", damaged.to_str().unwrap(), "--json"]);
    let check = valid("check-dir", &run, 3);
    assert_eq!(check["blocks_damaged"], 1);
    assert!(!check["results"][0]["problems"]
        .as_array()
        .unwrap()
        .is_empty());

    // Damage in the repository: problems, exit 3. A block's recipe goes.
    // One of instance a's (recipes/a/<ULID>/<fp>.json), which its two
    // snapshots reference; group g stores its own copy for its one.
    let mut dir = work.path().join("repo/recipes/a");
    let recipe = loop {
        let first = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        match first.is_dir() {
            true => dir = first,
            false => break first,
        }
    };
    assert_eq!(recipe.extension().unwrap(), "json", "{}", recipe.display());
    fs::remove_file(&recipe).unwrap();
    let broken = valid("verify", &target.run(&["verify", "--quick", "--json"]), 3);
    assert_eq!(broken["problems"][0]["kind"], "missing_object");
    assert_eq!(
        broken["problems"][0]["snapshots"].as_array().unwrap().len(),
        2
    );

    // A damaged manifest: list shows it apart and exits 3; prune keeps
    // every object for it and exits 3.
    let repo = work.path().join("repo");
    let manifest = support::manifest_path(&repo, first_id);
    fs::write(&manifest, b"{\"format_version\": 1, \"id\"").unwrap();
    let list = valid("list", &target.run(&["list", "--json"]), 3);
    assert_eq!(list["damaged"][0]["id"], first_id, "{list:#}");
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 2);
    let kept = valid(
        "prune",
        &target.run(&["prune", "--keep-last", "5", "--json"]),
        3,
    );
    assert_eq!(
        kept["damaged"][0]["key"],
        support::manifest_key(&repo, &manifest)
    );
    assert_eq!(kept["damaged_forgotten"], false);

    // A command that fails once it runs prints the error document.
    let run = target.run(&["restore", "no-such-id", "--data-dir", restored_s, "--json"]);
    let failed = valid("error", &run, 2);
    assert_eq!(failed["command"], "restore");
}

/// A run that cannot even start (no repository given, a configuration file
/// that does not parse, a location that holds no repository, another run
/// holding the lock) still prints exactly one JSON document, with the same
/// error, causes and hint as stderr, and the exit code in it.
#[test]
fn a_run_that_cannot_start_still_prints_one_json_document() {
    let work = tempfile::tempdir().unwrap();

    let run = bare(&["list", "--json"]);
    let doc = valid("error", &run, 2);
    assert_eq!(doc["command"], "list");
    assert_eq!(doc["error"]["message"], "no repository given");
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(doc["error"]["hint"].as_str().unwrap().contains("--repo"));
    assert!(
        run.stderr.contains("error: no repository given"),
        "{}",
        run.stderr
    );

    let bad = work.path().join("bad.toml");
    fs::write(&bad, "[repository\nurl = ").unwrap();
    let run = bare(&["--config", bad.to_str().unwrap(), "verify", "--json"]);
    let doc = valid("error", &run, 2);
    let text = doc["error"].to_string();
    assert!(text.contains("bad.toml"), "{doc:#}");

    let nowhere = Target::uninitialised(&work.path().join("nothing"));
    let doc = valid(
        "error",
        &nowhere.run(&["backup", "--from-dir", "/x", "--json"]),
        2,
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no promsnap repository"),
        "{doc:#}"
    );

    let target = Target::local(&work.path().join("repo"));
    let lock_file = work.path().join("held.lock");
    let held = File::create(&lock_file).unwrap();
    held.lock().unwrap();
    let run = target.run(&[
        "verify",
        "--json",
        "--lock-file",
        lock_file.to_str().unwrap(),
    ]);
    let doc = valid("error", &run, 4);
    assert!(run.stderr.contains("holds the lock"), "{}", run.stderr);
    assert_eq!(doc["error"]["exit_code"], 4);
    drop(held);
}

/// Backups that verify fine but whose metrics cannot be recorded: exit 3,
/// said on one line that names both facts (not "no problems" and a stray
/// warning), and with --json in the document's `metrics_error`.
#[test]
fn verify_whose_metrics_fail_says_so_on_one_line_and_in_json() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let target = Target::local(&work.path().join("repo"));
    target.ok(&["backup", "--from-dir", data.to_str().unwrap()]);
    // A metrics file below a regular file can never be written.
    let not_a_dir = work.path().join("file");
    fs::write(&not_a_dir, "").unwrap();
    let metrics = not_a_dir.join("promsnap.prom");
    let metrics = metrics.to_str().unwrap();

    let run = target.run(&["verify", "--metrics-file", metrics]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("metrics"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line about the metrics:\n{}",
        run.stderr
    );
    for needle in [
        "found no problems",
        "exits 3",
        "could not write the metrics file",
        metrics,
    ] {
        assert!(
            lines[0].contains(needle),
            "{needle:?} missing: {}",
            lines[0]
        );
    }

    let gateway = format!("http://127.0.0.1:{}", support::free_port());
    let run = target.run(&[
        "verify",
        "--json",
        "--retries",
        "0",
        "--pushgateway",
        &gateway,
    ]);
    let doc = valid("verify", &run, 3);
    assert_eq!(doc["problems"], Value::Array(vec![]));
    let why = doc["metrics_error"].as_str().unwrap();
    assert!(
        why.contains("could not push the metrics") && why.contains(&gateway),
        "{why}"
    );
    assert_eq!(
        run.stderr.lines().filter(|l| l.contains(&gateway)).count(),
        1,
        "{}",
        run.stderr
    );
}

/// The README's "JSON output" tables are generated from the schemas
/// (`scripts/update-json-docs.sh` rewrites them); this fails while they
/// differ, so a field cannot be added to a schema without its line in the
/// README, nor described there without being in the schema.
#[test]
fn readme_json_section_is_generated_from_the_schemas() {
    let readme_path = repo_file("README.md");
    let readme = fs::read_to_string(&readme_path).unwrap();
    let (begin, end) = (
        "<!-- generated from docs/json by tests/json.rs: begin -->\n",
        "<!-- generated from docs/json by tests/json.rs: end -->",
    );
    let start = readme
        .find(begin)
        .expect("README lacks the JSON begin marker")
        + begin.len();
    let stop = readme.find(end).expect("README lacks the JSON end marker");
    let expected: String = SCHEMAS.iter().map(|n| document_section(n)).collect();
    if readme[start..stop] == expected {
        return;
    }
    if std::env::var_os("PROMSNAP_UPDATE_README").is_some() {
        let updated = format!("{}{expected}{}", &readme[..start], &readme[stop..]);
        fs::write(&readme_path, updated).unwrap();
        return;
    }
    panic!(
        "README.md's JSON output section does not match docs/json/*.schema.json: \
         run scripts/update-json-docs.sh"
    );
}

/// The README's exit-code table lists exactly the codes promsnap uses, with
/// their meaning; the error document's codes are among them.
#[test]
fn readme_exit_code_table_matches_the_binary() {
    let readme = fs::read_to_string(repo_file("README.md")).unwrap();
    let section = &readme[readme.find("## Exit codes").expect("an Exit codes section")..];
    let rows: Vec<(u8, &str)> = section
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].parse().expect("a numeric code"), cells[1])
        })
        .collect();
    let codes: Vec<u8> = ExitStatus::ALL.iter().map(|s| s.code()).collect();
    let listed: Vec<u8> = rows.iter().map(|r| r.0).collect();
    assert_eq!(listed, codes, "README's exit codes vs ExitStatus::ALL");
    for (status, (_, meaning)) in ExitStatus::ALL.iter().zip(&rows) {
        assert!(
            meaning.starts_with(status.meaning()),
            "README row {} says {meaning:?}, not {:?}",
            status.code(),
            status.meaning()
        );
    }
    let error = schema("error");
    for code in error["$defs"]["error"]["properties"]["exit_code"]["enum"]
        .as_array()
        .unwrap()
    {
        let code = code.as_u64().unwrap() as u8;
        assert!(
            codes.contains(&code),
            "error.schema.json allows exit code {code}"
        );
    }
}

// ------------------------------------------------------ README generation

/// The README text for one schema: a heading, its description, and a table
/// of fields for the document and for every object it defines.
fn document_section(name: &str) -> String {
    let s = schema(name);
    let file = format!("docs/json/{name}.schema.json");
    let heading = match name {
        "error" => "### The error document".to_string(),
        _ => format!("### `{name} --json`"),
    };
    let mut out = format!(
        "{heading}\n\n{} Schema: [{file}]({file}).\n\n",
        text(&s["description"])
    );
    let defs = s["$defs"].as_object().cloned().unwrap_or_default();
    let mut variants = BTreeSet::new();
    match s["oneOf"].as_array() {
        Some(branches) => {
            for b in branches {
                let def = def_name(b["$ref"].as_str().unwrap());
                variants.insert(def.to_string());
                let v = &defs[def];
                out.push_str(&format!(
                    "When {}\n\n",
                    lowercase_first(&text(&v["description"]))
                ));
                out.push_str(&fields_table(v));
            }
        }
        None => out.push_str(&fields_table(&s)),
    }
    for (def, v) in &defs {
        if variants.contains(def) || v.get("properties").is_none() {
            continue;
        }
        out.push_str(&format!("`{def}` objects: {}\n\n", text(&v["description"])));
        out.push_str(&fields_table(v));
    }
    out
}

fn fields_table(object: &Value) -> String {
    let mut out = String::from("| field | type | meaning |\n|---|---|---|\n");
    for (field, p) in object["properties"].as_object().unwrap() {
        let meaning = p["description"]
            .as_str()
            .unwrap_or_else(|| panic!("field {field} has no description"));
        out.push_str(&format!(
            "| `{field}` | {} | {} |\n",
            type_of(p),
            meaning.replace('|', "\\|")
        ));
    }
    out.push('\n');
    out
}

/// A property's type in words: `integer or null`, `array of problem`.
fn type_of(p: &Value) -> String {
    if let Some(c) = p.get("const") {
        return format!(
            "always `{}`",
            c.as_str().map_or(c.to_string(), str::to_string)
        );
    }
    if let Some(values) = p.get("enum").and_then(Value::as_array) {
        let kind = if values.iter().all(Value::is_string) {
            "string"
        } else {
            "integer"
        };
        return match values.len() {
            0..=4 => values
                .iter()
                .map(|v| format!("`{}`", v.as_str().map_or(v.to_string(), str::to_string)))
                .collect::<Vec<_>>()
                .join(" or "),
            _ => kind.to_string(),
        };
    }
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        return match def_name(r) {
            "time" => "time".to_string(),
            def => format!("`{def}`"),
        };
    }
    if let Some(alts) = p.get("anyOf").and_then(Value::as_array) {
        return alts.iter().map(type_of).collect::<Vec<_>>().join(" or ");
    }
    let types: Vec<String> = match &p["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap().to_string()).collect(),
        _ => panic!("a property without a type: {p}"),
    };
    types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", type_of(&p["items"])),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn def_name(reference: &str) -> &str {
    reference
        .strip_prefix("#/$defs/")
        .unwrap_or_else(|| panic!("only local $defs references: {reference}"))
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a description is missing near {v}"))
        .to_string()
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
