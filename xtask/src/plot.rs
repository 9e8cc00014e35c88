//! `cargo xtask plot`: an SVG of the benchmark figures, written by hand
//! (a few hundred bytes of markup do not need a plotting library).
//!
//! Three panels, each with logarithmic axes:
//! - mapping cost: ns to map a whole region eagerly, against the region's
//!   size, with 4 KiB, 2 MiB and 1 GiB pages (`map_<page>_<size>`);
//! - fault cost: ns per 4 KiB page to read every page of a lazy region,
//!   faults included, against the region's size (`touch_<mode>_<size>`);
//! - fault-around: ns per page against the window (`fault_around_w<N>`).

use crate::bench::parse_figures;
use std::fmt::Write;
use std::fs;
use std::path::Path;

/// One line of a panel: its name, colour and points (x, y), both positive.
struct Series {
    name: String,
    colour: &'static str,
    points: Vec<(f64, f64)>,
}

/// One panel: title, axis labels and its series.
struct Panel {
    title: &'static str,
    x_label: &'static str,
    y_label: &'static str,
    series: Vec<Series>,
}

const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
const PANEL_WIDTH: f64 = 420.0;
const PANEL_HEIGHT: f64 = 320.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_BOTTOM: f64 = 50.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_RIGHT: f64 = 20.0;

