//! The benchmark's chart: decision-latency percentiles (p50, p90, p99) of password logins
//! against the offered load, with the argon2 ceiling and the sustained rate marked.
//!
//! Written as SVG by hand: `plotters` lays text out through a font backend (`ttf`, which
//! reads the system's fonts through fontconfig, or `ab_glyph`, which needs a font file
//! registered at run time), so its SVG backend alone cannot label axes on a machine without
//! fonts. Here the text is `<text>` elements that the viewer renders with its own fonts.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// One point of the sweep: the offered rate and what came of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepPoint {
    pub offered_per_s: f64,
    pub decided_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub lost: u64,
}

#[derive(Debug, Clone)]
pub struct Chart<'a> {
    pub points: &'a [SweepPoint],
    /// Raw argon2id verifications per second with login-intake's cost and threads.
    pub ceiling_per_s: f64,
    /// The closed loop's sustained password logins per second.
    pub sustained_per_s: f64,
    /// One verification's time: the floor of a password login's latency.
    pub argon2_ms: f64,
    /// A line under the title: the machine, the date.
    pub subtitle: &'a str,
}

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 60.0;

/// Text made safe for XML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A finite, positive value for a log axis (a missing figure is drawn at the bottom).
fn positive(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        1.0
    }
}

impl Chart<'_> {
    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let max_x = self
            .points
            .iter()
            .map(|p| p.offered_per_s)
            .chain([self.ceiling_per_s, self.sustained_per_s])
            .filter(|v| v.is_finite())
            .fold(1.0_f64, f64::max)
            * 1.05;
        // Latency on a log scale: from a few ms at light load to seconds past the ceiling.
        let values = self
            .points
            .iter()
            .flat_map(|p| [p.p50_ms, p.p90_ms, p.p99_ms])
            .chain([self.argon2_ms])
            .map(positive);
        let (low, high) = values.fold((f64::MAX, 1.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let decade_low = low.min(high).log10().floor();
        let decade_high = high.log10().ceil().max(decade_low + 1.0);
        let x = |v: f64| LEFT + plot_w * (v / max_x).clamp(0.0, 1.0);
        let y = |ms: f64| {
            let share = (positive(ms).log10() - decade_low) / (decade_high - decade_low);
            TOP + plot_h * (1.0 - share.clamp(0.0, 1.0))
        };
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            svg,
            r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="28" font-size="16" font-weight="bold">Password-login decision latency against offered load</text>"#
        );
        let _ = writeln!(
            svg,
            r##"<text x="{LEFT}" y="48" fill="#555">{}</text>"##,
            escape(self.subtitle)
        );
        // The axes' grid: each decade (and 2x, 5x) of ms, and ten steps of load.
        let mut decade = decade_low;
        while decade <= decade_high {
            for factor in [1.0, 2.0, 5.0] {
                let ms = 10f64.powf(decade) * factor;
                if ms.log10() > decade_high + 1e-9 {
                    continue;
                }
                let at = y(ms);
                let stroke = if factor == 1.0 { "#ccc" } else { "#eee" };
                let _ = writeln!(
                    svg,
                    r#"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="{stroke}"/>"#,
                    LEFT + plot_w
                );
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                    LEFT - 6.0,
                    at + 4.0,
                    format_ms(ms)
                );
            }
            decade += 1.0;
        }
        let step = tick_step(max_x);
        let ticks = (max_x / step).floor() as u32;
        for index in 0..=ticks {
            let value = step * f64::from(index);
            let at = x(value);
            let _ = writeln!(
                svg,
                r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#f0f0f0"/>"##,
                TOP + plot_h
            );
            let _ = writeln!(
                svg,
                r#"<text x="{at:.1}" y="{:.1}" text-anchor="middle">{value:.0}</text>"#,
                TOP + plot_h + 18.0
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">offered load (password logins started per second, open loop)</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 14.0
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">decision latency, ms (log scale)</text>"#,
            TOP + plot_h / 2.0
        );
        // The marks: the argon2 ceiling, the sustained rate, one verification's time.
        let marks = [
            (
                self.ceiling_per_s,
                "#c0392b",
                format!("argon2 ceiling {:.1}/s", self.ceiling_per_s),
            ),
            (
                self.sustained_per_s,
                "#7f8c8d",
                format!("sustained {:.1}/s", self.sustained_per_s),
            ),
        ];
        for (index, (value, colour, label)) in marks.iter().enumerate() {
            if !value.is_finite() || *value <= 0.0 {
                continue;
            }
            let at = x(*value);
            let _ = writeln!(
                svg,
                r#"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4"/>"#,
                TOP + plot_h
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" fill="{colour}" text-anchor="end">{}</text>"#,
                at - 4.0,
                TOP + 14.0 + 14.0 * index as f64,
                escape(label)
            );
        }
        let floor = y(self.argon2_ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{floor:.1}" x2="{:.1}" y2="{floor:.1}" stroke="#c0392b" stroke-dasharray="2 3"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="#c0392b" text-anchor="end">one argon2id verification {:.1} ms</text>"##,
            LEFT + plot_w - 4.0,
            floor - 5.0,
            self.argon2_ms
        );
        let series: [(&str, &str, Percentile); 3] = [
            ("p50", "#2471a3", |p| p.p50_ms),
            ("p90", "#28b463", |p| p.p90_ms),
            ("p99", "#d68910", |p| p.p99_ms),
        ];
        for (index, (name, colour, value)) in series.iter().enumerate() {
            let coordinates: Vec<String> = self
                .points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.offered_per_s), y(value(p))))
                .collect();
            if !coordinates.is_empty() {
                let _ = writeln!(
                    svg,
                    r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                    coordinates.join(" ")
                );
            }
            for p in self.points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    x(p.offered_per_s),
                    y(value(p))
                );
            }
            let legend_y = TOP + 10.0 + 20.0 * index as f64;
            let legend_x = LEFT + plot_w + 20.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{legend_x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{colour}" stroke-width="2"/>"#,
                legend_x + 24.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}">{name}</text>"#,
                legend_x + 30.0,
                legend_y + 4.0
            );
        }
        // Points that lost logins (no decision in time, or refused) are named: their
        // percentiles leave those out.
        let lossy: Vec<String> = self
            .points
            .iter()
            .filter(|p| p.lost > 0)
            .map(|p| format!("{:.0}/s: {} lost", p.offered_per_s, p.lost))
            .collect();
        let legend_x = LEFT + plot_w + 20.0;
        if !lossy.is_empty() {
            let _ = writeln!(
                svg,
                r#"<text x="{legend_x:.1}" y="{:.1}">logins without a decision:</text>"#,
                TOP + 90.0
            );
            for (index, line) in lossy.iter().enumerate() {
                let _ = writeln!(
                    svg,
                    r#"<text x="{legend_x:.1}" y="{:.1}">{}</text>"#,
                    TOP + 106.0 + 16.0 * index as f64,
                    escape(line)
                );
            }
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// A round step (1, 2 or 5 times a power of ten) that cuts `0..max` into at most ten.
fn tick_step(max: f64) -> f64 {
    let rough = (max / 10.0).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power)
}

