//! A PostgreSQL cluster of the run's own, in a folder under /tmp, that can crash
//! (`pg_ctl stop -m immediate`: no shutdown checkpoint, connections cut) and start again on
//! the same port and data.

use std::path::{Path, PathBuf};
use std::process::Command;

use mfa_testkit::net::free_port;
use sqlx::{Connection, Executor, PgConnection};

use crate::HarnessError;

pub struct PrivateCluster {
    pg_bin: PathBuf,
    folder: PathBuf,
    pub port: u16,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl PrivateCluster {
    /// initdb and start in `<parent>/<name>`, off the async workers (initdb takes a few
    /// seconds).
    pub async fn launch(pg_bin: &Path, parent: &Path, name: &str) -> Result<Self, HarnessError> {
        let folder = parent.join(name);
        std::fs::create_dir_all(&folder)
            .map_err(HarnessError::io(format!("create {}", folder.display())))?;
        let pg_bin = pg_bin.to_path_buf();
        tokio::task::spawn_blocking(move || Self::start(&pg_bin, folder))
            .await
            .map_err(HarnessError::task("the cluster's start-up"))?
    }

    /// initdb and start, in `folder` (its data is removed on drop, its log kept).
    pub fn start(pg_bin: &Path, folder: PathBuf) -> Result<Self, HarnessError> {
        let cluster = Self {
            pg_bin: pg_bin.to_path_buf(),
            folder,
            port: free_port()?,
        };
        if is_root() {
            // initdb refuses root: the cluster belongs to the `postgres` user.
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:")
                    .arg(&cluster.folder),
                "chown",
            )?;
        }
        cluster.pg_tool(
            "initdb",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )?;
        // TCP only: a Unix socket's path must stay under 107 bytes, which a run's folder
        // name can exceed.
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = ''\n\
             max_connections = 200\nfsync = off\nfull_page_writes = off\n",
            cluster.port
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(cluster.data().join("postgresql.conf"))
            .and_then(|mut file| std::io::Write::write_all(&mut file, settings.as_bytes()))
            .map_err(HarnessError::io("write postgresql.conf"))?;
        cluster.start_server()?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.folder.join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.folder.join("postgres.log")
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>` (trust on loopback: a throw-away
    /// cluster of one run).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn start_server(&self) -> Result<(), HarnessError> {
        self.pg_tool(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-l",
                &self.log().to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    /// Stops at once, as a crash would: open connections are cut and nothing is flushed.
    pub fn crash(&self) -> Result<(), HarnessError> {
        self.pg_tool(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
    }

    pub async fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        let mut connection = PgConnection::connect(&self.url("postgres")).await?;
        connection
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await?;
        Ok(())
    }

    fn pg_tool(&self, tool: &str, args: &[&str]) -> Result<(), HarnessError> {
        let program = self.pg_bin.join(tool);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir("/");
        run(&mut command, tool)
    }
}

fn run(command: &mut Command, what: &str) -> Result<(), HarnessError> {
    let output = command.output().map_err(HarnessError::io(what))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(HarnessError::setup(
            what,
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ))
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.crash();
        // The data goes; the server's log stays with the run's other logs.
        let _ = std::fs::remove_dir_all(self.data());
    }
}