/// Reads `input` (the output of `cargo xtask bench`) and writes the SVG to `output`.
pub fn plot(input: &Path, output: &Path) -> Result<(), String> {
    let text = fs::read_to_string(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    let figures: Vec<(String, f64)> = parse_figures(&text).into_iter().map(|(name, value, _)| (name, value)).collect();
    let panels = [
        Panel {
            title: "Eager mapping: time per region",
            x_label: "region size (bytes)",
            y_label: "ns per region",
            series: sweep_series(
                &figures,
                "map_",
                &[("4k", "4 KiB pages"), ("2m", "2 MiB pages"), ("1g", "1 GiB pages")],
            ),
        },
        Panel {
            title: "Lazy faults: reading each page once",
            x_label: "region size (bytes)",
            y_label: "ns per 4 KiB page",
            series: sweep_series(
                &figures,
                "touch_",
                &[("4k", "4 KiB faults"), ("around", "4 KiB, fault-around"), ("2m", "2 MiB faults")],
            ),
        },
        Panel {
            title: "Fault-around window (64 MiB)",
            x_label: "pages mapped per fault",
            y_label: "ns per 4 KiB page",
            series: vec![Series {
                name: "4 KiB faults".to_string(),
                colour: COLOURS[0],
                points: figures
                    .iter()
                    .filter_map(|(name, value)| {
                        let window: f64 = name.strip_prefix("fault_around_w")?.parse().ok()?;
                        Some((window, *value))
                    })
                    .collect(),
            }],
        },
    ];
    if panels.iter().all(|panel| panel.series.iter().all(|s| s.points.is_empty())) {
        return Err(format!("{} holds no sweep figures (run `cargo xtask bench` first)", input.display()));
    }
    let svg = render(&panels);
    if let Some(dir) = output.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    fs::write(output, svg).map_err(|e| format!("writing {}: {e}", output.display()))?;
    println!("xtask: plot written to {}", output.display());
    Ok(())
}

/// Series `prefix<key>_<size>` for each (key, label), points sorted by size.
fn sweep_series(figures: &[(String, f64)], prefix: &str, keys: &[(&str, &str)]) -> Vec<Series> {
    keys.iter()
        .enumerate()
        .map(|(index, (key, label))| {
            let start = format!("{prefix}{key}_");
            let mut points: Vec<(f64, f64)> = figures
                .iter()
                .filter_map(|(name, value)| Some((parse_size(name.strip_prefix(&start)?)?, *value)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { name: label.to_string(), colour: COLOURS[index % COLOURS.len()], points }
        })
        .collect()
}

/// `64k`, `2m`, `1g` as bytes; `None` for anything else (`.min` lines included).
fn parse_size(text: &str) -> Option<f64> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let number: f64 = digits.parse().ok()?;
    let scale = match unit {
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * scale)
}

/// A byte count or nanoseconds, short: `64K`, `2M`, `1G`, `1e5`.
fn tick_label(value: f64, bytes: bool) -> String {
    if bytes {
        for (unit, scale) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
            if value >= scale as f64 {
                return format!("{}{unit}", (value / scale as f64).round());
            }
        }
        format!("{value}")
    } else if value >= 1e4 {
        format!("1e{}", value.log10().round())
    } else {
        format!("{value}")
    }
}

fn render(panels: &[Panel]) -> String {
    let width = PANEL_WIDTH * panels.len() as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{PANEL_HEIGHT}" viewBox="0 0 {width} {PANEL_HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (index, panel) in panels.iter().enumerate() {
        render_panel(&mut svg, panel, index as f64 * PANEL_WIDTH);
    }
    svg.push_str("</svg>\n");
    svg
}

fn render_panel(svg: &mut String, panel: &Panel, left: f64) {
    let points = panel.series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if x_min > x_max {
        return;
    }
    // Whole decades on the y axis, powers of two on the x axis.
    let (y_low, y_high) = (y_min.log10().floor(), y_max.log10().ceil().max(y_min.log10().floor() + 1.0));
    let (x_low, x_high) = (x_min.log2().floor(), x_max.log2().ceil().max(x_min.log2().floor() + 1.0));
    let plot_left = left + MARGIN_LEFT;
    let plot_width = PANEL_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_height = PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let to_x = |x: f64| plot_left + (x.log2() - x_low) / (x_high - x_low) * plot_width;
    let to_y = |y: f64| MARGIN_TOP + plot_height - (y.log10() - y_low) / (y_high - y_low) * plot_height;

    let _ = writeln!(
        svg,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="13">{}</text>"#,
        left + PANEL_WIDTH / 2.0,
        panel.title
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{plot_left}" y="{MARGIN_TOP}" width="{plot_width}" height="{plot_height}" fill="none" stroke="#888"/>"##
    );
    let bytes = panel.x_label.contains("bytes");
    let x_step = if x_high - x_low > 12.0 {
        4.0
    } else if x_high - x_low > 6.0 {
        2.0
    } else {
        1.0
    };
    let mut exponent = x_low;
    while exponent <= x_high {
        let x = to_x(exponent.exp2());
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" y1="{MARGIN_TOP}" x2="{x}" y2="{}" stroke="#eee"/>"##,
            MARGIN_TOP + plot_height
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            MARGIN_TOP + plot_height + 14.0,
            tick_label(exponent.exp2(), bytes)
        );
        exponent += x_step;
    }
    let mut decade = y_low;
    while decade <= y_high {
        let y = to_y(10f64.powf(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{plot_left}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/>"##,
            plot_left + plot_width
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            plot_left - 4.0,
            y + 4.0,
            tick_label(10f64.powf(decade), false)
        );
        decade += 1.0;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        plot_left + plot_width / 2.0,
        PANEL_HEIGHT - 12.0,
        panel.x_label
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
        left + 16.0,
        MARGIN_TOP + plot_height / 2.0,
        left + 16.0,
        MARGIN_TOP + plot_height / 2.0,
        panel.y_label
    );
    for (index, series) in panel.series.iter().filter(|s| !s.points.is_empty()).enumerate() {
        let path: Vec<String> = series.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", to_x(x), to_y(y))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            path.join(" "),
            series.colour
        );
        for &(x, y) in &series.points {
            let _ =
                writeln!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#, to_x(x), to_y(y), series.colour);
        }
        let legend_y = MARGIN_TOP + 14.0 + index as f64 * 14.0;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{legend_y}" fill="{}">{}</text>"#,
            plot_left + 8.0,
            series.colour,
            series.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64k"), Some(65536.0));
        assert_eq!(parse_size("2m"), Some(2097152.0));
        assert_eq!(parse_size("4g"), Some(4294967296.0));
        assert_eq!(parse_size("64k.min"), None);
    }

    #[test]
    fn a_sweep_becomes_sorted_series() {
        let figures =
            vec![("map_4k_2m".to_string(), 20.0), ("map_4k_64k".to_string(), 5.0), ("map_4k_2m.min".to_string(), 1.0)];
        let series = sweep_series(&figures, "map_", &[("4k", "4 KiB")]);
        assert_eq!(series[0].points, vec![(65536.0, 5.0), (2097152.0, 20.0)]);
        let svg = render(&[Panel { title: "t", x_label: "bytes", y_label: "ns", series }]);
        assert!(svg.starts_with("<svg") && svg.contains("<polyline") && svg.trim_end().ends_with("</svg>"));
    }
}
