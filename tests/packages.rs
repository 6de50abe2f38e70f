//! The Debian package (`cargo deb`, metadata in Cargo.toml): its man page
//! is generated from clap and current, and the package installs into a
//! scratch root with dpkg, runs, shows its man page, and removes cleanly.
//! A scratch root (`dpkg --root`) rather than the machine's own, so the test
//! can run anywhere without touching the host's packages.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

use crate::support;

const MAN_PAGE: &str = "docs/man/promsnap.1";

/// The man page as clap_mangen renders it from the command line. The
/// version is the package's alone (no commit or date), so the committed
/// page changes only when the CLI does.
fn render_man_page() -> String {
    let cmd = promsnap::cli::Cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .expect("render the man page");
    String::from_utf8(out).expect("UTF-8 man page")
}

/// `docs/man/promsnap.1` is what clap_mangen makes of today's CLI; with
/// PROMSNAP_UPDATE_MAN=1 (scripts/update-completions.sh) it is rewritten.
#[test]
fn the_man_page_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(MAN_PAGE);
    let page = render_man_page();
    assert!(page.contains(".TH promsnap 1"), "{page}");
    assert!(page.contains("serve"), "the man page lacks the commands");
    if std::env::var_os("PROMSNAP_UPDATE_MAN").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == page,
        "{MAN_PAGE} is stale: run scripts/update-completions.sh"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Every file below `root`, relative, except dpkg's own database.
fn files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if rel.starts_with("var/lib/dpkg") {
                continue;
            }
            match path.is_dir() {
                true => walk(&path, root, out),
                false => out.push(rel),
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// `cargo deb` packs the binary under test (the debug build, stripped),
/// `dpkg -i` installs it, `promsnap --version` and `man promsnap` work from
/// the installed files, and `dpkg -r` then `--purge` leave nothing behind
/// (the configuration file, a conffile, stays until the purge).
#[test]
fn the_deb_installs_runs_and_removes_cleanly() {
    support::require_tool("cargo-deb");
    support::require_tool("dpkg");
    support::require_tool("man");
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("deb");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    run(Command::new("cargo")
        .args([
            "deb",
            "--profile",
            "dev",
            "--no-build",
            "--fast",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--output")
        .arg(&out_dir));
    let deb = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("cargo deb made no .deb");
    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/promsnap",
        "./etc/promsnap/promsnap.toml",
        "./usr/lib/systemd/system/promsnap-backup.service",
        "./usr/lib/systemd/system/promsnap-backup.timer",
        "./usr/lib/systemd/system/promsnap.service",
        "./usr/share/bash-completion/completions/promsnap",
        "./usr/share/man/man1/promsnap.1",
    ] {
        assert!(
            listing.contains(path),
            "{path} not in the package:\n{listing}"
        );
    }

    // A scratch root with an empty dpkg database. --force-depends: libc is
    // not "installed" in it (it is on the host, where the binary runs).
    let root = work.path().join("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut cmd = Command::new("dpkg");
        cmd.arg(format!("--root={}", root.display()))
            .args([
                "--force-depends",
                "--force-script-chrootless",
                "--force-not-root",
            ])
            .args(args);
        cmd
    };
    run(dpkg(&["-i"]).arg(&deb));
    let version = run(Command::new(root.join("usr/bin/promsnap")).arg("--version"));
    assert!(
        version.starts_with(&format!("promsnap {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let man = run(Command::new("man")
        .arg("promsnap")
        .env("MANPATH", root.join("usr/share/man"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100"));
    assert!(man.contains("serve"), "man promsnap:\n{man}");
    let conf = std::fs::read_to_string(root.join("etc/promsnap/promsnap.toml")).unwrap();
    assert!(
        conf.contains("[serve]"),
        "the configuration file is not the example"
    );

    run(&mut dpkg(&["--remove", "promsnap"]));
    assert_eq!(
        files(&root),
        [PathBuf::from("etc/promsnap/promsnap.toml")],
        "dpkg -r left more than the conffile"
    );
    run(&mut dpkg(&["--purge", "promsnap"]));
    assert!(
        files(&root).is_empty(),
        "left after purge: {:?}",
        files(&root)
    );
}
