//! The report's plots as PNG images: latency percentiles, throughput, memory.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::hist::Summary;
use crate::suite::{HIGH_RATE, RATE, Results};

const FONT: &str = "sans-serif";
/// Debian's fonts-dejavu-core, which scripts/bench.sh installs.
const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

const COLOURS: [RGBColor; 6] = [
    RGBColor(0x4c, 0x72, 0xb0),
    RGBColor(0x55, 0xa8, 0x68),
    RGBColor(0xc4, 0x4e, 0x52),
    RGBColor(0x81, 0x72, 0xb2),
    RGBColor(0xcc, 0xb9, 0x74),
    RGBColor(0x64, 0xb5, 0xcd),
];

fn load_font() -> Result<()> {
    let path = FONT_FILES
        .iter()
        .find(|p| Path::new(p).exists())
        .context("no DejaVu Sans font: apt-get install fonts-dejavu-core")?;
    // register_font wants 'static bytes; the font lives as long as the process, once.
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{path} is not a font plotters can read"))
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

/// Write every plot into `dir`; the file names, for the report.
pub(crate) fn write_all(dir: &Path, r: &Results) -> Result<Vec<String>> {
    load_font()?;
    let mut files = Vec::new();
    let mut series: Vec<(String, Summary)> = Vec::new();
    if let Some(h) = &r.http {
        for (label, run) in &h.rate {
            let name = if label == "bindery" {
                "bindery (HTTP API)".to_owned()
            } else {
                label.clone()
            };
            series.push((name, run.latency.clone()));
        }
    }
    if let Some(g) = &r.grpc
        && let Some((_, run)) = g.rate.iter().find(|(l, _)| l == "bindery")
    {
        series.push(("bindery (gRPC API)".to_owned(), run.latency.clone()));
    }
    if !series.is_empty() {
        latency(&dir.join("latency.png"), &series)?;
        files.push("latency.png".to_owned());
    }
    let bars = throughput_bars(r);
    if !bars.is_empty() {
        throughput(&dir.join("throughput.png"), &bars)?;
        files.push("throughput.png".to_owned());
    }
    if let Some(fp) = &r.footprint
        && !fp.rss_timeline.is_empty()
    {
        memory(&dir.join("memory.png"), &fp.rss_timeline)?;
        files.push("memory.png".to_owned());
    }
    Ok(files)
}

fn latency(path: &Path, series: &[(String, Summary)]) -> Result<()> {
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let hi = series
        .iter()
        .flat_map(|(_, s)| s.points().map(|(_, v)| v))
        .fold(1.0f64, f64::max)
        * 1.5;
    let lo = series
        .iter()
        .flat_map(|(_, s)| s.points().map(|(_, v)| v))
        .fold(f64::MAX, f64::min)
        .max(1.0)
        * 0.7;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("HTTP output at {RATE} req/s: latency from intended send time"),
            (FONT, 24),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.2f64..4.2f64, (lo..hi).log_scale())
        .map_err(err)?;
    let names = ["p50", "p90", "p99", "p99.9", "p99.99"];
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && (0.0..5.0).contains(&i) {
                names[i as usize].to_owned()
            } else {
                String::new()
            }
        })
        .y_desc("latency (µs, log scale)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(err)?;
    for (i, (name, s)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<(f64, f64)> = s
            .points()
            .iter()
            .enumerate()
            .map(|(x, (_, v))| (x as f64, v.max(1.0)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(3)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, colour.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// `(group, label, value, unit)` for the throughput plot.
type Bar = (usize, String, f64, &'static str);

fn throughput_bars(r: &Results) -> Vec<Bar> {
    let mut bars = Vec::new();
    if let Some(h) = &r.http {
        for (label, run) in &h.max {
            let name = match label.as_str() {
                "bindery" => "HTTP output: bindery (HTTP API)".to_owned(),
                other => format!("HTTP output: {other}"),
            };
            bars.push((0, name, run.throughput, "req/s"));
        }
    }
    if let Some(g) = &r.grpc
        && let Some((_, run)) = g.max.iter().find(|(l, _)| l == "bindery")
    {
        bars.push((
            0,
            "HTTP output: bindery (gRPC API)".to_owned(),
            run.throughput,
            "req/s",
        ));
    }
    if let Some(rd) = &r.redis {
        for (label, run) in &rd.max {
            bars.push((1, format!("Redis create: {label}"), run.throughput, "req/s"));
        }
    }
    for (i, input) in r.inputs.iter().enumerate() {
        bars.push((
            2 + i,
            format!("{} input: direct consumer", input.broker.label()),
            input.direct_throughput,
            "msg/s",
        ));
        bars.push((
            2 + i,
            format!("{} input: bindery", input.broker.label()),
            input.bindery_throughput,
            "msg/s",
        ));
    }
    bars
}

/// Where the throughput plot's axis starts.
const FLOOR: f64 = 100.0;

fn throughput(path: &Path, bars: &[Bar]) -> Result<()> {
    let height = 120 + 34 * bars.len() as u32;
    let root = BitMapBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let max = bars.iter().map(|b| b.2).fold(1.0f64, f64::max);
    let n = bars.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Maximum throughput (output: 64 connections; input: draining a backlog)",
            (FONT, 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(10)
        // Log scale: direct Redis pipelining is an order of magnitude above everything else.
        .build_cartesian_2d((FLOOR..max * 1.5).log_scale(), n..0f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("requests or messages per second (log scale)")
        .x_label_formatter(&|v| thousands(*v))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    for (i, (group, label, value, unit)) in bars.iter().enumerate() {
        let colour = COLOURS[group % COLOURS.len()];
        let y = i as f64;
        let shade = if label.contains("bindery") {
            colour.filled()
        } else {
            colour.mix(0.45).filled()
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(FLOOR, y + 0.12), (value.max(FLOOR), y + 0.88)],
                shade,
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{label}: {} {unit}", thousands(*value)),
                (FLOOR * 1.1, y + 0.3),
                (FONT, 15).into_font().color(&BLACK),
            )))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn memory(path: &Path, timeline: &[(f64, u64, String)]) -> Result<()> {
    let root = BitMapBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mb = |b: u64| b as f64 / 1e6;
    let t_max = timeline.last().map_or(1.0, |t| t.0);
    let m_max = timeline.iter().map(|t| mb(t.1)).fold(1.0f64, f64::max) * 1.25;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("bindery resident memory: idle, {RATE} req/s, {HIGH_RATE} req/s, idle"),
            (FONT, 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_max, 0f64..m_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("RSS (MB)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            timeline.iter().map(|(t, r, _)| (*t, mb(*r))),
            COLOURS[0].stroke_width(3),
        ))
        .map_err(err)?;
    // One label at the start of each phase.
    let mut last = "";
    for (t, _, phase) in timeline {
        if phase != last {
            chart
                .draw_series(std::iter::once(Text::new(
                    phase.clone(),
                    (*t, m_max * 0.95),
                    (FONT, 15).into_font().color(&BLACK),
                )))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    [(*t, 0.0), (*t, m_max * 0.9)],
                    BLACK.mix(0.3).stroke_width(1),
                ))
                .map_err(err)?;
            last = phase;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// `12345.6` → `12,346`.
pub(crate) fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separates() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }
}
