//! One integration-test binary: scenarios that run the real `lifeboat`
//! binary on real files, vaults and catalogs.

mod aws;
mod aws_proxy;
mod bad_input;
mod binding;
mod catalog_open;
mod catalog_postgres;
mod cli;
mod closed_stdout;
mod common;
mod crash;
mod daemon;
mod encryption;
mod evidence_chain;
mod fleet;
mod hooks;
mod leases;
mod leftovers;
mod local_loop;
mod mariadb;
mod metrics;
mod moto;
mod netfault;
mod notify;
mod object_lock;
mod path_fidelity;
mod permissions;
mod pg;
mod postgres;
mod rebuild;
mod report;
mod restore;
mod validation;
mod vault_conformance;
mod verify;
