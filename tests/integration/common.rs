//! The test harness: each test gets its own folder with a plans folder, a
//! catalog and sample data, and runs the real `lifeboat` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_lifeboat");

pub struct Env {
    pub dir: tempfile::TempDir,
    /// The database of this test's catalog when the run puts catalogs on
    /// PostgreSQL (`LIFEBOAT_TEST_CATALOG=postgres`); `None`: the SQLite
    /// file `lifeboat.db` in `dir`.
    pub pg_catalog: Option<String>,
}

/// Whether this test run puts the catalogs of `Env` on PostgreSQL.
pub fn catalogs_on_postgres() -> bool {
    match std::env::var("LIFEBOAT_TEST_CATALOG").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("LIFEBOAT_TEST_CATALOG={other}: expected `sqlite` or `postgres`"),
    }
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("plans")).unwrap();
        // An empty database: the commands that start a catalog create its
        // tables there, as they create the SQLite file.
        let pg_catalog = catalogs_on_postgres().then(|| {
            let db = format!("lifeboat_catalog_{:016x}", rand::random::<u64>());
            let server = crate::pg::server();
            server.admin_sql(
                "postgres",
                &format!("CREATE DATABASE {db} OWNER {}", crate::pg::USER),
            );
            db
        });
        Env { dir, pg_catalog }
    }

    /// What `--catalog` says: the SQLite file, or the database's URL
    /// (without its password: the commands get it from `PGPASSWORD`, as
    /// libpq's tools do).
    pub fn catalog(&self) -> PathBuf {
        match &self.pg_catalog {
            Some(db) => PathBuf::from(crate::pg::server().url(db)),
            None => self.path("lifeboat.db"),
        }
    }

    /// The catalog with its password, for opening it from the test.
    pub fn catalog_with_password(&self) -> PathBuf {
        match &self.pg_catalog {
            Some(db) => PathBuf::from(format!(
                "postgres://{}:{}@127.0.0.1:{}/{db}",
                crate::pg::USER,
                crate::pg::PASSWORD,
                crate::pg::server().port
            )),
            None => self.path("lifeboat.db"),
        }
    }

    /// Whether a command has created the catalog (its file, or its tables).
    pub fn catalog_exists(&self) -> bool {
        match &self.pg_catalog {
            Some(db) => {
                crate::pg::server().sql(db, "SELECT to_regclass('points') IS NOT NULL") == "t"
            }
            None => self.path("lifeboat.db").exists(),
        }
    }

    /// Loses the catalog, as when its host or database is gone: removes the
    /// file (with its WAL), or empties the database.
    pub fn lose_catalog(&self) {
        match &self.pg_catalog {
            Some(db) => {
                let server = crate::pg::server();
                server.admin_sql("postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
                server.admin_sql(
                    "postgres",
                    &format!("CREATE DATABASE {db} OWNER {}", crate::pg::USER),
                );
            }
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(self.path(&format!("lifeboat.db{suffix}")));
                }
            }
        }
    }

    /// Runs SQL on the catalog; its output as `sqlite3` prints it (columns
    /// joined by `|`, one row a line).
    pub fn sql(&self, sql: &str) -> String {
        match &self.pg_catalog {
            Some(db) => crate::pg::server().sql(db, sql),
            None => sqlite(&self.path("lifeboat.db"), sql),
        }
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
        let mut c = self.command_on(self.catalog(), args);
        if self.pg_catalog.is_some() {
            c = crate::pg::with_pg_env(c, crate::pg::PASSWORD);
        }
        c
    }

    /// `lifeboat` on another catalog (a path or a URL), with this
    /// environment's plans and work folder, and no catalog, plans or log
    /// settings inherited from the shell.
    pub fn command_on(&self, catalog: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--catalog")
            .arg(catalog)
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
