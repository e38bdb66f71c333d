//! The test harness: each test gets its own folder with a plans folder, a
//! catalog and sample data, and runs the real `lifeboat` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_lifeboat");

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("plans")).unwrap();
        Env { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn plans(&self) -> PathBuf {
        self.path("plans")
    }

    pub fn write_plan(&self, file: &str, text: &str) -> PathBuf {
        let p = self.plans().join(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--catalog")
            .arg(self.path("lifeboat.db"))
            .arg("--plans")
            .arg(self.plans())
            .arg("--work-dir")
            .arg(self.path("work"))
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("LIFEBOAT_CATALOG")
            .env_remove("LIFEBOAT_PLANS");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run lifeboat")
    }

    /// Runs a `--json` command: (parsed stdout, exit code).
    pub fn json(&self, args: &[&str]) -> (Value, i32) {
        let out = self.run(args);
        let code = out.status.code().unwrap_or(-1);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {args:?} is not JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (v, code)
    }

    /// Sample data: a folder of files (nested, a symlink, an excluded file)
    /// and a SQLite database with `rows` orders.
    pub fn seed(&self, rows: usize) {
        let files = self.path("data/files");
        std::fs::create_dir_all(files.join("nested/deeper")).unwrap();
        for i in 0..30 {
            std::fs::write(
                files.join(format!("nested/file-{i:02}.txt")),
                format!("file {i}\n").repeat(100 + i),
            )
            .unwrap();
        }
        std::fs::write(
            files.join("nested/deeper/big.bin"),
            pseudo_random(3 << 20, 7),
        )
        .unwrap();
        std::fs::write(files.join("scratch.tmp"), b"excluded").unwrap();
        std::os::unix::fs::symlink("nested/file-01.txt", files.join("link-to-01")).unwrap();
        make_db(&self.path("data/app.db"), rows);
    }

    pub fn local_plan(&self, extra_drill: &str) -> String {
        local_plan(
            "shop",
            &self.path("data"),
            &self.path("vaults"),
            extra_drill,
        )
    }
}

pub fn local_plan(name: &str, data: &Path, vaults: &Path, extra_drill: &str) -> String {
    format!(
        r#"name = "{name}"
owner = "sre@example.com"
rto = "10m"
rpo = "1h"

[backup]
schedule = "*/15 * * * *"
primary_region = "primary"
copy_to = ["dr"]

[regions.primary]
vault = "file://{vaults}/primary"

[regions.dr]
vault = "file://{vaults}/dr"

[[resources]]
name = "files"
kind = "path"
path = "{data}/files"
exclude = ["*.tmp"]

[[resources]]
name = "db"
kind = "sqlite"
path = "{data}/app.db"

[drill]
region = "dr"
isolate_primary = true

[[drill.checks]]
name = "orders-present"
resource = "db"
sql = "SELECT count(*) > 0 FROM orders"
{extra_drill}
"#,
        data = data.display(),
        vaults = vaults.display()
    )
}

pub fn make_db(path: &Path, rows: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO orders (total) SELECT i * 7 FROM n;"
    );
    sqlite(path, &sql);
}

pub fn sqlite(path: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .output()
        .expect("the sqlite3 command is needed by the tests (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "sqlite3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Deterministic incompressible-ish bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parses an RFC 3339 time from JSON into Unix milliseconds.
pub fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("time string"))
        .expect("RFC 3339")
        .timestamp_millis()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

/// Yields `left` bytes, then fails like a dying source.
pub struct FailingReader {
    pub left: usize,
}

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.left == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::other("source died")));
        }
        let n = self.left.min(buf.remaining()).min(64 * 1024);
        buf.put_slice(&vec![42u8; n]);
        self.left -= n;
        std::task::Poll::Ready(Ok(()))
    }
}
