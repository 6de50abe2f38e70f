//! The command line as a user meets it: help that teaches (each group of
//! options under its heading, examples that parse), a `list` that fits the
//! terminal, paths that can be pasted, a `--version` that names the build,
//! completions that are current and that know the repository, broken pipes
//! that are not errors.

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

/// The subcommands `promsnap --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let help = bare(&["--help"]).stdout;
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The man pages the package installs are what the binary generates: one
/// for promsnap and one per subcommand, each readable by `man`, and none
/// left over from a removed subcommand.
#[test]
fn committed_man_pages_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let subs = subcommands();
    assert!(subs.iter().any(|s| s == "restore"), "{subs:?}");
    let mut expected = vec![("promsnap.1".to_string(), bare(&["man"]))];
    for sub in &subs {
        expected.push((format!("promsnap-{sub}.1"), bare(&["man", sub])));
    }
    for (file, run) in &expected {
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains(".SH OPTIONS"), "{file}: {}", run.stdout);
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            committed == run.stdout,
            "man/{file} is stale or missing: run scripts/update-completions.sh"
        );
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    let mut wanted: Vec<String> = expected.into_iter().map(|(f, _)| f).collect();
    wanted.sort();
    assert_eq!(present, wanted, "man/ holds pages for other commands");
    bare(&["man", "no-such-command"]).expect_failure(1, &["no subcommand \"no-such-command\""]);
}

/// The configuration the Debian package installs is the example with every
/// key commented out: current with the example, and a valid file that asks
/// for a repository instead of backing up anywhere.
#[test]
fn packaged_configuration_is_the_example_commented_out() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("examples/promsnap.toml")).unwrap();
    let packaged = std::fs::read_to_string(root.join("deploy/debian/promsnap.toml")).unwrap();
    let body: Vec<&str> = packaged
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect();
    let expected: Vec<String> = example
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| match l.split_once(" = ") {
            Some((key, _))
                if !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                format!("# {l}")
            }
            _ => l.to_string(),
        })
        .collect();
    assert!(
        body == expected,
        "deploy/debian/promsnap.toml is stale: run scripts/update-completions.sh"
    );
    let config = root.join("deploy/debian/promsnap.toml");
    bare(&["--config", config.to_str().unwrap(), "list"])
        .expect_failure(2, &["no repository given"]);
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

