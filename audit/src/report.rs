//! `mfa-audit report --from DATE --to DATE`: how many logins, how many needed a code (the MFA
//! rate), and what became of the codes (passed, wrong, expired, locked, undelivered), by day
//! and by platform, as a table, as JSON (`--json`), and as an SVG chart of the daily logins
//! and MFA rate (`--chart FILE.svg`).
//!
//! Every figure belongs to the login it is about: its day (UTC) and platform are the
//! `LoginAttempted`'s, so a code passed after midnight counts on the login's day. A login
//! is counted once its story is complete enough ([`WINDOW`] of log time after it began, or the
//! end of the log); memory holds only the logins of that window. A code is counted once, with
//! the login it was issued for (a throttled login shares a code, and is counted as needing
//! one).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use shared::events::Envelope;

use crate::timeline::{CodeEnd, Decision, Filter, Login, Stories};

/// How long after a login its events are awaited before it is counted: longer than a code
/// lives (10 minutes by default) and than the code email's retries.
pub const WINDOW: chrono::Duration = chrono::Duration::hours(2);

/// How often (in events) the logins past the window are counted and forgotten.
const COUNT_EVERY: u32 = 10_000;

/// The report's days, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    NotADate(String),
    #[error("--from {from} is after --to {to}")]
    Reversed { from: NaiveDate, to: NaiveDate },
}

impl DateRange {
    pub fn parse(from: &str, to: &str) -> Result<Self, RangeError> {
        let date = |raw: &str| {
            NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
                .map_err(|_| RangeError::NotADate(raw.to_owned()))
        };
        let (from, to) = (date(from)?, date(to)?);
        if from > to {
            return Err(RangeError::Reversed { from, to });
        }
        Ok(Self { from, to })
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        (self.from..=self.to).contains(&at.date_naive())
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let to = self.to;
        self.from.iter_days().take_while(move |day| *day <= to)
    }
}

/// The figures of a set of logins.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    pub logins: u64,
    /// Approved without a code.
    pub approved: u64,
    /// Asked for a code (a new one, or the one emailed moments before).
    pub mfa_required: u64,
    pub rejected: u64,
    /// No decision in the log.
    pub undecided: u64,
    /// Logins approved once their code was passed.
    pub approved_after_mfa: u64,
    /// Codes emailed (accepted by the mail server).
    pub codes_sent: u64,
    pub delivery_failures: u64,
    /// Codes passed.
    pub mfa_succeeded: u64,
    /// Wrong codes typed (the one that locked a code included).
    pub wrong_codes: u64,
    pub expired_codes: u64,
    pub locked_codes: u64,
}

impl Counts {
    /// Logins that needed a code, of all logins; 0 without logins.
    pub fn mfa_rate(&self) -> f64 {
        if self.logins == 0 {
            0.0
        } else {
            self.mfa_required as f64 / self.logins as f64
        }
    }

    fn count(&mut self, login: &Login) {
        self.logins += 1;
        match login.story.decision.as_ref().map(|d| &d.decision) {
            None => self.undecided += 1,
            Some(Decision::Approved) => self.approved += 1,
            Some(Decision::Rejected { .. }) => self.rejected += 1,
            Some(Decision::MfaRequired | Decision::Throttled { .. }) => self.mfa_required += 1,
        }
        if login.outcome == crate::timeline::Outcome::ApprovedAfterMfa {
            self.approved_after_mfa += 1;
        }
        let Some(code) = &login.code else { return };
        if code.issued_for != login.story.attempt_id {
            return;
        }
        self.codes_sent += u64::from(code.sent_at.is_some());
        self.wrong_codes += code.wrong_codes.len() as u64;
        match login.code_end {
            Some((CodeEnd::Succeeded, _)) => self.mfa_succeeded += 1,
            Some((CodeEnd::Expired, _)) => self.expired_codes += 1,
            Some((CodeEnd::Locked, _)) => self.locked_codes += 1,
            Some((CodeEnd::DeliveryFailed, _)) => self.delivery_failures += 1,
            Some((CodeEnd::Superseded | CodeEnd::Revoked, _)) | None => {}
        }
    }

