//! Writes `schemas/*.schema.json` from the event types.

use std::path::PathBuf;

use clap::Parser;

/// Writes the JSON Schema of every event payload to schemas/*.schema.json (in the source
/// tree), from the Rust event types: run it after changing an event, and commit the result.
#[derive(Parser)]
#[command(
    name = "generate-schemas",
    version,
    after_help = "Reads no MFA_* variable. README.md, section Events, describes the contract."
)]
struct Cli {}

fn main() -> std::io::Result<()> {
    Cli::parse();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    std::fs::create_dir_all(&dir)?;
    for (name, text) in shared::schema::render_all() {
        std::fs::write(dir.join(&name), text)?;
        println!("wrote schemas/{name}");
    }
    Ok(())
}
