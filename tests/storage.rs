//! The shared storage suite, run on a real S3 server (Garage). The unit
//! tests run the same suite on the local backend.

use promsnap::storage::{suite, Location, S3Options};

use crate::support;

#[test]
fn s3_backend_passes_the_shared_suite_on_garage() {
    let garage = support::garage();
    let bucket = garage.new_bucket("suite");
    let opts = S3Options {
        endpoint: Some(garage.endpoint.clone()),
        region: Some(garage.region.clone()),
        path_style: true,
        ..S3Options::default()
    };
    // Credentials come from the environment chain, as for the binary.
    std::env::set_var("AWS_ACCESS_KEY_ID", &garage.access_key);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &garage.secret_key);
    support::block_on(async {
        let location = Location::parse(&format!("s3://{bucket}/some/prefix")).unwrap();
        let storage = promsnap::storage::open(&location, &opts).await.unwrap();
        suite::run(storage.as_ref()).await.unwrap();
    });
}
