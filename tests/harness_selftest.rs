//! Tests of the test harness itself: if these fail, every end-to-end test's
//! result is meaningless, so they check the harness against the real servers.

use crate::support::{self, garage, Prometheus, StartOptions};

use aws_sdk_s3::primitives::ByteStream;

#[test]
fn harness_fixtures_load_in_prometheus() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    support::fixture_data_dir(&data);

    let mut prom = Prometheus::start(&data);
    let series = r#"count({__name__=~".+"})"#;
    assert_eq!(
        prom.query_f64(series, support::FIXTURE_MID),
        support::FIXTURE_SERIES as f64
    );
    // Known values from fixtures/generate.py.
    let now = support::FIXTURE_MID;
    assert_eq!(prom.query_f64("node_time_seconds", now), now as f64);
    assert_eq!(
        prom.query_f64("node_memory_MemTotal_bytes", now),
        8589934592.0
    );
    assert_eq!(prom.query_f64("node_load1", now), 0.45);
    assert_eq!(
        prom.query_f64("http_request_duration_seconds_count", support::FIXTURE_END),
        27462.0
    );

    // Every hour of the 6h range is answered by all series: no block is
    // missing. Nothing exists before the first sample (beyond the 5 min
    // lookback).
    let range = prom.query_range(series, support::FIXTURE_START, support::FIXTURE_END, 3600);
    let values = range["result"][0]["values"]
        .as_array()
        .expect("matrix values")
        .clone();
    assert_eq!(values.len(), 6, "{range}");
    assert!(values.iter().all(|v| v[1] == "38"), "{range}");
    let before = prom.query(series, support::FIXTURE_START - 600);
    assert_eq!(
        before["result"].as_array().map(Vec::len),
        Some(0),
        "{before}"
    );

    // stop() must release the TSDB lock: a second server on the same
    // directory only starts if it did.
    prom.stop();
    let again = Prometheus::start(&data);
    assert_eq!(
        again.query_f64(series, support::FIXTURE_END),
        support::FIXTURE_SERIES as f64
    );
}

#[test]
fn harness_prometheus_start_options_are_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = StartOptions {
        admin_api: false,
        ..StartOptions::default()
    };
    let prom = Prometheus::start_with(tmp.path(), opts);
    let url = format!("{}/api/v1/admin/tsdb/snapshot", prom.url);
    let (_status, body) = support::http_post(&url).unwrap();
    assert!(body.contains("admin APIs disabled"), "{body}");
}

#[test]
fn harness_garage_serves_s3_with_the_test_key() {
    let g = garage();

    // Anonymous requests get an S3 XML error, not a connection error.
    let (status, body) = support::http_get(&g.endpoint).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Error>"), "{body}");

    let bucket = g.new_bucket("selftest");
    let info = g.run(&["bucket", "info", &bucket]);
    assert!(String::from_utf8_lossy(&info.stdout).contains(&bucket));

    // Signed requests with the harness's credentials, region and path-style
    // addressing work: the settings promsnap gets from `Garage::env()`.
    let client = g.s3_client();
    let got = support::block_on(async {
        client
            .put_object()
            .bucket(&bucket)
            .key("hello/world.txt")
            .body(ByteStream::from_static(b"hello garage"))
            .send()
            .await
            .expect("put_object");
        let obj = client
            .get_object()
            .bucket(&bucket)
            .key("hello/world.txt")
            .send()
            .await
            .expect("get_object");
        obj.body.collect().await.expect("read body").into_bytes()
    });
    assert_eq!(&got[..], b"hello garage");
}
