//! A release file — any bytes — must parse or fail with an error naming the
//! file, never panic; a parsed one must give values and targets for every
//! cluster context without panicking.
#![no_main]

use berth_agent::context::ClusterContext;
use berth_agent::release::ReleaseFile;
use libfuzzer_sys::fuzz_target;

const CONTEXTS: [&str; 3] = [
    "cloud=gcp,env=prod,region=europe-west1,cluster=gke-prod-1",
    "cloud=onprem,env=staging,region=paris,cluster=par-staging-1",
    "cloud=aws,env=dev,region=us-east-1,cluster=eks-dev",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ReleaseFile::parse(text, "deploy/release.yaml") {
        Ok(release) => {
            for context in CONTEXTS {
                let context: ClusterContext = context.parse().expect("a valid context");
                let _ = release.targets(&context);
                let _ = release.values_for(&context);
                let _ = release.health_timeout();
            }
        }
        Err(error) => {
            assert!(
                error.to_string().contains("deploy/release.yaml"),
                "the error names the file: {error}"
            );
        }
    }
});
