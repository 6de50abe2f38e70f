//! The shared storage suite, run on a real S3 server (Garage). The unit
//! tests run the same suite on the local backend.

use std::time::Duration;

use bytes::Bytes;
use promsnap::storage::{suite, Key, Location, S3Options, StaticCredentials};

use crate::support::{self, faultproxy::Stats, FaultProxy, Faults};

/// Options for Garage at `endpoint`. The keys travel in the options (as
/// from the configuration file), not through the process environment,
/// which tests running in parallel share.
fn options(garage: &support::Garage, endpoint: &str) -> S3Options {
    S3Options {
        endpoint: Some(endpoint.to_string()),
        region: Some(garage.region.clone()),
        path_style: true,
        credentials: Some(StaticCredentials {
            access_key_id: garage.access_key.clone(),
            secret_access_key: garage.secret_key.clone(),
        }),
        ..S3Options::default()
    }
}

#[test]
fn s3_backend_passes_the_shared_suite_on_garage() {
    let garage = support::garage();
    let bucket = garage.new_bucket("suite");
    let opts = options(garage, &garage.endpoint);
    support::block_on(async {
        let location = Location::parse(&format!("s3://{bucket}/some/prefix")).unwrap();
        let storage = promsnap::storage::open(&location, &opts).await.unwrap();
        suite::run(storage.as_ref()).await.unwrap();
    });
}

/// Every answer with more than 3 MiB of body is cut off there by a proxy:
/// a download resumes where it broke off, asking only for the rest of the
/// range it asked for in the first place, so it yields exactly the bytes
/// asked for. (Resuming to the end of the object, as downloads once did,
/// would hand on bytes that belong to the next range, or past the range.)
#[test]
fn s3_downloads_cut_off_resume_within_their_range() {
    use futures::StreamExt;
    let garage = support::garage();
    let bucket = garage.new_bucket("cuts");
    let cut_after = 3 << 20;
    let proxy = FaultProxy::start(
        &garage.endpoint,
        Faults {
            seed: 11,
            error_500: 0.0,
            error_503: 0.0,
            reset: 0.0,
            slow: 0.0,
            slow_for: Duration::ZERO,
            cut: 1.0,
            cut_after,
        },
    );
    let opts = options(garage, &proxy.url);
    // More than one 4 MiB download range, with a short second one.
    let data: Vec<u8> = (0..(4 << 20) + 50_000)
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    support::block_on(async {
        let location = Location::parse(&format!("s3://{bucket}/cut")).unwrap();
        let storage = promsnap::storage::open(&location, &opts).await.unwrap();
        let key = Key::new("object").unwrap();
        storage
            .put_bytes(&key, Bytes::from(data.clone()))
            .await
            .unwrap();
        let whole = storage.get_bytes(&key, data.len() as u64).await.unwrap();
        assert!(whole == data, "the whole object came back with other bytes");
        let (offset, length) = (1000, cut_after + 500_000);
        let mut part = Vec::new();
        let mut stream = storage
            .get_range(&key, offset, length as u64)
            .await
            .unwrap();
        while let Some(chunk) = stream.next().await {
            part.extend_from_slice(&chunk.unwrap());
        }
        assert!(
            part == data[offset as usize..offset as usize + length],
            "the range came back with {} bytes, or other bytes",
            part.len()
        );
    });
    let cuts = Stats::get(&proxy.stats.cuts);
    assert!(cuts >= 2, "only {cuts} answers were cut off");
}
