//! The subcommands that question the log: `timeline`, `report` and `recheck`. Each reads the
//! log's events once (`mfa_audit::envelopes`) into its library fold and prints the result.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mfa_audit::deployment_keys::DeploymentKeys;
use mfa_audit::envelopes::{for_each_event, Skipped};
use mfa_audit::recheck::{Override, Recheck};
use mfa_audit::report::{DateRange, ReportBuilder};
use mfa_audit::timeline::{self, Filter, Login, Origin, Stories};
use mfa_runtime::supervise::error_chain;
use shared::domain::{AttemptId, UserId};

use super::{open_source, KafkaArgs};

/// How the log is read and the answer printed, for every question. The export file's flag is
/// each command's own: `report` has `--from DATE`.
#[derive(Args)]
pub struct LogArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// JSON on standard output instead of a table.
    #[arg(long)]
    json: bool,
    /// No progress on standard error.
    #[arg(long)]
    quiet: bool,
}

impl LogArgs {
    /// Reads every event of the log into `each`; what was left out goes to standard error.
    fn read(
        &self,
        file: Option<&PathBuf>,
        each: impl FnMut(&shared::events::Envelope),
    ) -> anyhow::Result<Skipped> {
        let mut source = open_source(file, &self.kafka, self.quiet)?;
        let skipped = for_each_event(
            source.as_mut(),
            &self.kafka.namespace,
            &mut std::io::stderr(),
            each,
        )?;
        if !self.quiet && skipped != Skipped::default() {
            eprintln!(
                "left out: {} duplicate copies, {} events of unknown types, {} unreadable",
                skipped.duplicates, skipped.unknown_types, skipped.unreadable
            );
        }
        Ok(skipped)
    }
}

fn print(text: &str) -> anyhow::Result<ExitCode> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("whose").required(true).args(["user", "attempt"])))]
pub struct TimelineArgs {
    /// Every login of this user (a user id).
    #[arg(long, value_name = "ID", value_parser = |raw: &str| UserId::parse(raw).map_err(|e| e.to_string()))]
    user: Option<UserId>,
    /// This login alone (an attempt id).
    #[arg(long, value_name = "ID", value_parser = |raw: &str| AttemptId::parse(raw).map_err(|e| e.to_string()))]
    attempt: Option<AttemptId>,
    /// An export file (`mfa-audit export --out FILE`); without it, the broker.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

pub fn timeline(args: TimelineArgs) -> anyhow::Result<ExitCode> {
    let filter = match (args.user, args.attempt) {
        (Some(user), _) => Filter::User(user),
        (None, Some(attempt)) => Filter::Attempt(attempt),
        (None, None) => anyhow::bail!("name --user or --attempt"),
    };
    // Before the log is read: a bad setting is said at once, not after a long read.
    let keys = DeploymentKeys::from_env()?;
    let mut stories = Stories::new(filter);
    args.log
        .read(args.from.as_ref(), |event| stories.apply(event))?;
    let mut logins = stories.finish();
    if let Some(keys) = &keys {
        open_origins(keys, &mut logins);
        let unreadable = logins
            .iter()
            .filter(|login| matches!(login.origin, Origin::Unreadable { .. }))
            .count();
        if unreadable > 0 && !args.log.quiet {
            eprintln!("timeline: the personal data of {unreadable} login(s) could not be read: each says why");
        }
    }
    if args.log.json {
        print(&format!("{:#}\n", timeline::render_json(&logins)))
    } else {
        print(&timeline::render_table(&logins))
    }
}

/// Opens the logins' sealed origins with the deployment's data keys. The key database is
/// reached only when a login is sealed; when it cannot be, every sealed login says so, and
/// the rest of its story is told all the same.
fn open_origins(keys: &DeploymentKeys, logins: &mut [Login]) {
    let mut store = None;
    timeline::open_origins(logins, |id| {
        let connect = || {
            keys.connect().map_err(|e| {
                format!(
                    "cannot reach the data keys' database (MFA_DATABASE_URL): {}",
                    error_chain(&e)
                )
            })
        };
        match store.get_or_insert_with(connect) {
            Ok(store) => store.key(id).map_err(|e| error_chain(&e)),
            Err(error) => Err(error.clone()),
        }
    });
}

#[derive(Args)]
pub struct ReportArgs {
    /// The first day (YYYY-MM-DD, UTC).
    #[arg(long = "from", value_name = "DATE")]
    from_date: String,
    /// The last day, included (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    to: String,
    /// Also draws the daily logins and MFA rate into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,
    /// An export file (`mfa-audit export --out FILE`); without it, the broker.
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let range = DateRange::parse(&args.from_date, &args.to)?;
    let mut builder = ReportBuilder::new(range);
    args.log
        .read(args.log_file.as_ref(), |event| builder.apply(event))?;
    let report = builder.finish();
    if let Some(path) = &args.chart {
        std::fs::write(path, report.render_chart())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.log.json {
        print(&format!("{:#}\n", report.render_json()))
    } else {
        print(&report.render_table())
    }
}

#[derive(Args)]
pub struct RecheckArgs {
    /// A risk setting to try, as the risk worker reads it (repeatable), e.g.
    /// `--set MFA_RISK_MEDIUM_THRESHOLD=0`. The other settings are the environment's.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = |raw: &str| Override::parse(raw).map_err(|e| e.to_string()))]
    overrides: Vec<Override>,
    /// List at most this many changed decisions (all are counted).
    #[arg(long, default_value_t = 1000)]
    max_listed: usize,
    /// An export file (`mfa-audit export --out FILE`); without it, the broker.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

pub fn recheck(args: RecheckArgs) -> anyhow::Result<ExitCode> {
    // Before the source is opened: the overrides go through the environment.
    let (current, proposed) = mfa_audit::recheck::settings(&args.overrides)?;
    let geo = mfa_audit::recheck::geoip(&current)?;
    if geo.is_empty() && !args.log.quiet {
        eprintln!("recheck: no GeoIP database configured (MFA_GEOIP_CITY_DB, MFA_GEOIP_ASN_DB): deciding without ASN, country and travel, unlike a live worker that has them");
    }
    let mut recheck = Recheck::new(current.policy, proposed.policy, geo, args.max_listed);
    // A live log's personal fields are sealed: the deployment's data keys open them.
    if let Some(keys) = DeploymentKeys::from_env()? {
        recheck =
            recheck.with_data_keys(keys.connect()?, keys.connect()?, keys.pseudonyms().cloned());
    }
    let mut failed = None;
    args.log.read(args.from.as_ref(), |event| {
        if failed.is_none() {
            failed = recheck.apply(event).err();
        }
    })?;
    if let Some(error) = failed {
        return Err(error.into());
    }
    if args.log.json {
        print(&format!("{:#}\n", recheck.render_json(&args.overrides)))
    } else {
        print(&recheck.render_table(&args.overrides))
    }
}
