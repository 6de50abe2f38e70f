//! The command line as a user meets it: help that teaches, completions that
//! are current, broken pipes that are not errors.

use crate::support::{self, bare};

#[test]
fn committed_completions_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in [
        ("bash", "promsnap.bash"),
        ("zsh", "_promsnap"),
        ("fish", "promsnap.fish"),
        ("elvish", "promsnap.elv"),
        ("powershell", "_promsnap.ps1"),
    ] {
        let run = bare(&["completions", shell]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout.contains("restore"),
            "{shell} completion lacks subcommands"
        );
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            committed == run.stdout,
            "completions/{file} is stale: run `cargo run -- completions {shell} > completions/{file}` \
             (or scripts/update-completions.sh)"
        );
    }
}

#[test]
fn help_explains_the_commands_and_exit_codes() {
    let run = bare(&["--help"]);
    assert_eq!(run.code, 0);
    for needle in [
        "backup",
        "restore",
        "list",
        "Exit codes: 0 ok, 1 failed, 2 usage",
    ] {
        assert!(
            run.stdout.contains(needle),
            "--help lacks {needle:?}:\n{}",
            run.stdout
        );
    }
    let run = bare(&["backup", "--help"]);
    for needle in [
        "--web.enable-admin-api",
        "--prometheus-url",
        "--from-dir",
        "PROMSNAP_REPO",
        "--zstd-level",
    ] {
        assert!(
            run.stdout.contains(needle),
            "backup --help lacks {needle:?}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(bare(&["frobnicate"]).code, 2);
    assert_eq!(
        bare(&["backup", "--zstd-level", "99", "--repo", "x"]).code,
        2
    );
}

/// `promsnap completions bash | true`: the reader is gone before promsnap
/// writes, so the write fails every time (with `| head -n 1` it fails only
/// when the output outgrows the pipe buffer). A closed pipe ends the output,
/// not the run: exit 0 and nothing on stderr, as for `ls | head`.
#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    let (reader, writer) = std::io::pipe().expect("create a pipe");
    drop(reader);
    let out = support::promsnap()
        .args(["completions", "bash"])
        .stdout(writer)
        .output()
        .expect("run promsnap");
    assert_eq!(
        out.status.code(),
        Some(0),
        "promsnap ended with {} when its reader went away; stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "a closed pipe printed to stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The README's Development section lists every module under src/ (files
/// and directories), and nothing that is not there.
#[test]
fn the_readme_module_list_matches_the_tree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## Development")
        .nth(1)
        .expect("a Development section");
    let listed: std::collections::BTreeSet<String> = section
        .lines()
        .filter(|l| l.starts_with("src/"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let tree: std::collections::BTreeSet<String> = std::fs::read_dir(root.join("src"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            match e.file_type().unwrap().is_dir() {
                true => format!("src/{name}/"),
                false => format!("src/{name}"),
            }
        })
        .collect();
    assert_eq!(listed, tree, "README Development section vs src/");
}

/// `--version` names the commit the binary was built from and the build
/// date, e.g. `promsnap 0.1.0 (abc1234 2026-11-29)`: `unknown` only when
/// built outside a git checkout.
#[test]
fn version_names_the_commit_and_the_build_date() {
    let run = bare(&["--version"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.stdout.trim();
    let inner = text
        .strip_prefix(&format!("promsnap {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--version printed {text:?}"));
    let (commit, date) = inner.split_once(' ').expect("a commit and a date");
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".git")
        .exists();
    let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
    match checkout {
        true => assert!(
            hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a commit: {commit:?} in {text:?}"
        ),
        false => assert_eq!(commit, "unknown", "{text:?}"),
    }
    use chrono::Datelike;
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .unwrap_or_else(|e| panic!("not a date: {date:?} in {text:?} ({e})"));
    assert!(date.year() >= 2024, "{text:?}");
}