    fn json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("mfa_rate".into(), round4(self.mfa_rate()).into());
        }
        value
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The report of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub range: DateRange,
    pub totals: Counts,
    /// Every day of the range, those without logins too.
    pub by_day: BTreeMap<NaiveDate, Counts>,
    /// The platforms that had logins.
    pub by_platform: BTreeMap<&'static str, Counts>,
}

/// The fold that makes a [`Report`] from the log's events.
pub struct ReportBuilder {
    stories: Stories,
    report: Report,
    since_count: u32,
}

impl ReportBuilder {
    pub fn new(range: DateRange) -> Self {
        Self {
            stories: Stories::new(Filter::All),
            report: Report {
                range,
                totals: Counts::default(),
                by_day: range.days().map(|day| (day, Counts::default())).collect(),
                by_platform: BTreeMap::new(),
            },
            since_count: 0,
        }
    }

    pub fn apply(&mut self, envelope: &Envelope) {
        self.stories.apply(envelope);
        self.since_count += 1;
        if self.since_count >= COUNT_EVERY {
            self.since_count = 0;
            if let Some(now) = self.stories.now() {
                let done = self.stories.take_older_than(now - WINDOW, now - WINDOW * 2);
                self.count(&done);
            }
        }
    }

    fn count(&mut self, logins: &[Login]) {
        for login in logins {
            if !self.report.range.contains(login.story.at) {
                continue;
            }
            self.report.totals.count(login);
            self.report
                .by_day
                .entry(login.story.at.date_naive())
                .or_default()
                .count(login);
            self.report
                .by_platform
                .entry(login.story.platform.as_str())
                .or_default()
                .count(login);
        }
    }

    pub fn finish(mut self) -> Report {
        let rest = std::mem::replace(&mut self.stories, Stories::new(Filter::All)).finish();
        self.count(&rest);
        self.report
    }
}

const COLUMNS: [&str; 12] = [
    "logins",
    "approved",
    "mfa",
    "mfa rate",
    "passed",
    "wrong",
    "expired",
    "locked",
    "undelivered",
    "rejected",
    "undecided",
    "sent",
];

fn row(label: &str, counts: &Counts) -> Vec<String> {
    vec![
        label.to_owned(),
        counts.logins.to_string(),
        counts.approved.to_string(),
        counts.mfa_required.to_string(),
        format!("{:.1}%", counts.mfa_rate() * 100.0),
        counts.mfa_succeeded.to_string(),
        counts.wrong_codes.to_string(),
        counts.expired_codes.to_string(),
        counts.locked_codes.to_string(),
        counts.delivery_failures.to_string(),
        counts.rejected.to_string(),
        counts.undecided.to_string(),
        counts.codes_sent.to_string(),
    ]
}