/// Which percentile of a point a line draws.
type Percentile = fn(&SweepPoint) -> f64;

fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(offered: f64, p50: f64, lost: u64) -> SweepPoint {
        SweepPoint {
            offered_per_s: offered,
            decided_per_s: offered,
            p50_ms: p50,
            p90_ms: p50 * 1.5,
            p99_ms: p50 * 3.0,
            lost,
        }
    }

    /// Every element opened is closed, in order, and the document is one `<svg>`.
    fn assert_well_formed(svg: &str) {
        let mut open: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("a tag ends") + start;
            let tag = &rest[start + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name), "closing {name}");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().expect("a tag has a name");
                open.push(name.to_owned());
            }
            assert!(
                open.first().is_none_or(|root| root == "svg"),
                "one root: {open:?}"
            );
            rest = &rest[end + 1..];
        }
        assert!(open.is_empty(), "left open: {open:?}");
        assert!(svg.trim_start().starts_with("<svg "), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn the_chart_is_a_well_formed_svg_with_three_percentile_lines_and_the_ceiling() {
        let points = [
            point(8.0, 30.0, 0),
            point(40.0, 45.0, 0),
            point(80.0, 4000.0, 12),
        ];
        let svg = Chart {
            points: &points,
            ceiling_per_s: 80.0,
            sustained_per_s: 55.5,
            argon2_ms: 24.0,
            subtitle: "2 cores <test> & more",
        }
        .svg();
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<circle").count(), 9);
        assert!(svg.contains("argon2 ceiling 80.0/s"), "{svg}");
        assert!(svg.contains("sustained 55.5/s"), "{svg}");
        assert!(svg.contains("80/s: 12 lost"), "{svg}");
        assert!(svg.contains("2 cores &lt;test&gt; &amp; more"), "{svg}");
    }

    #[test]
    fn load_ticks_are_round_steps() {
        for (max, step) in [(117.0, 20.0), (50.0, 5.0), (8.0, 1.0), (1.05, 0.2)] {
            let got = tick_step(max);
            assert!((got - step).abs() < 1e-9, "{max}: {got}");
        }
    }

    #[test]
    fn missing_figures_still_give_a_well_formed_chart() {
        let svg = Chart {
            points: &[point(10.0, 0.0, 0), point(20.0, f64::NAN, 3)],
            ceiling_per_s: f64::NAN,
            sustained_per_s: 0.0,
            argon2_ms: 0.0,
            subtitle: "",
        }
        .svg();
        assert_well_formed(&svg);
        let empty = Chart {
            points: &[],
            ceiling_per_s: 50.0,
            sustained_per_s: 40.0,
            argon2_ms: 20.0,
            subtitle: "no sweep",
        }
        .svg();
        assert_well_formed(&empty);
        assert_eq!(empty.matches("<polyline").count(), 0);
    }
}
