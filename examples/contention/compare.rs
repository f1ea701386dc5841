//! `--compare A.csv B.csv …`: the same strategies from several runs (other
//! machines, other commits) on one plot, and a table of ratios against the
//! first run.
//!
//! One colour per strategy, one line style and marker per run: run A solid
//! with circles, B dashed with triangles, C dotted with squares, then
//! repeating with crosses. The x axis is log₂ threads, so a 2-core and a
//! 96-core run share it; each run's points beyond its own core count are
//! hollow (oversubscribed on that machine). Each run also gets its own
//! scaling-model fit (`usl.rs`) on the points its machine had cores for.

use crate::curves::{self, CurvePoint, Run};
use crate::{stamped, write_file, PALETTE};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Run names in the table and legend.
const NAMES: [&str; 8] = ["A", "B", "C", "D", "E", "F", "G", "H"];

/// Reads the CSVs, writes `compare-<stem>.svg` (stem of the first file) to
/// `out`, and returns the table to print.
pub(crate) fn run(paths: &[PathBuf], out: &Path) -> Result<String, String> {
    if paths.len() > NAMES.len() {
        return Err(format!("--compare takes at most {} runs", NAMES.len()));
    }
    let runs: Vec<Run> = paths
        .iter()
        .map(|p| curves::read(p))
        .collect::<Result<_, _>>()?;
    let mut text = table(&runs, paths);
    // Each run's own scaling model: on a many-core run (4+ thread counts
    // within its cores) this is the full USL. The oversubscribed flag each
    // CSV row carries says which points the run's machine had cores for.
    for (run, name) in runs.iter().zip(NAMES) {
        let fits = crate::usl::fit_curves(&run.curves, usize::MAX);
        if !fits.is_empty() {
            let _ = write!(
                text,
                "\nrun {name}, {}: {}",
                run.meta.label(),
                crate::usl::fit_table(&fits)
            );
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let stem = paths[0]
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("study");
    let svg = out.join(format!("compare-{stem}.svg"));
    plot(&runs, &svg)?;
    let csv = out.join(format!("compare-{stem}.csv"));
    write_file(&csv, &ratio_csv(&runs))?;
    let _ = writeln!(text, "wrote {} and {}", svg.display(), csv.display());
    Ok(text)
}

/// Strategies in order of first appearance across the runs.
fn strategies(runs: &[Run]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        for curve in &run.curves {
            if !names.contains(&curve.strategy.as_str()) {
                names.push(&curve.strategy);
            }
        }
    }
    names
}

/// One ratio: run `other` against run A at `threads`.
struct Ratio<'a> {
    strategy: &'a str,
    other: usize,
    threads: usize,
    a: f64,
    b: f64,
    oversubscribed: bool,
}

/// Every (strategy, thread count) measured in run A and another run.
fn ratios(runs: &[Run]) -> Vec<Ratio<'_>> {
    let mut out = Vec::new();
    for (other, run) in runs.iter().enumerate().skip(1) {
        for curve in &runs[0].curves {
            let Some(theirs) = run.curves.iter().find(|c| c.strategy == curve.strategy) else {
                continue;
            };
            for a in &curve.points {
                if let Some(b) = theirs.at(a.threads) {
                    out.push(Ratio {
                        strategy: &curve.strategy,
                        other,
                        threads: a.threads,
                        a: a.mops,
                        b: b.mops,
                        oversubscribed: a.oversubscribed || b.oversubscribed,
                    });
                }
            }
        }
    }
    out
}

