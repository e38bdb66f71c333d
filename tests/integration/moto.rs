//! moto's server mode, started once per test binary on a free loopback
//! port: a real S3-speaking server for the real `aws-sdk-s3` client.
//! A watchdog shell stops it when the test process exits.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Moto {
    pub endpoint: String,
}

fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("LIFEBOAT_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server")
}

/// The shared moto server (started on first use). Panics, loudly, when
/// moto is not installed: the tests never skip silently.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let bin = moto_server();
        assert!(
            bin.exists(),
            "moto is not installed at {} (./scripts/test.sh installs it into .venv)",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = format!(
            "\"{}\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $m",
            bin.display(),
            std::process::id()
        );
        // The watchdog outlives this function on purpose: it stops moto
        // when the test process exits.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Fake credentials for the standard chain; moto accepts any.
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(k, v);
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    })
}

impl Moto {
    /// The AWS settings a plan uses to reach moto.
    pub fn aws(&self) -> lifeboat::plan::AwsSpec {
        lifeboat::plan::AwsSpec {
            endpoint_url: Some(self.endpoint.clone()),
            force_path_style: Some(true),
            profile: None,
            poll_interval: None,
            read_timeout: None,
        }
    }

    /// Creates a bucket in `region` with the real SDK.
    pub async fn bucket(&self, name: &str, region: &str) {
        let client = lifeboat::vault::s3_client(region, Some(&self.aws())).await;
        let mut req = client.create_bucket().bucket(name);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        req.send().await.expect("create bucket");
    }
}
