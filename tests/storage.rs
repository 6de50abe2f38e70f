//! The shared storage suite, run on a real S3 server (Garage). The unit
//! tests run the same suite on the local backend.

use promsnap::storage::{suite, Location, S3Options, StaticCredentials};

use crate::support;

#[test]
fn s3_backend_passes_the_shared_suite_on_garage() {
    let garage = support::garage();
    let bucket = garage.new_bucket("suite");
    // The keys travel in the options (as from the configuration file), not
    // through the process environment, which tests running in parallel share.
    let opts = S3Options {
        endpoint: Some(garage.endpoint.clone()),
        region: Some(garage.region.clone()),
        path_style: true,
        credentials: Some(StaticCredentials {
            access_key_id: garage.access_key.clone(),
            secret_access_key: garage.secret_key.clone(),
        }),
        ..S3Options::default()
    };
    support::block_on(async {
        let location = Location::parse(&format!("s3://{bucket}/some/prefix")).unwrap();
        let storage = promsnap::storage::open(&location, &opts).await.unwrap();
        suite::run(storage.as_ref()).await.unwrap();
    });
}