/// The runs, then per other run the ratio of median throughput to run A at
/// each thread count both measured.
fn table(runs: &[Run], paths: &[PathBuf]) -> String {
    let mut out = String::from("runs:\n");
    for ((run, path), name) in runs.iter().zip(paths).zip(NAMES) {
        let _ = writeln!(
            out,
            "  {name}: {} ({})\n     {}",
            run.meta.label(),
            path.display(),
            run.meta.get("machine").unwrap_or("no machine recorded"),
        );
        let _ = writeln!(
            out,
            "     rustc {}, metricz {} @ {}, {}",
            run.meta
                .get("rustc")
                .unwrap_or("unknown")
                .trim_start_matches("rustc "),
            run.meta.get("crate_version").unwrap_or("unknown"),
            run.meta.get("git_commit").unwrap_or("unknown"),
            run.meta.get("date").unwrap_or("unknown date"),
        );
    }
    let ratios = ratios(runs);
    let width = strategies(runs)
        .iter()
        .map(|s| s.chars().count())
        .fold(18, usize::max);
    for (other, b) in NAMES.iter().enumerate().take(runs.len()).skip(1) {
        let _ = writeln!(
            out,
            "\nmedian throughput, {b} / A (> 1: {b} faster; * = oversubscribed in either run)"
        );
        let _ = writeln!(
            out,
            "{:<width$} {:>7} {:>11} {:>11} {:>8}",
            "strategy",
            "threads",
            "A Mops/s",
            format!("{b} Mops/s"),
            "ratio"
        );
        let rows: Vec<&Ratio<'_>> = ratios.iter().filter(|r| r.other == other).collect();
        if rows.is_empty() {
            let _ = writeln!(
                out,
                "(no strategy measured at the same thread count in both)"
            );
        }
        for r in rows {
            let _ = writeln!(
                out,
                "{:<width$} {:>7} {:>11.1} {:>11.1} {:>7.2}×{}",
                r.strategy,
                r.threads,
                r.a,
                r.b,
                r.b / r.a,
                if r.oversubscribed { " *" } else { "" }
            );
        }
    }
    for (run, name) in runs.iter().zip(NAMES) {
        let missing: Vec<&str> = strategies(runs)
            .into_iter()
            .filter(|s| !run.curves.iter().any(|c| c.strategy == *s))
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(out, "\nnot in run {name}: {}", missing.join(", "));
        }
    }
    out
}

/// The ratio table as CSV: `strategy,threads,run,mops_a,mops,ratio,
/// oversubscribed`, preceded by each run's metadata as `# A.key: value`.
fn ratio_csv(runs: &[Run]) -> String {
    let mut out = String::from("# metricz contention study: comparison\n");
    for (run, name) in runs.iter().zip(NAMES) {
        for line in run.meta.header().lines().skip(1) {
            let _ = writeln!(out, "# {name}.{}", line.trim_start_matches("# "));
        }
    }
    out.push_str("strategy,threads,run,mops_a,mops,ratio,oversubscribed\n");
    for r in ratios(runs) {
        let _ = writeln!(
            out,
            "{},{},{},{:.3},{:.3},{:.4},{}",
            r.strategy,
            r.threads,
            NAMES[r.other],
            r.a,
            r.b,
            r.b / r.a,
            r.oversubscribed
        );
    }
    out
}

