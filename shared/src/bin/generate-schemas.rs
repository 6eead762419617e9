//! Writes `schemas/*.schema.json` from the event types.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    std::fs::create_dir_all(&dir)?;
    for (name, text) in shared::schema::render_all() {
        std::fs::write(dir.join(&name), text)?;
        println!("wrote schemas/{name}");
    }
    Ok(())
}