/// Every command's `--help`: its own options first, then the shared groups
/// under their headings in one order, the global options last, then
/// examples; and a command is not offered options that do nothing for it.
#[test]
fn help_groups_options_under_headings_and_offers_only_what_a_command_uses() {
    const ORDER: [&str; 9] = [
        "Options:",
        "Prometheus:",
        "Prometheus (for --merge):",
        "Repository:",
        "S3:",
        "Network:",
        "Metrics:",
        "Run lock:",
        "Global options:",
    ];
    // The headings each command has, and the options under each.
    let expect: [(&str, &[(&str, &str)]); 9] = [
        (
            "init",
            &[("Repository:", "--repo"), ("Network:", "--retries")],
        ),
        (
            "backup",
            &[
                ("Options:", "--from-dir"),
                ("Prometheus:", "--prometheus-url"),
                ("S3:", "--s3-endpoint"),
                ("Network:", "--max-bandwidth"),
                ("Metrics:", "--metrics-file"),
                ("Run lock:", "--lock-file"),
            ],
        ),
        (
            "list",
            &[("Options:", "--instance"), ("Network:", "--timeout")],
        ),
        (
            "restore",
            &[
                ("Prometheus (for --merge):", "--prometheus-url"),
                ("Metrics:", "--pushgateway"),
            ],
        ),
        (
            "prune",
            &[("Options:", "--keep-daily"), ("Run lock:", "--lock-file")],
        ),
        (
            "verify",
            &[("Options:", "--deep"), ("Metrics:", "--metrics-file")],
        ),
        ("check-dir", &[("Options:", "--json")]),
        ("unlock", &[("Options:", "--all"), ("S3:", "--s3-region")]),
        ("completions", &[]),
    ];
    for (command, placed) in expect {
        let run = bare(&[command, "--help"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let sections = sections(&run.stdout);
        let headings: Vec<&str> = sections.iter().map(|(h, _)| h.as_str()).collect();
        let ranks: Vec<usize> = headings
            .iter()
            .filter_map(|h| ORDER.iter().position(|o| o == h))
            .collect();
        assert!(
            ranks.windows(2).all(|w| w[0] < w[1]),
            "{command}: headings out of order: {headings:?}"
        );
        assert_eq!(
            headings.last(),
            Some(&"Examples:"),
            "{command}: examples come last"
        );
        assert!(
            headings.ends_with(&["Global options:", "Examples:"]),
            "{command}: {headings:?}"
        );
        for (heading, option) in placed {
            let body = &sections
                .iter()
                .find(|(h, _)| h == heading)
                .unwrap_or_else(|| panic!("{command} --help has no {heading}:\n{}", run.stdout))
                .1;
            assert!(
                body.contains(&format!("{option} ")) || body.contains(&format!("{option}\n")),
                "{command}: {option} is not under {heading}:\n{body}"
            );
        }
        let examples = &sections.last().unwrap().1;
        let count = examples
            .lines()
            .filter(|l| l.trim_start().starts_with("promsnap "))
            .count();
        assert!(
            (2..=6).contains(&count),
            "{command}: {count} examples:\n{examples}"
        );
    }
    // Options that would do nothing are not offered (a usage error, with
    // the command line shown), and are not in that command's help.
    for (args, option) in [
        (&["check-dir", "/tmp", "--retries", "3"][..], "--retries"),
        (
            &["list", "--metrics-file", "/tmp/m.prom"][..],
            "--metrics-file",
        ),
        (&["init", "--lock-file", "/tmp/l"][..], "--lock-file"),
        (&["completions", "bash", "--timeout", "1s"][..], "--timeout"),
    ] {
        bare(args).expect_failure(2, &[&format!("unexpected argument '{option}'")]);
        let help = bare(&[args[0], "--help"]).stdout;
        assert!(!help.contains(option), "{} --help offers {option}", args[0]);
    }
    // Global options go before or after the command's name.
    for args in [
        &["--quiet", "list", "--help"][..],
        &["list", "-q", "--help"],
    ] {
        assert_eq!(bare(args).code, 0, "{args:?}");
    }
}

/// Splits help text into its sections: each heading line (`Name:` at the
/// start of a line) with the text below it.
fn sections(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let heading = !line.starts_with(' ') && line.ends_with(':') && line.len() < 30;
        if heading {
            out.push((line.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// Every example in every command's help is a command line promsnap
/// accepts: parsed up to a trailing `--help`, so nothing runs.
#[test]
fn every_example_in_the_help_parses() {
    let mut commands = vec![vec![]];
    commands.extend(
        [
            "init",
            "backup",
            "list",
            "restore",
            "prune",
            "verify",
            "check-dir",
            "unlock",
            "completions",
        ]
        .map(|c| vec![c]),
    );
    let mut checked = 0;
    for command in commands {
        let mut args = command.clone();
        args.push("--help");
        let help = bare(&args).stdout;
        let examples = help.split("Examples:\n").nth(1).unwrap_or_else(|| {
            panic!(
                "promsnap {} --help has no examples:\n{help}",
                command.join(" ")
            )
        });
        for example in examples.replace("\\\n", " ").lines() {
            let Some(line) = example.trim().strip_prefix("promsnap ") else {
                continue;
            };
            // What a shell would pass: up to a pipe or redirection.
            let line = line.split(['|', '>']).next().unwrap();
            let mut argv: Vec<String> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_string())
                .collect();
            argv.push("--help".into());
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let run = bare(&argv);
            assert_eq!(
                run.code, 0,
                "the example `promsnap {line}` does not parse:\n{}",
                run.stderr
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} examples found");
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

/// A realistic repository for `list` and completion: three groups (one an
/// HA group of two replicas), 20-character names, snapshots stored out of
/// order. Returns the target and every (group, time, id) stored.
fn busy_repository(work: &std::path::Path) -> (support::Target, Vec<(String, String, String)>) {
    let target = support::Target::local(&work.join("repo"));
    let data = work.join("data");
    support::fixture_data_dir(&data);
    let data = data.to_str().unwrap();
    let stored = [
        ("prometheus-eu-west-1", None, "2026-01-03T06:00:00Z"),
        ("prom-a", None, "2026-01-02T06:00:00Z"),
        ("prometheus-eu-west-1", None, "2026-01-01T06:00:00Z"),
        (
            "prometheus-k8s-0",
            Some("k8s-monitoring-eu-ha"),
            "2026-01-02T07:00:00Z",
        ),
        (
            "prometheus-k8s-1",
            Some("k8s-monitoring-eu-ha"),
            "2026-01-01T07:00:00Z",
        ),
        ("prometheus-eu-west-1", None, "2026-01-02T06:00:00Z"),
        ("prom-a", None, "2026-01-01T06:30:00Z"),
    ];
    let mut snapshots = Vec::new();
    for (instance, group, time) in stored {
        let mut args = vec![
            "backup",
            "--from-dir",
            data,
            "--instance",
            instance,
            "--time",
            time,
            "--json",
        ];
        if let Some(g) = group {
            args.extend(["--ha-group", g]);
        }
        let id = target.ok(&args).json()["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
        let name = group.unwrap_or(instance).to_string();
        snapshots.push((name, time.to_string(), id));
    }
    (target, snapshots)
}

/// `list` fits 100 columns with realistic names, is grouped by instance
/// (or HA group) with the oldest snapshot first in each group, as its help
/// says, and names a group's snapshots by the group, as `prune` does.
#[test]
fn list_fits_100_columns_and_sorts_as_its_help_says() {
    let work = tempfile::tempdir().unwrap();
    let (target, mut stored) = busy_repository(work.path());
    let help = bare(&["list", "--help"]).stdout;
    assert!(
        help.contains("grouped by instance, oldest first")
            && help.contains("groups in alphabetical order"),
        "list --help does not say how it sorts:\n{help}"
    );
    let run = target.ok(&["list"]);
    for line in run.stdout.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns:\n{line}\nin\n{}",
            line.chars().count(),
            run.stdout
        );
    }
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    // Grouped (groups alphabetically), oldest first within each group.
    stored.sort();
    let shown: Vec<(&str, &str)> = rows.iter().map(|r| (r[1], r[0])).collect();
    let expected: Vec<(&str, &str)> = stored
        .iter()
        .map(|(group, _, id)| (group.as_str(), id.as_str()))
        .collect();
    assert_eq!(shown, expected, "\n{}", run.stdout);
    assert!(run.stdout.contains("2026-01-01 00:00 .. 01-01 05:59"));
    // The same name for each snapshot as `prune` shows.
    let prune = target.ok(&["prune", "--keep-last", "1", "--dry-run"]);
    for (group, _, id) in &stored {
        let line = prune
            .stdout
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("prune does not show {id}:\n{}", prune.stdout));
        assert_eq!(
            line.split_whitespace().nth(3),
            Some(group.as_str()),
            "{line}"
        );
    }
}

/// Paths printed for the user to paste are absolute, also when the user
/// gave relative ones: the repository, the data directory in "start
/// Prometheus with --storage.tsdb.path=...", the moved-aside content and
/// the configuration files written with --config-to.
#[test]
fn printed_paths_are_absolute_when_given_relative() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    support::fixture_data_dir(&dir.join("data"));
    std::fs::write(dir.join("targets.yml"), "- targets: [a:9100]\n").unwrap();
    std::fs::create_dir(dir.join("restored")).unwrap();
    std::fs::write(dir.join("restored/old-file"), "x").unwrap();
    let run = |args: &[&str]| {
        let out = support::promsnap()
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run promsnap");
        let run = support::finish(out);
        assert_eq!(run.code, 0, "{args:?}:\n{}", run.stderr);
        run
    };
    let abs = |rel: &str| dir.join(rel).display().to_string();
    run(&["init", "--repo", "repo"]);
    let backup = run(&[
        "backup",
        "--from-dir",
        "./data",
        "--include",
        "targets.yml",
        "--instance",
        "p",
        "--repo",
        "repo",
    ]);
    assert!(
        backup
            .stdout
            .contains(&format!("stored in {}", abs("repo"))),
        "{}",
        backup.stdout
    );
    let restore = run(&[
        "restore",
        "latest",
        "--repo",
        "repo",
        "--data-dir",
        "restored",
        "--force",
        "--config-to",
        "config",
    ]);
    let paste = format!("--storage.tsdb.path={}\n", abs("restored"));
    assert!(restore.stdout.contains(&paste), "{}", restore.stdout);
    let aside = format!("now in {}.before-restore-", abs("restored"));
    assert!(restore.stderr.contains(&aside), "{}", restore.stderr);
    let written = abs("config") + &abs("targets.yml");
    assert!(restore.stdout.contains(&written), "{}", restore.stdout);
    assert!(
        std::path::Path::new(&written).is_file(),
        "{written} was not written"
    );
}

/// Dynamic completion, driven the way bash drives it
/// (`COMPLETE=bash promsnap -- <words>` with the index of the word under
/// the cursor): snapshot ids and instance names come from the repository
/// named by the words typed so far, PROMSNAP_REPO or the configuration
/// file; a repository that cannot be read yields no ids, no message, and
/// does not keep the shell waiting.
#[test]
fn dynamic_completion_offers_snapshot_ids_and_instances_from_the_repository() {
    let work = tempfile::tempdir().unwrap();
    let (target, stored) = busy_repository(work.path());
    let complete = |words: &[&str], env: &[(&str, &str)]| {
        let out = support::promsnap()
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .envs(env.iter().copied())
            .arg("--")
            .args(words)
            .output()
            .expect("run promsnap");
        let run = support::finish(out);
        assert_eq!(run.code, 0, "{words:?}: {}", run.stderr);
        assert!(run.stderr.is_empty(), "{words:?} printed:\n{}", run.stderr);
        run.stdout
            .lines()
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    let repo = target.repo.as_str();
    let all_ids: Vec<&str> = stored.iter().map(|(_, _, id)| id.as_str()).collect();
    let offered = complete(&["promsnap", "restore", "--repo", repo, ""], &[]);
    assert_eq!(offered[0], "latest");
    for id in &all_ids {
        assert!(offered.iter().any(|o| o == id), "{id} not in {offered:?}");
    }
    // A prefix narrows (the shell shows what matches), --instance too.
    let prefix = &all_ids[0][..10];
    let offered = complete(&["promsnap", "verify", "--repo", repo, prefix], &[]);
    assert!(!offered.is_empty() && offered.iter().all(|o| o.starts_with(prefix)));
    let offered = complete(
        &[
            "promsnap",
            "restore",
            "--instance",
            "prom-a",
            "--repo",
            repo,
            "2026",
        ],
        &[],
    );
    let mine: Vec<&str> = stored
        .iter()
        .filter(|(g, _, _)| g == "prom-a")
        .map(|(_, _, id)| id.as_str())
        .collect();
    let mut offered_sorted = offered.clone();
    offered_sorted.sort();
    let mut mine_sorted = mine.clone();
    mine_sorted.sort();
    assert_eq!(offered_sorted, mine_sorted);
    // Instance and HA group names, with the repository from PROMSNAP_REPO
    // or from the configuration file.
    let names = [
        "k8s-monitoring-eu-ha",
        "prom-a",
        "prometheus-eu-west-1",
        "prometheus-k8s-0",
        "prometheus-k8s-1",
    ];
    let offered = complete(
        &["promsnap", "list", "--instance", ""],
        &[("PROMSNAP_REPO", repo)],
    );
    assert_eq!(offered, names);
    let config = work.path().join("promsnap.toml");
    std::fs::write(&config, format!("[repository]\nurl = {repo:?}\n")).unwrap();
    let config = config.to_str().unwrap();
    let offered = complete(
        &[
            "promsnap",
            "--config",
            config,
            "prune",
            "--instance",
            "prom",
        ],
        &[],
    );
    assert_eq!(offered, &names[1..]);
    // No repository, or one that is not there: `latest` and the options,
    // no ids, no message.
    let missing = work.path().join("missing");
    for words in [
        &["promsnap", "restore", ""][..],
        &[
            "promsnap",
            "restore",
            "--repo",
            missing.to_str().unwrap(),
            "",
        ],
    ] {
        let offered = complete(words, &[]);
        assert_eq!(offered[0], "latest");
        assert!(
            offered.iter().skip(1).all(|o| o.starts_with("--")),
            "{offered:?}"
        );
    }
    // An S3 endpoint that accepts connections and never answers: the
    // completion gives up within its deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let offered = complete(
        &[
            "promsnap",
            "restore",
            "--repo",
            "s3://bucket/prefix",
            "--s3-endpoint",
            &endpoint,
            "2026",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "GK0000000000000000000000"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "garage"),
        ],
    );
    let took = started.elapsed();
    assert!(offered.is_empty(), "{offered:?}");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    // The registration script for the shell's rc file.
    let script = support::promsnap()
        .env("COMPLETE", "bash")
        .output()
        .expect("run promsnap");
    let script = String::from_utf8_lossy(&script.stdout);
    assert!(
        script.contains("complete ") && script.contains("promsnap"),
        "{script}"
    );
}
