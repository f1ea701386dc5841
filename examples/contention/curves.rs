//! Curves read back from a study CSV: what `--compare` overlays and what
//! the scaling model fits.

use crate::meta::Meta;
use std::path::Path;

/// One measured point of a curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CurvePoint {
    pub(crate) threads: usize,
    /// Median throughput, Mops/s.
    pub(crate) mops: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// More threads than the run's cores.
    pub(crate) oversubscribed: bool,
}

/// A strategy's points, in thread order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Curve {
    pub(crate) strategy: String,
    pub(crate) points: Vec<CurvePoint>,
}

impl Curve {
    /// The point at `threads`, if measured.
    pub(crate) fn at(&self, threads: usize) -> Option<&CurvePoint> {
        self.points.iter().find(|p| p.threads == threads)
    }
}

/// A study CSV read back: its metadata and curves.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) meta: Meta,
    pub(crate) curves: Vec<Curve>,
}

/// Parses a throughput CSV (the study's `strategy,threads,oversubscribed,
/// runs,ops_per_thread,mops_median,mops_min,mops_max,…` layout; columns are
/// found by name, so extra columns are fine). Curves keep the file's order.
pub(crate) fn parse(csv: &str) -> Result<Vec<Curve>, String> {
    let mut lines = csv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or("no header line")?
        .split(',')
        .map(str::trim)
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("no {name:?} column (header {header:?})"))
    };
    let (strategy, threads, over) = (
        column("strategy")?,
        column("threads")?,
        column("oversubscribed")?,
    );
    let (median, min, max) = (
        column("mops_median")?,
        column("mops_min")?,
        column("mops_max")?,
    );
    let mut curves: Vec<Curve> = Vec::new();
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let field = |c: usize| {
            fields
                .get(c)
                .copied()
                .ok_or_else(|| format!("row {}: {} fields: {line}", i + 1, fields.len()))
        };
        let number = |c: usize| -> Result<f64, String> {
            let v: f64 = field(c)?
                .parse()
                .map_err(|_| format!("row {}: bad number in {line}", i + 1))?;
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(format!(
                    "row {}: throughput must be positive: {line}",
                    i + 1
                ))
            }
        };
        let point = CurvePoint {
            threads: field(threads)?
                .parse()
                .ok()
                .filter(|&t| t > 0)
                .ok_or_else(|| format!("row {}: bad thread count in {line}", i + 1))?,
            mops: number(median)?,
            min: number(min)?,
            max: number(max)?,
            oversubscribed: field(over)? == "true",
        };
        let name = field(strategy)?;
        match curves.iter_mut().find(|c| c.strategy == name) {
            Some(curve) => curve.points.push(point),
            None => curves.push(Curve {
                strategy: name.to_string(),
                points: vec![point],
            }),
        }
    }
    for curve in &mut curves {
        curve.points.sort_by_key(|p| p.threads);
    }
    Ok(curves)
}

/// Reads a study CSV and its metadata (see [`Meta::read`]).
pub(crate) fn read(path: &Path) -> Result<Run, String> {
    let (meta, text) = Meta::read(path)?;
    let curves = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Run { meta, curves })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_curves_by_column_name() {
        let csv = "# machine: m\n\
            strategy,threads,oversubscribed,runs,ops_per_thread,mops_median,mops_min,mops_max,ns_per_op_median\n\
            a,1,false,5,10,100.0,90.0,110.0,10.0\n\
            b,1,false,5,10,50.0,40.0,60.0,20.0\n\
            a,4,true,5,10,150.0,140.0,160.0,26.7\n\
            a,2,false,5,10,200.0,190.0,210.0,10.0\n";
        let curves = parse(csv).unwrap();
        assert_eq!(curves.len(), 2);
        assert_eq!(curves[0].strategy, "a");
        let threads: Vec<usize> = curves[0].points.iter().map(|p| p.threads).collect();
        assert_eq!(threads, [1, 2, 4]);
        assert!(curves[0].at(4).unwrap().oversubscribed);
        assert_eq!(curves[0].at(2).unwrap().mops, 200.0);
        assert_eq!(curves[1].points.len(), 1);
    }

    #[test]
    fn rejects_bad_rows() {
        let header = "strategy,threads,oversubscribed,mops_median,mops_min,mops_max\n";
        assert!(parse("").is_err());
        assert!(parse("strategy,threads\n").is_err());
        assert!(parse(&format!("{header}a,0,false,1,1,1\n")).is_err());
        assert!(parse(&format!("{header}a,1,false,x,1,1\n")).is_err());
        assert!(parse(&format!("{header}a,1,false,-1,1,1\n")).is_err());
        assert!(parse(&format!("{header}a,1,false\n")).is_err());
        assert!(parse(&format!("{header}a,1,false,1,1,1\n")).is_ok());
    }
}
