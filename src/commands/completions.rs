//! Shell completion, two ways.
//!
//! `promsnap completions <shell>` prints a static script: commands, options
//! and their fixed values. The scripts committed under `completions/` are
//! its output, and a test fails when they are stale.
//!
//! Dynamic completion (clap_complete's `COMPLETE=<shell> promsnap`
//! protocol) also offers what only the repository knows: snapshot ids for
//! `restore` and `verify`, and instance and HA group names for `--instance`.
//! The shell runs promsnap on every Tab, so the repository is found the way
//! `promsnap list` would find it, from the words already typed (`--repo`,
//! the `--s3-*` options, `--config`), the `PROMSNAP_*` variables and the
//! configuration file. An `--instance` already typed narrows the ids to
//! that instance's. A completion must never keep the shell waiting or
//! write into the command line: the repository gets [`DEADLINE`] with no
//! retries, and whatever goes wrong (no repository given, unreachable,
//! slow) yields no candidates and no message.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use anyhow::Result;
use clap::{CommandFactory, Parser};
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

use crate::cli::Cli;
use crate::error::ExitStatus;
use crate::output::{format_ms, Printer};
use crate::repo::find;
use crate::repo::manifest::Manifest;
use crate::settings::{CommandSettings, Settings};

/// How long a completion may take to read the repository.
const DEADLINE: Duration = Duration::from_secs(2);

/// The options that say where the repository is (and `--instance`), as
/// `list` takes them.
const REPO_OPTIONS: [&str; 6] = [
    "--repo",
    "--s3-endpoint",
    "--s3-region",
    "--s3-checksums",
    "--config",
    "--instance",
];

pub fn run(shell: clap_complete::Shell, printer: &Printer) -> Result<ExitStatus> {
    printer.stdout(&script(shell))?;
    Ok(ExitStatus::Success)
}

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "promsnap", &mut out);
    String::from_utf8(out).expect("completion scripts are UTF-8")
}

/// When the shell runs promsnap for completions (`COMPLETE` is set),
/// answers it and exits; otherwise returns at once. Call it first thing.
pub fn complete_from_env() {
    clap_complete::CompleteEnv::with_factory(dynamic_command).complete();
}

/// The command line with the repository's names attached as candidates.
fn dynamic_command() -> clap::Command {
    let snapshots = ArgValueCandidates::new(|| candidates(Want::Snapshots));
    let instances = ArgValueCandidates::new(|| candidates(Want::Instances));
    let mut cmd = Cli::command();
    for sub in ["restore", "verify"] {
        let with = snapshots.clone();
        cmd = cmd.mut_subcommand(sub, |c| c.mut_arg("snapshot", |a| a.add(with)));
    }
    for sub in ["backup", "list", "restore", "verify", "prune"] {
        let with = instances.clone();
        cmd = cmd.mut_subcommand(sub, |c| c.mut_arg("instance", |a| a.add(with)));
    }
    cmd
}

#[derive(Clone, Copy)]
enum Want {
    Snapshots,
    Instances,
}

/// The candidates for the word being completed; only `latest` for a
/// snapshot when the repository cannot be read in time.
fn candidates(want: Want) -> Vec<CompletionCandidate> {
    let words = typed_words(std::env::args_os().collect());
    let (argv, instance) = list_argv(&words);
    // Ids of the instance typed come from its own manifests (a fleet's
    // thousands would not be read within the deadline); the names
    // `--instance` takes need every group's.
    let within = match want {
        Want::Snapshots => instance.as_deref(),
        Want::Instances => None,
    };
    let manifests = read_manifests(argv, within).unwrap_or_default();
    match want {
        Want::Snapshots => snapshot_candidates(&manifests, instance.as_deref()),
        Want::Instances => instance_candidates(&manifests),
    }
}

/// The words of the command line being completed, without the one under
/// the cursor: what follows `--` in promsnap's own arguments (the shell
/// passes the line there), minus the word at `_CLAP_COMPLETE_INDEX` (bash)
/// or the last word (the other shells).
fn typed_words(args: Vec<OsString>) -> Vec<String> {
    let mut words: Vec<String> = args
        .into_iter()
        .skip_while(|a| a != "--")
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // zsh leaves out an empty word under the cursor: then the index is
    // past the end, and there is nothing to remove.
    let current = match std::env::var("_CLAP_COMPLETE_INDEX") {
        Ok(index) => index.parse::<usize>().ok(),
        Err(_) => words.len().checked_sub(1),
    };
    if let Some(i) = current.filter(|&i| i < words.len()) {
        words.remove(i);
    }
    words
}

