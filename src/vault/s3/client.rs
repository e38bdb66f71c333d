//! The SDK clients of `s3://` vaults (and of the `s3` resource kind's
//! source buckets), cached per region and endpoint settings: building one
//! reads the credential chain, which should happen once, not per object.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_sdk_s3::Client;

use crate::aws::custom_endpoint;
use crate::plan::AwsSpec;

fn clients() -> &'static Mutex<HashMap<String, Client>> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Client>>> = OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

/// An S3 client for `region`, on the shared SDK configuration of
/// [`crate::aws::sdk_config`] (credential chain, timeouts, retry mode).
pub async fn client(region: &str, aws: Option<&AwsSpec>) -> Client {
    // A custom endpoint (S3-compatible store, test server) implies
    // path-style: such stores rarely resolve bucket subdomains.
    let path_style = aws
        .and_then(|a| a.force_path_style)
        .unwrap_or_else(|| custom_endpoint(aws, "AWS_ENDPOINT_URL_S3").is_some());
    // Everything the client is built from: the SDK configuration's key
    // (region, endpoint, profile) and the addressing style.
    let key = format!(
        "{region}|{:?}|{:?}|{path_style}",
        aws.and_then(|a| a.endpoint_url.as_ref()),
        aws.and_then(|a| a.profile.as_ref()),
    );
    // A poisoned lock only means a panic mid-insert; the map is intact.
    if let Some(c) = clients()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return c.clone();
    }
    let shared = crate::aws::sdk_config(region, aws).await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(path_style)
        .build();
    let c = Client::from_conf(config);
    clients()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, c.clone());
    c
}
