// Every public item needs a doc comment: CI runs clippy with -D warnings, so an undocumented one fails the build.
#![warn(missing_docs)]
//! Lifeboat: a disaster-recovery backup orchestrator.
//!
//! Operators describe each workload's DR plan in a TOML file; Lifeboat
//! takes recovery points on schedule, copies them to other regions,
//! records every point in a catalog, restores them in drills that measure
//! the RTO and RPO achieved, and reports whether each plan meets its
//! objectives. The flow, module by module:
//!
//! plan → schedule → backup → catalog → drill → report
//!
//! - [`plan`]: TOML files parsed into validated [`plan::Plan`]s (pure);
//! - [`schedule`]: cron, time zones and stable jitter: when runs fall due (pure);
//! - [`daemon`]: the scheduler that runs backups, drills and prunes on time;
//! - [`backup`], [`drill`], [`prune`]: the orchestrators, short pipelines of
//!   named phases that record what happens in the [`catalog`];
//! - [`resource`]: every step of every resource kind (snapshot, copy,
//!   restore, check, discard, delete), on top of [`vault`]s;
//! - [`retention`]: which points to keep, and why (pure);
//! - [`rebuild`]: the catalog's points recorded again from a vault's
//!   manifests, when the catalog is lost;
//! - [`report`] and [`evidence`]: exposure, drill statistics and the chain
//!   of drill records, for stakeholders;
//! - [`notify`]: webhooks told about failures and RPO breaches.
//!
//! `ARCHITECTURE.md` at the repository's root is the map: layers,
//! invariants, where to add a kind or a vault.

pub mod aws;
pub mod backup;
pub mod catalog;
pub mod context;
pub mod daemon;
pub mod demo;
pub mod drill;
pub mod evidence;
pub mod host;
pub mod lease;
pub mod leftovers;
pub mod notify;
pub mod pipe;
pub mod plan;
pub mod program;
pub mod progress;
pub mod prune;
pub mod rebuild;
pub mod report;
pub mod resource;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod units;
pub mod vault;
pub mod verify;