fn table(out: &mut String, first: &str, rows: &[Vec<String>]) {
    let header: Vec<&str> = std::iter::once(first).chain(COLUMNS).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |out: &mut String, cells: &[&str]| {
        for (n, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            let _ = if n == 0 {
                write!(out, "{cell:<width$}")
            } else {
                write!(out, "  {cell:>width$}")
            };
        }
        out.push('\n');
    };
    line(out, &header);
    for row in rows {
        line(out, &row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

impl Report {
    /// The tables a person reads: totals, by day, by platform.
    pub fn render_table(&self) -> String {
        let mut out = format!(
            "Logins from {} to {} (UTC days, both included)\n\n",
            self.range.from, self.range.to
        );
        table(&mut out, "total", &[row("all", &self.totals)]);
        out.push('\n');
        let days: Vec<Vec<String>> = self
            .by_day
            .iter()
            .map(|(day, counts)| row(&day.to_string(), counts))
            .collect();
        table(&mut out, "day", &days);
        out.push('\n');
        let platforms: Vec<Vec<String>> = self
            .by_platform
            .iter()
            .map(|(platform, counts)| row(platform, counts))
            .collect();
        table(&mut out, "platform", &platforms);
        out.push_str(
            "\nmfa: logins asked for a code (new or shared); passed, wrong, expired, locked, \
             undelivered, sent: codes, counted with the login they were issued for.\n",
        );
        out
    }

    pub fn render_json(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.range.from.to_string(),
            "to": self.range.to.to_string(),
            "totals": self.totals.json(),
            "by_day": self.by_day.iter().map(|(day, counts)| {
                let mut value = counts.json();
                value["day"] = day.to_string().into();
                value
            }).collect::<Vec<_>>(),
            "by_platform": self.by_platform.iter().map(|(platform, counts)| {
                let mut value = counts.json();
                value["platform"] = (*platform).into();
                value
            }).collect::<Vec<_>>(),
        })
    }

    /// The daily logins (bars, left axis) and MFA rate (line, right axis, 0-100%) as an SVG
    /// document.
    pub fn render_chart(&self) -> String {
        chart(
            &self
                .by_day
                .iter()
                .map(|(day, counts)| (*day, counts.logins, counts.mfa_rate()))
                .collect::<Vec<_>>(),
        )
    }
}

/// The chart of `(day, logins, mfa rate)`: a small SVG writer, no drawing library.
fn chart(days: &[(NaiveDate, u64, f64)]) -> String {
    const WIDTH: f64 = 900.0;
    const HEIGHT: f64 = 420.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 70.0;
    const TOP: f64 = 50.0;
    const BOTTOM: f64 = 70.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max_logins = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let scale = nice_ceiling(max_logins);
    let slot = plot_w / days.len().max(1) as f64;
    let y_logins = |n: f64| TOP + plot_h - n / scale as f64 * plot_h;
    let y_rate = |rate: f64| TOP + plot_h - rate * plot_h;
    let x_mid = |i: usize| LEFT + slot * (i as f64 + 0.5);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="24" text-anchor="middle" font-size="16">Daily logins and MFA rate</text>"##,
        WIDTH / 2.0
    );
    // Grid and the two axes' ticks.
    for tick in 0..=4 {
        let fraction = f64::from(tick) / 4.0;
        let y = TOP + plot_h - fraction * plot_h;
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 8.0,
            y + 4.0,
            (scale as f64 * fraction).round()
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="start" fill="#c0392b">{:.0}%</text>"##,
            LEFT + plot_w + 8.0,
            y + 4.0,
            fraction * 100.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        TOP + plot_h,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h
    );
    // Bars: the day's logins.
    let label_every = (days.len() / 12).max(1);
    for (i, (day, logins, _)) in days.iter().enumerate() {
        let y = y_logins(*logins as f64);
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#4a90d9"><title>{day}: {logins} logins</title></rect>"##,
            x_mid(i) - slot * 0.35,
            slot * 0.7,
            TOP + plot_h - y
        );
        if i % label_every == 0 {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" transform="rotate(-45 {:.1} {:.1})">{day}</text>"##,
                x_mid(i),
                TOP + plot_h + 16.0,
                x_mid(i),
                TOP + plot_h + 16.0
            );
        }
    }
    // Line: the MFA rate, broken over days without logins (they have no rate).
    let mut segment: Vec<String> = Vec::new();
    let mut segments: Vec<Vec<String>> = Vec::new();
    for (i, (day, logins, rate)) in days.iter().enumerate() {
        if *logins == 0 {
            segments.push(std::mem::take(&mut segment));
            continue;
        }
        segment.push(format!("{:.1},{:.1}", x_mid(i), y_rate(*rate)));
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#c0392b"><title>{day}: MFA rate {:.1}%</title></circle>"##,
            x_mid(i),
            y_rate(*rate),
            rate * 100.0
        );
    }
    segments.push(segment);
    for points in segments.iter().filter(|points| points.len() > 1) {
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#c0392b" stroke-width="2"/>"##,
            points.join(" ")
        );
    }
    // Axis names and the legend.
    let _ = writeln!(
        svg,
        r##"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">logins per day</text>"##,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#c0392b" transform="rotate(90 {:.1} {:.1})">MFA rate</text>"##,
        WIDTH - 14.0,
        TOP + plot_h / 2.0,
        WIDTH - 14.0,
        TOP + plot_h / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="32" width="12" height="12" fill="#4a90d9"/><text x="{:.1}" y="42">logins</text><line x1="{:.1}" y1="38" x2="{:.1}" y2="38" stroke="#c0392b" stroke-width="2"/><text x="{:.1}" y="42">MFA rate</text>"##,
        LEFT + 16.0,
        LEFT + 80.0,
        LEFT + 100.0,
        LEFT + 106.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The smallest of 1, 2, 5 × 10^k at or above `n`: round axis labels.
fn nice_ceiling(n: u64) -> u64 {
    let mut magnitude = 1u64;
    loop {
        for step in [1, 2, 5] {
            let candidate = step * magnitude;
            if candidate >= n {
                return candidate;
            }
        }
        magnitude = magnitude.saturating_mul(10);
        if magnitude == u64::MAX {
            return n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::tests::known_log;
    use shared::domain::UserId;

    fn report(range: DateRange) -> Report {
        let (user, other) = (UserId::new(), UserId::new());
        let log = known_log(user, other);
        let mut builder = ReportBuilder::new(range);
        for event in &log.events {
            builder.apply(event);
        }
        builder.finish()
    }

    /// The known log's first day is 2025-12-01 (UTC), its second the day after.
    fn both_days() -> DateRange {
        DateRange::parse("2025-12-01", "2025-12-02").unwrap()
    }

    #[test]
    fn the_known_log_gives_the_expected_rows() {
        let report = report(both_days());
        let first = report.by_day[&NaiveDate::from_ymd_opt(2025, 12, 1).unwrap()];
        assert_eq!(
            first,
            Counts {
                logins: 4,
                approved: 2,
                mfa_required: 1,
                rejected: 1,
                approved_after_mfa: 1,
                codes_sent: 1,
                mfa_succeeded: 1,
                wrong_codes: 1,
                ..Counts::default()
            }
        );
        let second = report.by_day[&NaiveDate::from_ymd_opt(2025, 12, 2).unwrap()];
        assert_eq!(
            second,
            Counts {
                logins: 1,
                mfa_required: 1,
                codes_sent: 1,
                wrong_codes: 3,
                locked_codes: 1,
                ..Counts::default()
            }
        );
        assert_eq!(report.totals.logins, 5);
        assert_eq!(report.totals.mfa_rate(), 0.4);
        assert_eq!(report.by_platform["ios"].mfa_required, 2);
        assert_eq!(report.by_platform["dashboard"].logins, 2);
        assert_eq!(report.by_platform["android"].approved, 1);
        let table = report.render_table();
        assert!(table.contains("2025-12-02"), "{table}");
        assert!(table.contains("40.0%"), "{table}");
        let json = report.render_json();
        assert_eq!(json["totals"]["mfa_rate"], 0.4);
        assert_eq!(json["by_day"][1]["locked_codes"], 1);
        assert_eq!(json["by_platform"][0]["platform"], "android");
    }

    #[test]
    fn only_the_ranges_days_count_and_each_day_has_a_row() {
        let range = DateRange::parse("2025-12-02", "2025-12-04").unwrap();
        let report = report(range);
        assert_eq!(report.totals.logins, 1);
        assert_eq!(report.by_day.len(), 3);
        assert_eq!(
            report.by_day.values().map(|c| c.logins).collect::<Vec<_>>(),
            [1, 0, 0]
        );
    }

    #[test]
    fn the_chart_is_svg_with_a_bar_and_a_point_per_day() {
        let svg = report(both_days()).render_chart();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("logins</title></rect>").count(), 2);
        assert!(svg.contains("2025-12-01: MFA rate 25.0%"), "{svg}");
        assert!(svg.contains("2025-12-02: 1 logins"), "{svg}");
        let svg = report(DateRange::parse("2025-12-01", "2025-12-03").unwrap()).render_chart();
        assert_eq!(
            svg.matches("MFA rate 0.0%").count(),
            0,
            "no rate without logins"
        );
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn dates_are_parsed_not_guessed() {
        assert_eq!(
            DateRange::parse("2025-13-01", "2025-12-01"),
            Err(RangeError::NotADate("2025-13-01".into()))
        );
        assert!(matches!(
            DateRange::parse("2025-12-02", "2025-12-01"),
            Err(RangeError::Reversed { .. })
        ));
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(120), 200);
        assert_eq!(nice_ceiling(1), 1);
    }
}
