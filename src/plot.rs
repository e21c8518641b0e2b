//! `rex simulate --svg` and `rex report --svg`: caps, memory and response
//! time over time.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use rex::simulate::{RunResult, TimelinePoint};

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Writes one SVG with a column per run (rex, static) and three rows:
/// cap (%), memory (MiB) and mean response time (ms) per VM.
pub fn write_svg(path: &Path, runs: &[RunResult], sla_ms: Option<f64>) -> Result<(), String> {
    let columns: Vec<(&str, &[TimelinePoint])> = runs
        .iter()
        .map(|run| (run.law.name(), run.timeline.as_slice()))
        .collect();
    write_timelines(path, &columns, sla_ms)
}

/// Writes one SVG with a column per (title, timeline) and the three rows
/// of [`write_svg`]: `rex report` draws a real run with it.
pub fn write_timelines(
    path: &Path,
    columns: &[(&str, &[TimelinePoint])],
    sla_ms: Option<f64>,
) -> Result<(), String> {
    let width = 560 * columns.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, columns.len().max(1)));
    for ((mode, timeline), area) in columns.iter().zip(areas) {
        let rows = area.split_evenly((3, 1));
        let series = by_vm(timeline);
        let t_max = timeline.iter().map(|p| p.t_s).fold(1.0, f64::max);
        draw(
            &rows[0],
            &format!("{mode}: cap (%)"),
            t_max,
            &series,
            |p| Some(p.cap as f64),
            None,
        )?;
        draw(
            &rows[1],
            &format!("{mode}: memory (MiB)"),
            t_max,
            &series,
            |p| Some(p.mem_mib),
            None,
        )?;
        draw(
            &rows[2],
            &format!("{mode}: response time (ms)"),
            t_max,
            &series,
            |p| p.response_ms,
            sla_ms,
        )?;
    }
    root.present().map_err(|e| e.to_string())
}

fn by_vm(points: &[TimelinePoint]) -> BTreeMap<&str, Vec<&TimelinePoint>> {
    let mut map: BTreeMap<&str, Vec<&TimelinePoint>> = BTreeMap::new();
    for p in points {
        map.entry(p.vm.as_str()).or_default().push(p);
    }
    map
}

fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    t_max: f64,
    series: &BTreeMap<&str, Vec<&TimelinePoint>>,
    value: impl Fn(&TimelinePoint) -> Option<f64>,
    threshold: Option<f64>,
) -> Result<(), String> {
    let y_max = series
        .values()
        .flatten()
        .filter_map(|p| value(p))
        .chain(threshold)
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (vm, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().filter_map(|p| value(p).map(|v| (p.t_s, v))),
                colour.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(*vm)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
    }
    if let Some(sla) = threshold {
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, sla), (t_max, sla)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label("SLA")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}
