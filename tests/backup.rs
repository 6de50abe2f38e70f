//! Backup behaviour an operator relies on: authentication, discovery of the
//! data directory, silence under cron, and cheap nightly runs on big TSDBs.

use std::fs;
use std::path::Path;

use crate::support::{self, Prometheus, StartOptions, Target, FIXTURE_BLOCKS};

const PASSWORD: &str = "hunter2-secret";
/// bcrypt of PASSWORD (cost 4, fast for tests), for Prometheus's web config.
const PASSWORD_BCRYPT: &str = "$2b$04$HleYlLUrVp6fgFZ9sO1Qf.fIq1Y198py/68bgge/MdQbxvVeSr0MG";

#[test]
fn prometheus_behind_basic_auth() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let web = format!("basic_auth_users:\n  backup: {PASSWORD_BCRYPT}\n");
    let prom = Prometheus::start_with(
        &data,
        StartOptions {
            web_config_yaml: Some(web),
            ..Default::default()
        },
    );
    let target = Target::local(&work.path().join("repo"));
    let data_s = data.to_str().unwrap();

    let denied = target.run(&[
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data_s,
    ]);
    denied.expect_failure(1, &["401", "hint: Prometheus wants credentials"]);

    let wrong = work.path().join("wrong");
    fs::write(&wrong, "not-the-password\n").unwrap();
    let wrong_run = target.run(&[
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data_s,
        "--prometheus-username",
        "backup",
        "--prometheus-password-file",
        wrong.to_str().unwrap(),
    ]);
    wrong_run.expect_failure(1, &["401"]);
    assert!(
        !wrong_run.stderr.contains("not-the-password"),
        "a secret was printed"
    );

    let secret = work.path().join("password");
    fs::write(&secret, format!("{PASSWORD}\n")).unwrap();
    let ok = target.ok(&[
        "backup",
        "--prometheus-url",
        &prom.url,
        "--data-dir",
        data_s,
        "--prometheus-username",
        "backup",
        "--prometheus-password-file",
        secret.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(ok.json()["blocks_new"], FIXTURE_BLOCKS);
    assert!(
        !ok.stdout.contains(PASSWORD) && !ok.stderr.contains(PASSWORD),
        "a secret was printed"
    );
}

/// Without --data-dir, promsnap asks Prometheus where its TSDB lives.
#[test]
fn data_dir_is_discovered_from_prometheus() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start(&data);
    let target = Target::local(&work.path().join("repo"));
    let run = target.ok(&["backup", "--prometheus-url", &prom.url, "--json"]);
    let report = run.json();
    assert_eq!(report["blocks_new"], FIXTURE_BLOCKS);
    assert_eq!(
        fs::read_dir(data.join("snapshots")).unwrap().count(),
        0,
        "snapshot left behind"
    );
}

/// Under cron, success is silent: nothing on stdout or stderr, exit 0.
#[test]
fn quiet_backup_prints_nothing() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let target = Target::local(&work.path().join("repo"));
    let run = target.ok(&["backup", "--from-dir", data.to_str().unwrap(), "--quiet"]);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    assert_eq!(target.snapshots().len(), 1);
}

/// Writes `n` small block directories (backup does not parse chunk or index
/// content, so made-up bytes serve) and returns their ULIDs.
fn synthetic_blocks(dir: &Path, n: usize) -> Vec<String> {
    let mut ulids = Vec::new();
    for i in 0..n {
        let ulid = ulid::Ulid::from_parts(1_767_225_600_000 + i as u64, i as u128).to_string();
        let block = dir.join(&ulid);
        fs::create_dir_all(block.join("chunks")).unwrap();
        let (min, max) = (i as i64 * 7_200_000, (i as i64 + 1) * 7_200_000);
        let meta = format!(
            r#"{{"ulid":"{ulid}","minTime":{min},"maxTime":{max},"stats":{{"numSamples":1,"numSeries":1,"numChunks":1}},"compaction":{{"level":1}},"version":1}}"#
        );
        fs::write(block.join("meta.json"), meta).unwrap();
        fs::write(block.join("index"), vec![i as u8; 2048]).unwrap();
        fs::write(block.join("chunks/000001"), vec![(i * 7) as u8; 4096]).unwrap();
        fs::write(block.join("tombstones"), [0u8; 9]).unwrap();
        ulids.push(ulid);
    }
    ulids
}

