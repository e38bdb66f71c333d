//! The embedded default: sample data for `plans/demo.toml`, created on first
//! run so a newcomer sees a backup, a copy, a drill and a report with no
//! cloud account.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::plan::{Plan, ResourceSpec};

/// Sample data that could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create {path}: {detail}")]
pub struct SeedError {
    /// The folder or database that was being created.
    pub path: std::path::PathBuf,
    /// The I/O or SQLite error.
    pub detail: String,
}

/// Creates the sample data of every resource of `plan` whose source is
/// missing. Returns what was created, for the user.
pub async fn seed(plan: &Plan) -> Result<Vec<String>, SeedError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |e: &dyn std::fmt::Display| SeedError {
            path,
            detail: e.to_string(),
        }
    };
    let mut created = Vec::new();
    for res in &plan.resources {
        match &res.spec {
            ResourceSpec::Path { path, .. } if !path.exists() => {
                seed_files(path).map_err(|e| failed(path)(&e))?;
                created.push(format!("sample files in {}", path.display()));
            }
            ResourceSpec::Sqlite { path } if !path.exists() => {
                seed_database(path).await.map_err(|e| failed(path)(&e))?;
                created.push(format!("sample SQLite database {}", path.display()));
            }
            // Sources that exist are left alone; the other kinds' sources
            // live on servers a demo does not create.
            ResourceSpec::Path { .. }
            | ResourceSpec::Sqlite { .. }
            | ResourceSpec::Postgres { .. }
            | ResourceSpec::S3 { .. }
            | ResourceSpec::RdsInstance { .. }
            | ResourceSpec::RdsCluster { .. } => {}
        }
    }
    Ok(created)
}

fn seed_files(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("invoices/2026"))?;
    std::fs::create_dir_all(root.join("config"))?;
    std::fs::write(
        root.join("README.txt"),
        "Sample data protected by the Lifeboat demo plan.\n",
    )?;
    std::fs::write(
        root.join("config/app.toml"),
        "listen = \"127.0.0.1:8080\"\nworkers = 4\n",
    )?;
    for i in 1..=50 {
        let body: String = (0..200)
            .map(|line| format!("invoice {i:04} line {line:03}: 1 x widget @ 9.99 EUR\n"))
            .collect();
        std::fs::write(root.join(format!("invoices/2026/invoice-{i:04}.txt")), body)?;
    }
    Ok(())
}

async fn seed_database(path: &Path) -> Result<(), sqlx::Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await?;
    let mut tx = conn.begin().await?;
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total_cents INTEGER NOT NULL, created_at TEXT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    for i in 1..=1000 {
        sqlx::query(
            "INSERT INTO orders (customer, total_cents, created_at) VALUES (?, ?, datetime('now'))",
        )
        .bind(format!("customer-{:03}", i % 97))
        .bind((i * 137) % 10_000)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    conn.close().await
}