/// Throughput against threads (log₂ x, log y): a colour per strategy, a
/// line style and marker per run.
fn plot(runs: &[Run], path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    let names = strategies(runs);
    let all = || runs.iter().flat_map(|r| &r.curves).flat_map(|c| &c.points);
    let max_threads = all().map(|p| p.threads).max().unwrap_or(1) as f64;
    let y_max = all().map(|p| p.max).fold(1.0, f64::max) * 2.0;
    let y_min = all().map(|p| p.min).fold(f64::MAX, f64::min).max(0.01) / 2.0;
    let stamp: Vec<String> = runs
        .iter()
        .zip(NAMES)
        .map(|(r, n)| {
            let commit = r.meta.get("git_commit").unwrap_or("?");
            format!(
                "{n} = {} @ {}",
                r.meta.label(),
                &commit[..commit.len().min(8)]
            )
        })
        .collect();
    let root = stamped(path, (1000, 640), &stamp.join("; "))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Runs compared: colour = strategy; line and marker = run (hollow: oversubscribed)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (0.8f64..max_threads * 1.25).log_scale(),
            (y_min..y_max).log_scale(),
        )
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("threads (log)")
        .y_desc("throughput, Mops/s (log)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (s, name) in names.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()].to_rgba();
        for (i, run) in runs.iter().enumerate() {
            let Some(curve) = run.curves.iter().find(|c| c.strategy == *name) else {
                continue;
            };
            let line: Vec<(f64, f64)> = curve
                .points
                .iter()
                .map(|p| (p.threads as f64, p.mops))
                .collect();
            let style = color.stroke_width(2);
            // Solid, dashed (8 on, 5 off) or dotted (2 on, 4 off).
            let series = match i % 3 {
                0 => chart.draw_series(LineSeries::new(line, style)),
                1 => chart.draw_series(DashedLineSeries::new(line, 8, 5, style)),
                _ => chart.draw_series(DashedLineSeries::new(line, 2, 4, style)),
            }
            .map_err(|e| err(&e))?;
            if i == 0 {
                series.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
            let style = |p: &CurvePoint| {
                if p.oversubscribed {
                    color.stroke_width(2)
                } else {
                    color.filled()
                }
            };
            let at = |p: &CurvePoint| (p.threads as f64, p.mops);
            let points = curve.points.iter();
            // Circle, triangle, square, cross.
            match i % 4 {
                0 => chart.draw_series(points.map(|p| Circle::new(at(p), 4, style(p)))),
                1 => chart.draw_series(points.map(|p| TriangleMarker::new(at(p), 5, style(p)))),
                2 => chart.draw_series(points.map(|p| {
                    EmptyElement::at(at(p)) + Rectangle::new([(-4, -4), (4, 4)], style(p))
                })),
                _ => chart.draw_series(points.map(|p| Cross::new(at(p), 4, style(p)))),
            }
            .map_err(|e| err(&e))?;
        }
    }
    // One legend entry per run: its line style in black.
    for (i, name) in NAMES.iter().enumerate().take(runs.len()) {
        let label = format!("run {name}: {}", runs[i].meta.label());
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| {
                // Three segments, so every style is one element type:
                // solid, dashed (8 on, 5 off), dotted (2 on, 4 off).
                let (on, off) = [(16, 0), (8, 5), (2, 4)][i % 3];
                let style = BLACK.stroke_width(2);
                let segment = |k: i32| {
                    let start = (k * (on + off)).min(16);
                    PathElement::new(vec![(start, 0), ((start + on).min(16), 0)], style)
                };
                EmptyElement::at((x, y)) + segment(0) + segment(1) + segment(2)
            });
    }
    crate::finish(chart, &root, SeriesLabelPosition::LowerLeft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Meta;

    fn study_csv(meta: &Meta, rows: &[(&str, usize, f64)], cores: usize) -> String {
        let mut out = meta.header();
        out.push_str("strategy,threads,oversubscribed,runs,ops_per_thread,mops_median,mops_min,mops_max,ns_per_op_median\n");
        for (s, t, m) in rows {
            let _ = writeln!(
                out,
                "{s},{t},{},5,100,{m},{},{},{}",
                *t > cores,
                m * 0.9,
                m * 1.1,
                *t as f64 * 1e3 / m
            );
        }
        out
    }

    #[test]
    fn overlays_runs_and_prints_ratios() {
        let dir = std::env::temp_dir().join(format!("metricz-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut small = Meta::current();
        small.set("cores_online", "2".into());
        small.set("cpu_model", "Small CPU".into());
        let mut big = Meta::current();
        big.set("cores_online", "96".into());
        big.set("cpu_model", "Big CPU".into());
        let a = dir.join("a.csv");
        let b = dir.join("b.csv");
        std::fs::write(
            &a,
            study_csv(
                &small,
                &[
                    ("atomic", 1, 100.0),
                    ("atomic", 2, 50.0),
                    ("rseq", 1, 500.0),
                    ("rseq", 2, 1000.0),
                    ("only-a", 1, 1.0),
                ],
                2,
            ),
        )
        .unwrap();
        std::fs::write(
            &b,
            study_csv(
                &big,
                &[
                    ("atomic", 1, 150.0),
                    ("atomic", 2, 40.0),
                    ("atomic", 64, 20.0),
                    ("rseq", 1, 400.0),
                    ("rseq", 64, 25_000.0),
                ],
                96,
            ),
        )
        .unwrap();
        let out = dir.join("out");
        let text = run(&[a.clone(), b.clone()], &out).unwrap();
        assert!(text.contains("A: 2× Small CPU"), "{text}");
        assert!(text.contains("B: 96× Big CPU"), "{text}");
        // Ratios B / A where both measured: atomic 1 and 2, rseq 1.
        assert!(text.contains("1.50×"), "{text}");
        assert!(text.contains("0.80×"), "{text}");
        assert!(!text.contains("  64 "), "64 threads only in B: {text}");
        assert!(text.contains("not in run B: only-a"), "{text}");
        // Each run fitted on its own points: B's 64-thread points are within
        // its 96 cores, A's curves have 2 points.
        assert!(text.contains("run A, 2× Small CPU: USL fits"), "{text}");
        assert!(text.contains("run B, 96× Big CPU: USL fits"), "{text}");
        let csv = std::fs::read_to_string(out.join("compare-a.csv")).unwrap();
        assert!(csv.contains("# A.cpu_model: Small CPU"), "{csv}");
        assert!(csv.contains("# B.cores_online: 96"), "{csv}");
        let rows: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rows.len(), 4, "{csv}");
        assert!(
            rows.contains(&"rseq,1,B,500.000,400.000,0.8000,false"),
            "{csv}"
        );
        let svg = std::fs::read_to_string(out.join("compare-a.svg")).unwrap();
        assert!(svg.contains("run B: 96× Big CPU"));
        assert!(svg.contains("stroke-dasharray") || svg.matches("<polyline").count() > 4);
        assert!(run(&[dir.join("missing.csv")], &out).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
