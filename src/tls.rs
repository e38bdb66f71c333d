//! One TLS stack for every client Lifeboat runs: rustls with the aws-lc-rs
//! provider. The AWS SDKs and sqlx name their provider themselves; reqwest
//! (webhooks, the heartbeat) takes the process default, installed here.

/// Makes aws-lc-rs the process's default rustls provider, once; later
/// calls (and a provider installed first by anyone else) change nothing.
pub fn install_default_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
