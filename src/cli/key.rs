//! `key generate`: a new key for a region's `encryption`, in the format of
//! `age-keygen`, so the `age` tool decrypts a vault's objects without
//! Lifeboat (`age -d -i FILE OBJECT`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;

use lifeboat::vault::{write_key_file, Key};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new age key (X25519): to stdout, like age-keygen, or to a
    /// new file readable by its owner only (-o). Keep a copy somewhere
    /// safe: without it, the points encrypted with it cannot be read.
    Generate {
        /// Create FILE (mode 0600; an existing file is never replaced)
        /// and print the public key on stderr.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub async fn run(cmd: &KeyCommand) -> Result<ExitCode> {
    let KeyCommand::Generate { output } = cmd;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (text, public) = Key::generate(&created);
    match output {
        Some(path) => {
            write_key_file(path, &text).with_context(|| {
                format!(
                    "cannot create key file {} (an existing file is never replaced)",
                    path.display()
                )
            })?;
            eprintln!("Public key: {public}");
        }
        None => out!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
