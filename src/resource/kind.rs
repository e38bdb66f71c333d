//! The kind of a resource as a value: what a point row records, so that a
//! point is handled by its own kind whatever its plan says today.

use std::fmt;

use crate::plan::ResourceSpec;

/// One kind of DESIGN.md's table. Stored in the catalog as its plan
/// spelling (`rds-instance`), which is also how it prints.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, serde::Serialize, serde::Deserialize,
)]
#[sqlx(type_name = "text", rename_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A folder or file, archived as tar + zstd into a vault.
    Path,
    /// A SQLite database, copied online with `VACUUM INTO` into a vault.
    Sqlite,
    /// A PostgreSQL database, dumped by `pg_dump -Fc` into a vault.
    Postgres,
    /// An S3 bucket or prefix, copied object by object inside S3 into an
    /// `s3://` vault.
    S3,
    /// An RDS DB instance; its points are DB snapshots RDS holds.
    RdsInstance,
    /// An Aurora cluster; its points are cluster snapshots RDS holds.
    RdsCluster,
}

impl Kind {
    /// Every kind, in DESIGN.md's order.
    pub const ALL: [Kind; 6] = [
        Kind::Path,
        Kind::Sqlite,
        Kind::Postgres,
        Kind::S3,
        Kind::RdsInstance,
        Kind::RdsCluster,
    ];

    /// The `kind` key as written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Path => "path",
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::S3 => "s3",
            Kind::RdsInstance => "rds-instance",
            Kind::RdsCluster => "rds-cluster",
        }
    }

    /// The kind of a resource of a plan.
    pub fn of(spec: &ResourceSpec) -> Kind {
        match spec {
            ResourceSpec::Path { .. } => Kind::Path,
            ResourceSpec::Sqlite { .. } => Kind::Sqlite,
            ResourceSpec::Postgres { .. } => Kind::Postgres,
            ResourceSpec::S3 { .. } => Kind::S3,
            ResourceSpec::RdsInstance { .. } => Kind::RdsInstance,
            ResourceSpec::RdsCluster { .. } => Kind::RdsCluster,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_print_as_plans_spell_them() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "path",
                "sqlite",
                "postgres",
                "s3",
                "rds-instance",
                "rds-cluster"
            ]
        );
        assert_eq!(Kind::RdsCluster.to_string(), "rds-cluster");
    }
}
