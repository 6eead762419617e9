//! Where the programs are: the servers from `scripts/install-tools` (cached outside the
//! checkout) and the services from this workspace's target folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

#[derive(Debug, Clone)]
pub struct Tools {
    pub tansu: PathBuf,
    pub maildev: PathBuf,
    /// The folder with `initdb`, `pg_ctl` and `pg_isready`.
    pub pg_bin: PathBuf,
    /// The folder with the four service binaries.
    pub services: PathBuf,
}

/// The repository's root: the harness is `<root>/chaos`.
#[expect(
    clippy::expect_used,
    reason = "CARGO_MANIFEST_DIR is <root>/chaos, which always has a parent"
)]
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the chaos crate lives in the repository")
        .to_path_buf()
}

impl Tools {
    /// Asks `scripts/install-tools --print` (which installs what is missing, and answers in
    /// well under a second when nothing is), and finds the service binaries next to the
    /// running executable.
    pub fn locate() -> Result<Self, HarnessError> {
        let script = repository_root().join("scripts/install-tools");
        let output = Command::new(&script)
            .arg("--print")
            .output()
            .map_err(HarnessError::io(format!("run {}", script.display())))?;
        if !output.status.success() {
            return Err(HarnessError::setup(
                "scripts/install-tools",
                String::from_utf8_lossy(&output.stderr),
            ));
        }
        let printed = String::from_utf8_lossy(&output.stdout);
        let get = |key: &str| {
            printed
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .map(PathBuf::from)
                .ok_or_else(|| HarnessError::setup("scripts/install-tools", format!("no {key}")))
        };
        let tools = Self {
            tansu: get("TANSU_BIN")?,
            maildev: get("MAILDEV_BIN")?,
            pg_bin: get("PG_BIN")?,
            services: service_folder()?,
        };
        for service in crate::system::ServiceKind::ALL {
            let binary = tools.service_binary(service.binary());
            if !binary.is_file() {
                return Err(HarnessError::setup(
                    "service binaries",
                    format!(
                        "{} is missing: run `cargo build --bins` first (scripts/test and scripts/chaos do)",
                        binary.display()
                    ),
                ));
            }
        }
        Ok(tools)
    }

    pub fn service_binary(&self, name: &str) -> PathBuf {
        self.services.join(name)
    }
}

/// `target/<profile>`: the folder of this executable, or its parent when this is a test
/// binary in `deps/`.
fn service_folder() -> Result<PathBuf, HarnessError> {
    let exe = std::env::current_exe().map_err(HarnessError::io("find the running executable"))?;
    let folder = exe
        .parent()
        .ok_or_else(|| HarnessError::setup("target folder", exe.display()))?;
    Ok(if folder.ends_with("deps") {
        folder.parent().unwrap_or(folder).to_path_buf()
    } else {
        folder.to_path_buf()
    })
}
