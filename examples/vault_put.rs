//! Streams one local file into a vault with `Vault::put`, and prints the
//! bytes stored and the seconds taken: the raw upload speed of a vault,
//! without a backup's archiving and hashing. Used by `bench/s3_vault.sh`.
//!
//!     vault_put VAULT_URL REGION KEY FILE [ENDPOINT_URL]
//!
//! Credentials come from the standard AWS chain, as for `lifeboat` itself.

use std::time::Instant;

use lifeboat::plan::AwsSpec;
use lifeboat::vault::{Vault, VaultTarget};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, region, key, file, rest @ ..] = args.as_slice() else {
        return Err("usage: vault_put VAULT_URL REGION KEY FILE [ENDPOINT_URL]".into());
    };
    let aws = AwsSpec {
        endpoint_url: rest.first().cloned(),
        ..AwsSpec::default()
    };
    let vault = Vault::open(VaultTarget {
        url,
        region,
        aws: Some(&aws),
        kms_key: None,
        object_lock: None,
    })
    .await?;
    let reader = tokio::fs::File::open(file).await?;
    let start = Instant::now();
    let size = vault.put(key, reader).await?;
    println!("{size} {:.3}", start.elapsed().as_secs_f64());
    Ok(())
}
