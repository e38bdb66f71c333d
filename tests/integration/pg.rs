//! A throwaway PostgreSQL server for the tests: one per test binary,
//! started on first use, on a free loopback port, with password
//! (SCRAM) authentication so a wrong password is really refused.
//!
//! Why one per binary and how it stops: initdb + start take seconds, too
//! slow per test, so the server is shared (each test uses its own databases
//! and plan names). Statics are never dropped at exit, so a `Drop` guard
//! cannot stop it; instead a small watchdog shell, started with the server,
//! waits for this test process to end (even by SIGKILL), then stops the
//! server (SIGQUIT: immediate shutdown) and removes its folder.
//!
//! PostgreSQL refuses to run as root: as root (CI), the server and initdb
//! run as the `postgres` user through `runuser`, in a folder it owns.
//! Missing binaries fail the tests loudly, never skip them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-pw-7c1e";
/// The role Lifeboat uses: LOGIN CREATEDB, not a superuser.
pub const USER: &str = "lifeboat";
pub const PASSWORD: &str = "lifeboat-pw-93af";

pub struct PgServer {
    pub port: u16,
    pub bin: PathBuf,
    /// The certificate authority that signed the server's TLS certificate
    /// (for 127.0.0.1): the root to trust with `sslmode=verify-full`.
    pub ca: PathBuf,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();

/// The shared server, started on first use.
pub fn server() -> &'static PgServer {
    SERVER.get_or_init(PgServer::start)
}

/// The folder holding initdb, pg_ctl and postgres: Debian keeps them in
/// /usr/lib/postgresql/<version>/bin (newest first), others on the PATH.
fn find_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return dir;
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin \
         nor on the PATH: run ./scripts/test.sh, which installs them (apt-get install postgresql postgresql-client)"
    );
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command is needed by the tests (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a test certificate authority into `dir` (`ca.crt`, `ca.key`).
pub fn test_ca(dir: &Path) -> PathBuf {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=lifeboat test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    );
    dir.join("ca.crt")
}

/// Writes a CA and a server certificate it signed for 127.0.0.1 into `dir`
/// (`ca.crt`, `server.crt`, `server.key` in mode 0600, as PostgreSQL
/// demands); returns the CA's certificate.
pub fn test_server_cert(dir: &Path) -> PathBuf {
    let ca = test_ca(dir);
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        dir,
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
        dir,
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    ca
}

/// Runs a server program, as `postgres` when we are root.
fn run_server_tool(root_user: bool, program: &Path, args: &[&str]) {
    let mut cmd = if root_user {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    fn start() -> PgServer {
        let bin = find_bin();
        let root_user = is_root();
        let root = tempfile::Builder::new()
            .prefix("lifeboat-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let data = root.join("data");
        let sock = root.join("sock");
        std::fs::create_dir_all(&sock).unwrap();
        let pwfile = root.join("pw");
        std::fs::write(&pwfile, ADMIN_PASSWORD).unwrap();
        // TLS, offered not required: clients that ask get it.
        let ca = test_server_cert(&root);
        let (cert, key) = (root.join("server.crt"), root.join("server.key"));
        if root_user {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&root)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok,
                "cannot give {} to the postgres user (PostgreSQL refuses to run as root; \
                 installing the postgresql package creates that user)",
                root.display()
            );
        }
        let s = |p: &Path| p.display().to_string();
        run_server_tool(
            root_user,
            &bin.join("initdb"),
            &[
                "-D",
                &s(&data),
                "-U",
                ADMIN,
                &format!("--pwfile={}", s(&pwfile)),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let port = free_port();
        let log = root.join("server.log");
        run_server_tool(
            root_user,
            &bin.join("pg_ctl"),
            &[
                "-D",
                &s(&data),
                "-l",
                &s(&log),
                "-w",
                "-o",
                &format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                     -c synchronous_commit=off -c full_page_writes=off \
                     -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                    s(&sock),
                    s(&cert),
                    s(&key)
                ),
                "start",
            ],
        );
        // The watchdog: outlives this process by at most a second.
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             kill -QUIT $(head -1 '{data}/postmaster.pid') 2>/dev/null; sleep 2; rm -rf '{root}'",
            pid = std::process::id(),
            data = s(&data),
            root = s(&root),
        );
        // Deliberately not waited for: it must outlive this process.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server watchdog");
        let server = PgServer { port, bin, ca };
        server.admin_sql(
            "postgres",
            &format!("CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{PASSWORD}'"),
        );
        server
    }

    fn psql(&self, user: &str, password: &str, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", db, "-c", sql])
            .env("PGPASSWORD", password)
            .env_remove("PGSERVICE")
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SQL as the superuser.
    pub fn admin_sql(&self, db: &str, sql: &str) -> String {
        self.psql(ADMIN, ADMIN_PASSWORD, db, sql)
    }

    /// SQL as Lifeboat's role (who owns the test databases).
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.psql(USER, PASSWORD, db, sql)
    }

    /// A fresh database owned by Lifeboat's role: two tables (one with a
    /// foreign key), an index, a sequence and `rows` orders.
    pub fn create_shop(&self, db: &str, rows: usize) {
        self.admin_sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
        self.admin_sql("postgres", &format!("CREATE DATABASE {db} OWNER {USER}"));
        self.sql(
            db,
            &format!(
                "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
                 CREATE TABLE orders (
                     id bigserial PRIMARY KEY,
                     customer_id int NOT NULL REFERENCES customers (id),
                     total numeric(10, 2) NOT NULL,
                     note text);
                 CREATE INDEX orders_customer ON orders (customer_id);
                 CREATE TABLE events (at date NOT NULL, what text) PARTITION BY RANGE (at);
                 CREATE TABLE events_2026 PARTITION OF events
                     FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
                 INSERT INTO events VALUES ('2026-12-02', 'opened');
                 CREATE SEQUENCE invoice_numbers START 1000;
                 SELECT setval('invoice_numbers', 1234);
                 INSERT INTO customers (name) SELECT 'customer ' || i FROM generate_series(1, 100) i;
                 INSERT INTO orders (customer_id, total, note)
                     SELECT 1 + i % 100, (i % 1000) / 10.0, md5(i::text)
                     FROM generate_series(1, {rows}) i;"
            ),
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Scratch databases of drills of `plan` still on the server.
    pub fn scratch_databases(&self, plan: &str) -> Vec<String> {
        let tag = format!("_{}_", plan.replace('-', "_"));
        self.admin_sql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'lifeboat\\_drill\\_%' ORDER BY 1",
        )
        .lines()
        .filter(|d| d.contains(&tag))
        .map(str::to_string)
        .collect()
    }
}

/// A lifeboat command with the test role's password and no stray libpq
/// settings from the environment.
pub fn with_pg_env(mut cmd: Command, password: &str) -> Command {
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSFILE",
        "PGSERVICE",
        "PGSSLMODE",
        "LIFEBOAT_PG_BIN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PGPASSWORD", password);
    cmd
}