/// The nightly case: a TSDB of 1000 blocks, nothing changed since the last
/// backup. Nothing is read or uploaded; the new snapshot reuses every block.
#[test]
fn unchanged_thousand_block_tsdb_reads_and_uploads_nothing() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    synthetic_blocks(&data, 1000);
    let target = Target::local(&work.path().join("repo"));
    let args = ["backup", "--from-dir", data.to_str().unwrap(), "--json"];
    let first = target.ok(&args).json();
    assert_eq!(first["blocks_new"], 1000);
    let started = std::time::Instant::now();
    let second = target.ok(&args).json();
    eprintln!("unchanged 1000-block backup took {:?}", started.elapsed());
    assert_eq!(second["blocks_reused"], 1000);
    assert_eq!(second["blocks_new"], 0);
    assert_eq!(second["bytes_read"], 0);
    assert_eq!(second["bytes_uploaded"], 0);
    // And it is a complete snapshot: restoring it gives every block back.
    let restored = work.path().join("restored");
    let report = target
        .ok(&[
            "restore",
            "latest",
            "--data-dir",
            restored.to_str().unwrap(),
            "--json",
        ])
        .json();
    assert_eq!(report["blocks_restored"], 1000);
    let some = fs::read_dir(&data)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    assert_eq!(
        fs::read(data.join(&some).join("index")).unwrap(),
        fs::read(restored.join(&some).join("index")).unwrap()
    );
}

/// Keys in the configuration file take effect, and flags still win.
#[test]
fn backup_settings_come_from_the_configuration_file() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let prom = Prometheus::start(&data);
    let repo = work.path().join("repo");
    let config = work.path().join("promsnap.toml");
    fs::write(
        &config,
        format!(
            "[repository]\nurl = \"{}\"\ninit = true\n[prometheus]\nurl = \"{}\"\ndata_dir = \"{}\"\n[backup]\ninstance = \"from-file\"\nkeep_local_snapshot = true\nha_group = \"g1\"\n",
            repo.display(),
            prom.url,
            data.display()
        ),
    )
    .unwrap();
    let run = support::promsnap()
        .args(["--config", config.to_str().unwrap(), "backup", "--json"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        fs::read_dir(data.join("snapshots")).unwrap().count(),
        1,
        "keep_local_snapshot ignored"
    );
    let target = Target::uninitialised(&repo);
    let list = target.snapshots();
    assert_eq!(
        (list[0]["instance"].as_str(), list[0]["ha_group"].as_str()),
        (Some("from-file"), Some("g1"))
    );
    // A flag wins over the file.
    let run = support::promsnap()
        .args([
            "--config",
            config.to_str().unwrap(),
            "backup",
            "--instance",
            "from-flag",
            "--ha-group",
            "g2",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(target.snapshots()[1]["instance"], "from-flag");
}

/// A bearer token (for a Prometheus behind an authenticating proxy) is sent
/// as `Authorization: Bearer ...` on every request, and never printed.
/// Prometheus has no bearer auth of its own, so a listener stands in for the
/// proxy and records what promsnap sends.
#[test]
fn bearer_token_is_sent_and_never_printed() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let work = tempfile::tempdir().unwrap();
    let token = "t0ken-that-must-not-leak";
    let token_file = work.path().join("token");
    fs::write(&token_file, format!("{token}\n")).unwrap();
    let target = Target::local(&work.path().join("repo"));
    let child = target
        .cmd(&[
            "backup",
            "--prometheus-url",
            &url,
            "--data-dir",
            work.path().to_str().unwrap(),
            "--prometheus-bearer-token-file",
            token_file.to_str().unwrap(),
            "--retries",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed before the headers ended");
        request.extend_from_slice(&buf[..n]);
    }
    conn.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    drop(conn);
    let out = child.wait_with_output().unwrap();
    let request = String::from_utf8_lossy(&request).to_lowercase();
    assert!(
        request.contains(&format!("authorization: bearer {}", token.to_lowercase())),
        "{request}"
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        !stdout.contains(token) && !stderr.contains(token),
        "the token was printed"
    );
}

/// Makes a throwaway CA and a server certificate for 127.0.0.1 with openssl.
fn tls_files(dir: &Path) {
    let openssl = support::require_tool("openssl");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=promsnap test CA",
        "-days",
        "2",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// Prometheus serving TLS with a certificate from a private CA: refused
/// without --prometheus-ca-cert, backed up with it.
#[test]
fn prometheus_with_tls_and_a_private_ca() {
    let work = tempfile::tempdir().unwrap();
    tls_files(work.path());
    let data = work.path().join("data");
    support::fixture_data_dir(&data);
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        work.path().join("server.crt").display(),
        work.path().join("server.key").display()
    );
    let prom = Prometheus::start_with(
        &data,
        StartOptions {
            web_config_yaml: Some(web),
            ..Default::default()
        },
    );
    let url = prom.url.replace("http://", "https://");
    let target = Target::local(&work.path().join("repo"));
    let data_s = data.to_str().unwrap();
    target
        .run(&[
            "backup",
            "--prometheus-url",
            &url,
            "--data-dir",
            data_s,
            "--retries",
            "0",
        ])
        .expect_failure(1, &["could not reach Prometheus", "certificate"]);
    let ca = work.path().join("ca.crt");
    let ok = target.ok(&[
        "backup",
        "--prometheus-url",
        &url,
        "--data-dir",
        data_s,
        "--prometheus-ca-cert",
        ca.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(ok.json()["blocks_new"], FIXTURE_BLOCKS);
}
