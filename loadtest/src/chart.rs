//! Line charts as self-contained SVG: no font files, no native libraries,
//! readable in any browser. Series are drawn as step lines over a shared
//! time axis; long series are reduced to one point per pixel column, keeping
//! each column's highest value so peaks survive.

use std::fmt::Write;

use jiff::Timestamp;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// CSS colour.
    pub color: String,
    /// (time, value), in time order.
    pub points: Vec<(Timestamp, f64)>,
}

/// A chart of series over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// The time axis (default: the span of the series).
    pub x_range: Option<(Timestamp, Timestamp)>,
}

/// Several charts over the same time axis, stacked in one SVG document.
pub fn stack(charts: &[Chart]) -> String {
    let times = charts
        .iter()
        .flat_map(|c| c.series.iter().flat_map(|s| s.points.iter().map(|(t, _)| *t)));
    let range = times.clone().min().zip(times.max());
    let charts: Vec<Chart> = charts
        .iter()
        .map(|c| Chart {
            x_range: c.x_range.or(range),
            ..c.clone()
        })
        .collect();
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{}" viewBox="0 0 {WIDTH} {}">"#,
        HEIGHT * charts.len() as f64,
        HEIGHT * charts.len() as f64
    );
    out.push('\n');
    for (k, chart) in charts.iter().enumerate() {
        let inner = chart.to_svg();
        // Nest each chart as an <svg> placed at its row.
        let nested = inner.replacen("<svg ", &format!(r#"<svg y="{}" "#, HEIGHT * k as f64), 1);
        out.push_str(&nested);
    }
    out.push_str("</svg>\n");
    out
}

const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 70.0;

impl Chart {
    /// Renders the chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let all = self.series.iter().flat_map(|s| s.points.iter());
        let (mut t0, mut t1, mut top) = (i64::MAX, i64::MIN, 0.0f64);
        for (t, v) in all {
            t0 = t0.min(t.as_second());
            t1 = t1.max(t.as_second());
            if v.is_finite() {
                top = top.max(*v);
            }
        }
        if let Some((from, to)) = self.x_range {
            (t0, t1) = (from.as_second(), to.as_second());
        }
        if t0 >= t1 {
            (t0, t1) = (t0.min(t1), t0.min(t1) + 1);
        }
        let span = ((t1 - t0).max(1)) as f64;
        let y_max = nice_ceiling(top.max(1.0));
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let x = |t: i64| LEFT + plot_w * (t - t0) as f64 / span;
        let y = |v: f64| TOP + plot_h * (1.0 - (v / y_max).clamp(0.0, 1.0));

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="22" font-size="15">{}</text>"#,
            escape(&self.title)
        );
        // Horizontal grid and value labels.
        for k in 0..=5 {
            let v = y_max * f64::from(k) / 5.0;
            let yy = y(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                format_value(v)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        // Time labels: six ticks.
        for k in 0..=6 {
            let t = t0 + (span as i64) * k / 6;
            let xx = x(t);
            let label =
                Timestamp::from_second(t).map_or_else(|_| t.to_string(), |ts| ts.strftime("%a %H:%M").to_string());
            let _ = writeln!(
                svg,
                r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{label} UTC</text>"##,
                TOP + plot_h,
                TOP + plot_h + 16.0
            );
        }
        for s in &self.series {
            let mut path = String::new();
            let mut last_y: Option<f64> = None;
            for (xx, v) in reduce(&s.points, plot_w as usize, t0, span, LEFT, plot_w) {
                let yy = y(v);
                match last_y {
                    None => {
                        let _ = write!(path, "{xx:.1},{yy:.1}");
                    }
                    Some(prev) => {
                        let _ = write!(path, " {xx:.1},{prev:.1} {xx:.1},{yy:.1}");
                    }
                }
                last_y = Some(yy);
            }
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{path}"><title>{}</title></polyline>"#,
                escape(&s.color),
                escape(&s.name)
            );
        }
        // Legend under the axis.
        let mut lx = LEFT;
        let ly = HEIGHT - 18.0;
        for s in &self.series {
            let _ = writeln!(
                svg,
                r#"<rect x="{lx:.1}" y="{:.1}" width="14" height="4" fill="{}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
                ly - 5.0,
                escape(&s.color),
                lx + 18.0,
                escape(&s.name)
            );
            lx += 26.0 + 7.0 * s.name.chars().count() as f64;
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// One (x, highest value) per pixel column.
fn reduce(points: &[(Timestamp, f64)], columns: usize, t0: i64, span: f64, left: f64, width: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(usize, f64)> = Vec::new();
    for (t, v) in points {
        if !v.is_finite() {
            continue;
        }
        let offset = t.as_second() - t0;
        if offset < 0 || offset as f64 > span {
            continue;
        }
        let column = ((offset as f64 / span) * columns as f64) as usize;
        match out.last_mut() {
            Some((c, best)) if *c == column => *best = best.max(*v),
            _ => out.push((column, *v)),
        }
    }
    out.into_iter()
        .map(|(c, v)| (left + width * c as f64 / columns as f64, v))
        .collect()
}

/// The smallest 1, 2 or 5 x 10^k at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + 60 * minute).expect("time")
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(11.0), 20.0);
        assert_eq!(nice_ceiling(31.0), 50.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
    }

    #[test]
    fn long_series_keep_one_peak_per_column() {
        let points: Vec<_> = (0..10_000)
            .map(|m| (at(m), if m == 5_001 { 99.0 } else { 1.0 }))
            .collect();
        let reduced = reduce(
            &points,
            100,
            at(0).as_second(),
            (at(9_999).as_second() - at(0).as_second()) as f64,
            0.0,
            100.0,
        );
        assert_eq!(reduced.len(), 101);
        assert_eq!(reduced.iter().filter(|(_, v)| *v == 99.0).count(), 1);
    }

    #[test]
    fn renders_every_series_with_its_name_escaped() {
        let chart = Chart {
            title: "load <vs> instances".into(),
            y_label: "instances".into(),
            series: vec![
                Series {
                    name: "needed".into(),
                    color: "#999".into(),
                    points: (0..60).map(|m| (at(m), f64::from(m as u32 % 7))).collect(),
                },
                Series {
                    name: "a & b".into(),
                    color: "#c00".into(),
                    points: (0..60).map(|m| (at(m), 3.0)).collect(),
                },
            ],
            x_range: None,
        };
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("load &lt;vs&gt; instances"));
        assert!(svg.contains("<title>a &amp; b</title>"));
        assert!(!svg.contains("NaN"));
        // The y axis ends at the nice ceiling of the highest value (6 -> 10).
        assert!(svg.contains(">10</text>"));
    }

    #[test]
    fn stacked_charts_nest_one_document_per_row() {
        let chart = |title: &str| Chart {
            title: title.into(),
            y_label: "n".into(),
            series: vec![Series {
                name: "s".into(),
                color: "#000".into(),
                points: (0..10).map(|m| (at(m), 1.0)).collect(),
            }],
            x_range: None,
        };
        let svg = stack(&[chart("one"), chart("two")]);
        assert_eq!(svg.matches("<svg").count(), 3);
        assert_eq!(svg.matches("</svg>").count(), 3);
        assert!(svg.contains(&format!("<svg y=\"{HEIGHT}\"")));
    }

    #[test]
    fn an_empty_chart_is_still_a_document() {
        let svg = Chart {
            title: "empty".into(),
            y_label: "n".into(),
            series: vec![],
            x_range: None,
        }
        .to_svg();
        assert!(svg.contains("</svg>"));
        assert!(!svg.contains("NaN"));
    }
}