/// `promsnap [--config F] list --repo ... --retries 0 --timeout 2s` from the
/// repository options among `words`, and the `--instance` typed, if any.
fn list_argv(words: &[String]) -> (Vec<String>, Option<String>) {
    let mut found: BTreeMap<&str, String> = BTreeMap::new();
    let mut path_style = None;
    let mut iter = words.iter().skip(1).peekable();
    while let Some(word) = iter.next() {
        if word == "--" {
            break;
        }
        if word == "--s3-path-style" || word.starts_with("--s3-path-style=") {
            path_style = Some(word.clone());
            continue;
        }
        for name in REPO_OPTIONS {
            if let Some(value) = word.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                found.insert(name, value.to_string());
            } else if word == name {
                if let Some(value) = iter.next_if(|v| !v.starts_with("--")) {
                    found.insert(name, value.clone());
                }
            }
        }
    }
    let instance = found.remove("--instance");
    let mut argv = vec!["promsnap".to_string()];
    if let Some(config) = found.remove("--config") {
        argv.extend(["--config".to_string(), config]);
    }
    argv.push("list".into());
    for (name, value) in found {
        argv.extend([name.to_string(), value]);
    }
    argv.extend(path_style);
    let timeout = format!("{}s", DEADLINE.as_secs());
    argv.extend(["--retries".into(), "0".into(), "--timeout".into(), timeout]);
    (argv, instance)
}

/// The manifests of the repository `argv` (a `list` command line) names,
/// those that may be `instance`'s when one is given (its group's directory
/// and the layout before groups: `Repository::catalog_of`), else all,
/// within [`DEADLINE`].
fn read_manifests(argv: Vec<String>, instance: Option<&str>) -> Result<Vec<Manifest>> {
    let cli = Cli::try_parse_from(argv)?;
    let CommandSettings::List(list) = Settings::resolve(cli)?.command else {
        anyhow::bail!("not a list command line");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let read = runtime.block_on(async {
        tokio::time::timeout(DEADLINE, async {
            let repo = super::open_repo(&list.repo).await?;
            Ok(repo.catalog_of(instance).await?.manifests)
        })
        .await
    });
    // A request still hanging is abandoned, not waited for.
    runtime.shutdown_background();
    read?
}

/// `latest`, then every snapshot id (of `instance`, when one is typed),
/// newest first, each with its instance and creation time as help.
fn snapshot_candidates(manifests: &[Manifest], instance: Option<&str>) -> Vec<CompletionCandidate> {
    let mut out = vec![CompletionCandidate::new("latest").help(Some(
        "the newest snapshot (of --instance, when the repository holds several)".into(),
    ))];
    let mine = manifests
        .iter()
        .rev()
        .filter(|m| instance.is_none_or(|i| find::belongs_to(m, i)));
    for m in mine {
        let data = match (m.min_time(), m.max_time()) {
            (Some(a), Some(b)) => format!(", data {} .. {}", format_ms(a), format_ms(b)),
            _ => String::new(),
        };
        let help = format!("{}{data}", find::group_of(m));
        out.push(CompletionCandidate::new(&m.id).help(Some(help.into())));
    }
    out
}

/// The names `--instance` takes: every HA group and every instance, each
/// with its number of snapshots.
fn instance_candidates(manifests: &[Manifest]) -> Vec<CompletionCandidate> {
    let mut names: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    for m in manifests {
        names.entry(&m.instance).or_default().0 += 1;
        if let Some(group) = &m.ha_group {
            let entry = names.entry(group).or_default();
            entry.0 += 1;
            entry.1 = true;
        }
    }
    names
        .into_iter()
        .map(|(name, (n, group))| {
            let what = if group { "HA group" } else { "instance" };
            let plural = if n == 1 { "" } else { "s" };
            CompletionCandidate::new(name)
                .help(Some(format!("{what}, {n} snapshot{plural}").into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<String> {
        line.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_repository_comes_from_the_words_already_typed() {
        let (argv, instance) = list_argv(&words(&[
            "promsnap",
            "--config=/etc/p.toml",
            "restore",
            "--repo",
            "s3://b/p",
            "--s3-path-style",
            "--instance",
            "eu1",
            "--data-dir",
            "/d",
        ]));
        assert_eq!(instance.as_deref(), Some("eu1"));
        assert_eq!(
            argv.join(" "),
            "promsnap --config /etc/p.toml list --repo s3://b/p --s3-path-style --retries 0 \
             --timeout 2s"
        );
        // Nothing typed: list alone, to fall back on PROMSNAP_REPO and the file.
        let (argv, instance) = list_argv(&words(&["promsnap", "restore"]));
        assert_eq!(argv[..2], ["promsnap", "list"]);
        assert!(instance.is_none());
        // An option without its value yet is left out.
        let (argv, _) = list_argv(&words(&["promsnap", "verify", "--repo", "--deep"]));
        assert!(!argv.contains(&"--repo".to_string()), "{argv:?}");
    }
}
