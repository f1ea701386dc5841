//! The scaling model: the Universal Scalability Law fitted to each curve.
//!
//! # The model
//!
//! Gunther's Universal Scalability Law gives the throughput of `N` workers as
//!
//! ```text
//! X(N) = λN / (1 + σ(N−1) + κN(N−1))
//! ```
//!
//! with `X` in Mops/s, `λ` the single-thread rate, `σ` contention (a serial
//! part every operation queues for: throughput saturates at `λ/σ`) and `κ`
//! coherency (a cost paid per *pair* of workers: throughput peaks at
//! `N* = √((1−σ)/κ)` and then falls like `1/N`). The study's `ns/op` is
//! **per thread**: `N × 1000 / X(N)`, the wall time each of the `N` threads
//! spends per increment ([`Fit::ns_per_op`], as `CurvePoint::ns_per_op`).
//! The *aggregate* time, wall time over all threads' increments, is
//! `1000 / X(N)` ([`Fit::aggregate_ns`]); some published figures are in that
//! unit (see [`published_check`]).
//!
//! # Fitting
//!
//! Least squares on `log X` (so every point counts by its relative error),
//! with `λ > 0`, `σ ≥ 0`, `κ ≥ 0` ([`fit`]). For fixed `(σ, κ)` the best
//! `log λ` is closed-form, the mean of `log(X/N) + log(1 + σ(N−1) +
//! κN(N−1))`, so only `(σ, κ)` are searched: a log grid over `[1e-6, 1e3]`
//! plus exact 0 for each, then a projected Levenberg–Marquardt refinement
//! (a parameter at 0 whose gradient points below 0 stays at 0) from the
//! three best grid points. Oversubscribed points (more threads than cores)
//! are left out ([`fit_curves`]): the USL models `N` processors, and time
//! slicing `N` threads on fewer cores is not that.
//!
//! # Which model: identifiability
//!
//! `λ`, `σ` and `κ` are three parameters; they are fitted together only
//! from **4 or more distinct thread counts** ([`FULL_MODEL_MIN_COUNTS`]),
//! which leaves at least one residual degree of freedom. From 2 or 3
//! distinct counts `σ` and `κ` cannot be separated: with 2 (this 2-core
//! machine: 1 and 2 threads) a σ-only and a κ-only model both pass exactly
//! through both points and differ only in how they extrapolate. Both are
//! fitted ([`Model::SigmaOnly`], [`Model::KappaOnly`]); the one not chosen
//! is kept as [`Fit::alternative`] and printed beside the chosen one. The
//! rule:
//!
//! * **σ only** by default. A contended counter is a serial resource: one
//!   shared cache line can be written by one core at a time, each increment
//!   holding it for about one line transfer, so the aggregate rate saturates
//!   at a constant, about 1 / (line transfer time), however many threads
//!   queue for it. That is σ's shape (`X → λ/σ`). κ is a cost per *pair* of
//!   threads (every thread's write disturbing every other's), which neither
//!   a single atomic (one transfer per increment, whoever asks) nor a
//!   sharded counter (no shared line at all) has; a κ fitted to two points
//!   predicts a collapse (`X ∝ 1/N`, per-thread ns ∝ `N²`) the data never
//!   showed.
//! * **κ only** only when the data can say so: with 3 distinct counts (one
//!   residual degree of freedom), if the κ-only fit's RMS relative error is
//!   under half the σ-only fit's and the σ-only fit misses by more than 1%.
//! * **Retrograde curves** (`X(2) < X(1)`, e.g. one shared atomic: the line
//!   sits in one core's L1 at 1 thread and moves on every increment from 2
//!   threads on) make the σ-only fit return `σ > 1`, which the USL (σ a
//!   serial *fraction*) calls non-physical; the USL's own reading is κ > 0.
//!   We keep σ only and flag it in [`Fit::reason`]: with `σ > 1` the model
//!   is a step from `λ` down to a ceiling `λ/σ`, which is what a single line
//!   does (this machine's oversubscribed 4-thread points stay at the 2-thread
//!   rate), where κ would predict a collapse. The κ-only alternative is
//!   printed beside it, so the choice is visible, not hidden.
//!
//! With exactly as many points as parameters (λ included) the fit has no
//! residual degrees of freedom and its error measures nothing: it is shown
//! as `exact (no residual degrees of freedom)` rather than a misleading 0%
//! ([`Fit::error_text`]). A fit held at a bound (a superlinear 1→2 step,
//! `X(2) > 2X(1)`, pins σ = κ = 0) misses even then, and its error is shown.
//!
//! Bad input (no points, one distinct thread count, a thread count below 1,
//! a throughput that is not a positive finite number) gives no fit (`None`),
//! never a panic.
//!
//! # Published figures
//!
//! [`published_check`] sets each fit's predictions beside published
//! shared-atomic against sharded figures (ClickHouse, folly, Java), in the
//! unit each figure is read in, and the ratio of ratios (shared ns / sharded
//! ns, predicted against published), a dimensionless shape check that does
//! not depend on the unit and less on the machine.

use crate::curves::{Curve, CurvePoint};
use crate::meta::Meta;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// Thread counts the table and the CSV predict ns/op per thread at.
pub(crate) const PREDICT_AT: [usize; 3] = [16, 64, 256];

/// The fewest distinct thread counts the full three-parameter model is
/// fitted from; below it, one-parameter models (see the module docs).
pub(crate) const FULL_MODEL_MIN_COUNTS: usize = 4;

/// Below this RMS relative error, a fit with no residual degrees of freedom
/// counts as exact.
const EXACT: f64 = 1e-6;

/// A prediction off by more than this factor either way is a failure.
pub(crate) const FAIL_FACTOR: f64 = 3.0;

/// Which parameters a fit let free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Model {
    /// λ, σ and κ.
    Full,
    /// λ and σ; κ fixed at 0.
    SigmaOnly,
    /// λ and κ; σ fixed at 0.
    KappaOnly,
}

impl Model {
    /// The name in tables and legends.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Model::Full => "USL",
            Model::SigmaOnly => "σ only",
            Model::KappaOnly => "κ only",
        }
    }

    /// The name in CSVs.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Model::Full => "usl",
            Model::SigmaOnly => "sigma-only",
            Model::KappaOnly => "kappa-only",
        }
    }

    /// Fitted parameters, λ included.
    pub(crate) fn parameters(self) -> usize {
        match self {
            Model::Full => 3,
            Model::SigmaOnly | Model::KappaOnly => 2,
        }
    }

    /// Whether (σ, κ) are free.
    fn free(self) -> (bool, bool) {
        match self {
            Model::Full => (true, true),
            Model::SigmaOnly => (true, false),
            Model::KappaOnly => (false, true),
        }
    }
}

/// The USL fitted to one curve.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fit {
    /// Single-thread rate, Mops/s.
    pub(crate) lambda: f64,
    /// Contention.
    pub(crate) sigma: f64,
    /// Coherency.
    pub(crate) kappa: f64,
    /// RMS of `(X_model − X) / X` over the points used.
    pub(crate) rel_rms: f64,
    /// Points used.
    pub(crate) points: usize,
    /// Distinct thread counts among them.
    pub(crate) thread_counts: usize,
    /// Which parameters were free.
    pub(crate) model: Model,
    /// Why this model, in words (and any flag on the result, e.g. σ > 1).
    pub(crate) reason: String,
    /// The other one-parameter model, when σ and κ could not be separated.
    pub(crate) alternative: Option<Box<Fit>>,
    /// The fits to the runs' extremes ([`fit_curves`]): how far the
    /// parameters and predictions move within the measured min–max.
    pub(crate) spread: Option<Box<Spread>>,
}

/// The same model fitted to the extremes of the runs: the best-scaling
/// curve (each point's slowest run at the fewest threads, its fastest run
/// elsewhere) and the worst-scaling one (the reverse). With no residual
/// degrees of freedom the fit error measures nothing; this interval is the
/// error bar that remains, and on a noisy 2-vCPU VM it is wide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spread {
    /// The fit to the best-scaling extremes.
    pub(crate) best: Fit,
    /// The fit to the worst-scaling extremes.
    pub(crate) worst: Fit,
}

impl Spread {
    /// `(low, high)` of `of` over the two fits.
    pub(crate) fn range(&self, of: impl Fn(&Fit) -> f64) -> (f64, f64) {
        let (a, b) = (of(&self.best), of(&self.worst));
        (a.min(b), a.max(b))
    }

    /// σ's interval.
    pub(crate) fn sigma(&self) -> (f64, f64) {
        self.range(|f| f.sigma)
    }

    /// κ's interval.
    pub(crate) fn kappa(&self) -> (f64, f64) {
        self.range(|f| f.kappa)
    }

    /// The interval of predicted ns/op per thread at `n` threads.
    pub(crate) fn ns_per_op(&self, n: f64) -> (f64, f64) {
        self.range(|f| f.ns_per_op(n))
    }
}

impl Fit {
    /// Modelled throughput at `n` threads, Mops/s.
    pub(crate) fn throughput(&self, n: f64) -> f64 {
        self.lambda * n / (1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))
    }

    /// Modelled wall time per operation per thread at `n` threads, ns
    /// (`n × 1000 / X(n)`, the study's ns/op).
    pub(crate) fn ns_per_op(&self, n: f64) -> f64 {
        n * 1e3 / self.throughput(n)
    }

    /// Modelled wall time over all threads' operations at `n` threads, ns
    /// (`1000 / X(n)`).
    pub(crate) fn aggregate_ns(&self, n: f64) -> f64 {
        1e3 / self.throughput(n)
    }

    /// Residual degrees of freedom: points less parameters.
    pub(crate) fn dof(&self) -> usize {
        self.points.saturating_sub(self.model.parameters())
    }

    /// No residual degrees of freedom and a fit through every point.
    pub(crate) fn exact(&self) -> bool {
        self.dof() == 0 && self.rel_rms < EXACT
    }

    /// The error as printed: a percentage, or `exact (no residual degrees
    /// of freedom)` where a fit with none passes through every point.
    pub(crate) fn error_text(&self) -> String {
        if self.exact() {
            "exact (no residual degrees of freedom)".to_string()
        } else if self.dof() == 0 {
            format!("{:.2}% (0 dof, at a bound)", self.rel_rms * 100.0)
        } else {
            format!("{:.2}%", self.rel_rms * 100.0)
        }
    }

    /// Throughput as `N → ∞`, Mops/s: `λ/σ` without κ (infinite when σ is
    /// 0 too), 0 with κ.
    pub(crate) fn limit(&self) -> f64 {
        if self.kappa > 0.0 {
            0.0
        } else if self.sigma > 0.0 {
            self.lambda / self.sigma
        } else {
            f64::INFINITY
        }
    }
}

/// Fits the USL to `(threads, Mops/s)` points (see the module docs for the
/// model choice). `None` for no points, one distinct thread count, a thread
/// count below 1 or a throughput that is not positive and finite.
pub(crate) fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    if points
        .iter()
        .any(|&(n, x)| !(n.is_finite() && x.is_finite() && n >= 1.0 && x > 0.0))
    {
        return None;
    }
    let data: Vec<(f64, f64)> = points.iter().map(|&(n, x)| (n, x.ln())).collect();
    let mut counts: Vec<f64> = points.iter().map(|p| p.0).collect();
    counts.sort_by(f64::total_cmp);
    counts.dedup();
    let distinct = counts.len();
    if distinct < 2 {
        return None;
    }
    let make = |model: Model| {
        let (lambda, sigma, kappa) = solve(&data, model);
        Fit {
            lambda,
            sigma,
            kappa,
            rel_rms: rel_rms(points, lambda, sigma, kappa),
            points: points.len(),
            thread_counts: distinct,
            model,
            reason: String::new(),
            alternative: None,
            spread: None,
        }
    };
    if distinct >= FULL_MODEL_MIN_COUNTS {
        let mut full = make(Model::Full);
        full.reason = format!("full USL: {distinct} thread counts");
        flag(&mut full);
        return Some(full);
    }
    let sigma = make(Model::SigmaOnly);
    let kappa = make(Model::KappaOnly);
    let errors = format!(
        "rms {:.2}% vs {:.2}%",
        kappa.rel_rms * 100.0,
        sigma.rel_rms * 100.0
    );
    let kappa_better = distinct >= 3 && sigma.rel_rms > 0.01 && kappa.rel_rms < 0.5 * sigma.rel_rms;
    let unseparated = format!("{distinct} thread counts can't separate σ from κ");
    let (mut chosen, other, reason) = if kappa_better {
        (
            kappa,
            sigma,
            format!("{unseparated}; κ only: fits clearly better ({errors})"),
        )
    } else if sigma.dof() > 0 {
        (
            sigma,
            kappa,
            format!(
                "{unseparated}; σ only by rule (saturation; κ only not clearly better: {errors})"
            ),
        )
    } else {
        (
            sigma,
            kappa,
            format!(
                "{unseparated} (both fit); σ only by rule: a contended line saturates, it does not collapse"
            ),
        )
    };
    chosen.reason = reason;
    flag(&mut chosen);
    chosen.alternative = Some(Box::new(other));
    Some(chosen)
}

/// Appends a note to a fit's reason where its parameters are outside the
/// USL's physical range.
fn flag(fit: &mut Fit) {
    if fit.sigma > 1.0 {
        fit.reason.push_str(
            "; σ > 1: throughput falls from 1 thread (non-physical in USL terms; read as a step down to a ceiling λ/σ)",
        );
    }
    if fit.rel_rms >= EXACT && fit.dof() == 0 {
        fit.reason
            .push_str("; held at a bound (superlinear step?), so not exact");
    }
}

/// RMS relative error of the model over the points.
fn rel_rms(points: &[(f64, f64)], lambda: f64, sigma: f64, kappa: f64) -> f64 {
    let model = |n: f64| lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0));
    let sum: f64 = points
        .iter()
        .map(|&(n, x)| (model(n) / x - 1.0).powi(2))
        .sum();
    (sum / points.len() as f64).sqrt()
}

/// For fixed (σ, κ): the best `log λ` and the sum of squared log residuals.
/// `data` is `(N, log X)`.
fn evaluate(data: &[(f64, f64)], sigma: f64, kappa: f64) -> (f64, f64) {
    let y = |&(n, log_x): &(f64, f64)| {
        log_x - n.ln() + (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)).ln()
    };
    let mean = data.iter().map(y).sum::<f64>() / data.len() as f64;
    let sse = data.iter().map(|p| (y(p) - mean).powi(2)).sum();
    (mean, sse)
}

/// Least squares on `log X` for `model`: `(λ, σ, κ)`. `data` is `(N, log
/// X)`, at least one point, every `N ≥ 1`.
fn solve(data: &[(f64, f64)], model: Model) -> (f64, f64, f64) {
    let (free_sigma, free_kappa) = model.free();
    // 0, then 1e-6 to 1e3 at 8 steps a decade.
    let grid: Vec<f64> = std::iter::once(0.0)
        .chain((-48..=24).map(|e| 10f64.powf(f64::from(e) / 8.0)))
        .collect();
    let fixed = [0.0];
    let sigmas = if free_sigma { &grid[..] } else { &fixed[..] };
    let kappas = if free_kappa { &grid[..] } else { &fixed[..] };
    let mut starts: Vec<(f64, f64, f64)> = Vec::with_capacity(sigmas.len() * kappas.len());
    for &s in sigmas {
        for &k in kappas {
            let (_, sse) = evaluate(data, s, k);
            if sse.is_finite() {
                starts.push((sse, s, k));
            }
        }
    }
    starts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best = (0.0, 0.0, evaluate(data, 0.0, 0.0).1);
    for &(_, s, k) in starts.iter().take(3) {
        let refined = refine(data, s, k, free_sigma, free_kappa);
        if refined.2 < best.2 || !best.2.is_finite() {
            best = refined;
        }
    }
    // A parameter the fit cannot tell from 0 is 0.
    let (mut sigma, mut kappa, sse) = best;
    let tolerance = sse * (1.0 + 1e-9) + 1e-24;
    if sigma > 0.0 && evaluate(data, 0.0, kappa).1 <= tolerance {
        sigma = 0.0;
    }
    if kappa > 0.0 && evaluate(data, sigma, 0.0).1 <= tolerance {
        kappa = 0.0;
    }
    let (log_lambda, _) = evaluate(data, sigma, kappa);
    (log_lambda.exp(), sigma, kappa)
}

/// Projected Levenberg–Marquardt on (σ, κ) from a start, λ eliminated:
/// `(σ, κ, sse)`.
fn refine(
    data: &[(f64, f64)],
    mut sigma: f64,
    mut kappa: f64,
    free_sigma: bool,
    free_kappa: bool,
) -> (f64, f64, f64) {
    let m = data.len() as f64;
    let mut sse = evaluate(data, sigma, kappa).1;
    let mut mu = 1e-3;
    for _ in 0..500 {
        if sse.is_nan() || sse <= 1e-30 {
            break;
        }
        // Residuals and their derivatives in σ and κ, each centred (the
        // closed-form log λ is their mean).
        let mut r = Vec::with_capacity(data.len());
        let mut js = Vec::with_capacity(data.len());
        let mut jk = Vec::with_capacity(data.len());
        for &(n, log_x) in data {
            let d = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0);
            r.push(log_x - n.ln() + d.ln());
            js.push((n - 1.0) / d);
            jk.push(n * (n - 1.0) / d);
        }
        for v in [&mut r, &mut js, &mut jk] {
            let mean = v.iter().sum::<f64>() / m;
            v.iter_mut().for_each(|x| *x -= mean);
        }
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let (gs, gk) = (dot(&js, &r), dot(&jk, &r));
        // A parameter at its bound whose descent direction points below it
        // stays there.
        let use_s = free_sigma && !(sigma <= 0.0 && gs >= 0.0);
        let use_k = free_kappa && !(kappa <= 0.0 && gk >= 0.0);
        if !use_s && !use_k {
            break;
        }
        let (a_ss, a_kk, a_sk) = (dot(&js, &js), dot(&jk, &jk), dot(&js, &jk));
        let scale = a_ss.max(a_kk).max(f64::MIN_POSITIVE);
        let mut accepted = false;
        while mu < 1e12 {
            let ds = |v: f64| v + mu * v.max(1e-12 * scale);
            let (step_s, step_k) = match (use_s, use_k) {
                (true, true) => {
                    let (p, q) = (ds(a_ss), ds(a_kk));
                    let det = p * q - a_sk * a_sk;
                    if det > 0.0 && det.is_finite() {
                        ((-gs * q + gk * a_sk) / det, (-gk * p + gs * a_sk) / det)
                    } else {
                        (-gs / p, -gk / q)
                    }
                }
                (true, false) => (-gs / ds(a_ss), 0.0),
                _ => (0.0, -gk / ds(a_kk)),
            };
            let (s2, k2) = ((sigma + step_s).max(0.0), (kappa + step_k).max(0.0));
            let sse2 = evaluate(data, s2, k2).1;
            if sse2 < sse {
                let gain = sse - sse2;
                let moved = (s2 - sigma).abs() + (k2 - kappa).abs();
                let size = sigma.abs() + kappa.abs();
                (sigma, kappa, sse) = (s2, k2, sse2);
                mu = (mu / 3.0).max(1e-12);
                accepted = true;
                if gain <= 1e-15 * sse.max(1e-300) || moved <= 1e-15 * size {
                    return (sigma, kappa, sse);
                }
                break;
            }
            mu *= 4.0;
        }
        if !accepted {
            break;
        }
    }
    (sigma, kappa, sse)
}

/// Fits every curve on its points within `cores` (oversubscribed points are
/// left out: the USL models N processors, and time slicing is not that).
/// Curves with no fit (fewer than two such thread counts) are left out.
pub(crate) fn fit_curves(curves: &[Curve], cores: usize) -> Vec<(String, Fit)> {
    curves
        .iter()
        .filter_map(|curve| {
            let used: Vec<&CurvePoint> = curve
                .points
                .iter()
                .filter(|p| !p.oversubscribed && p.threads <= cores)
                .collect();
            let fewest = used.iter().map(|p| p.threads).min()?;
            // The median curve, then the best- and worst-scaling extremes.
            let pick = |at_fewest: fn(&CurvePoint) -> f64, elsewhere: fn(&CurvePoint) -> f64| {
                let points: Vec<(f64, f64)> = used
                    .iter()
                    .map(|p| {
                        let x = if p.threads == fewest {
                            at_fewest(p)
                        } else {
                            elsewhere(p)
                        };
                        (p.threads as f64, x)
                    })
                    .collect();
                fit(&points)
            };
            let mut median = pick(|p| p.mops, |p| p.mops)?;
            let best = pick(|p| p.min, |p| p.max);
            let worst = pick(|p| p.max, |p| p.min);
            median.spread = best
                .zip(worst)
                .map(|(best, worst)| Box::new(Spread { best, worst }));
            Some((curve.strategy.clone(), median))
        })
        .collect()
}

/// A number in about four significant figures, scientific where tiny or
/// huge; `0` for zero.
fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".to_string()
    } else if !v.is_finite() {
        format!("{v}")
    } else if (1e-3..1e6).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

/// The fits as printed to stdout: parameters, error, points and predicted
/// ns/op per thread at [`PREDICT_AT`], then why each model, and what the
/// rejected one-parameter model would have predicted.
pub(crate) fn fit_table(fits: &[(String, Fit)]) -> String {
    let width = fits
        .iter()
        .map(|(name, _)| name.chars().count())
        .fold(18, usize::max);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "USL fits, X(N) = λN / (1 + σ(N−1) + κN(N−1)), least squares on log X, oversubscribed points left out"
    );
    let _ = writeln!(
        out,
        "{:<width$} {:<7} {:>9} {:>10} {:>10}  {:<38} {:>3} {:>9} {:>9} {:>9}",
        "strategy",
        "model",
        "λ Mops/s",
        "σ",
        "κ",
        "rel RMS error",
        "pts",
        "ns@16",
        "ns@64",
        "ns@256",
    );
    for (name, f) in fits {
        let _ = write!(
            out,
            "{:<width$} {:<7} {:>9} {:>10} {:>10}  {:<38} {:>3}",
            name,
            f.model.name(),
            num(f.lambda),
            num(f.sigma),
            num(f.kappa),
            f.error_text(),
            f.points,
        );
        for n in PREDICT_AT {
            let _ = write!(out, " {:>9}", num(f.ns_per_op(n as f64)));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "(ns@N: modelled wall ns per increment per thread at N threads, N × 1000 / X(N); all beyond the fitted range)"
    );
    let _ = writeln!(
        out,
        "run spread: the same model fitted to the runs' extremes (best scaling: slowest run at the fewest threads, \
         fastest elsewhere; worst: the reverse)"
    );
    let _ = writeln!(
        out,
        "{:<width$} {:>23} {:>23} {:>23}",
        "strategy", "σ", "ns@64", "ns@256"
    );
    for (name, f) in fits {
        if let Some(sp) = &f.spread {
            let interval = |(lo, hi): (f64, f64)| format!("[{}, {}]", num(lo), num(hi));
            let _ = writeln!(
                out,
                "{:<width$} {:>23} {:>23} {:>23}",
                name,
                interval(sp.sigma()),
                interval(sp.ns_per_op(64.0)),
                interval(sp.ns_per_op(256.0)),
            );
        }
    }
    // Why each model, grouped by reason.
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, f) in fits {
        match reasons.iter_mut().find(|(r, _)| *r == f.reason) {
            Some((_, names)) => names.push(name),
            None => reasons.push((&f.reason, vec![name])),
        }
    }
    for (reason, names) in reasons {
        let _ = writeln!(out, "  {}: {reason}", names.join(", "));
    }
    for (name, f) in fits {
        if let Some(alt) = &f.alternative {
            let _ = write!(
                out,
                "  {name}: {} instead (λ {}, σ {}, κ {}, {}) predicts",
                alt.model.name(),
                num(alt.lambda),
                num(alt.sigma),
                num(alt.kappa),
                alt.error_text(),
            );
            for n in PREDICT_AT {
                let _ = write!(out, " {} ns@{n}", num(alt.ns_per_op(n as f64)));
            }
            out.push('\n');
        }
    }
    out
}

/// A number for a CSV: six significant figures, scientific outside
/// `[1e-4, 1e9)`, `0` for zero (or below 1e-12, a fit's rounding noise).
fn csv_num(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        "0".to_string()
    } else if (1e-4..1e9).contains(&a) {
        let decimals = (5 - a.log10().floor() as i32).clamp(0, 12) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.5e}")
    }
}

/// Quotes a CSV field that holds a comma or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The fits as a CSV: `meta`'s header, then one row per strategy.
pub(crate) fn fit_csv(fits: &[(String, Fit)], meta: &Meta) -> String {
    let mut out = meta.header();
    out.push_str(
        "strategy,model,lambda_mops,sigma,kappa,ceiling_mops,rel_rms,exact,points,thread_counts,dof",
    );
    for n in PREDICT_AT {
        let _ = write!(out, ",ns_per_op_{n}");
    }
    out.push_str(",sigma_lo,sigma_hi,kappa_lo,kappa_hi");
    for n in PREDICT_AT {
        let _ = write!(out, ",ns_per_op_{n}_lo,ns_per_op_{n}_hi");
    }
    out.push_str(",alt_model,alt_lambda_mops,alt_sigma,alt_kappa,reason\n");
    for (name, f) in fits {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(name),
            f.model.key(),
            csv_num(f.lambda),
            csv_num(f.sigma),
            csv_num(f.kappa),
            csv_num(f.limit()),
            csv_num(f.rel_rms),
            f.exact(),
            f.points,
            f.thread_counts,
            f.dof(),
        );
        for n in PREDICT_AT {
            let _ = write!(out, ",{:.4}", f.ns_per_op(n as f64));
        }
        match &f.spread {
            Some(sp) => {
                let _ = write!(
                    out,
                    ",{},{},{},{}",
                    csv_num(sp.sigma().0),
                    csv_num(sp.sigma().1),
                    csv_num(sp.kappa().0),
                    csv_num(sp.kappa().1)
                );
                for n in PREDICT_AT {
                    let (lo, hi) = sp.ns_per_op(n as f64);
                    let _ = write!(out, ",{lo:.4},{hi:.4}");
                }
            }
            None => out.push_str(&",".repeat(4 + 2 * PREDICT_AT.len())),
        }
        match &f.alternative {
            Some(alt) => {
                let _ = write!(
                    out,
                    ",{},{},{},{}",
                    alt.model.key(),
                    csv_num(alt.lambda),
                    csv_num(alt.sigma),
                    csv_num(alt.kappa)
                );
            }
            None => out.push_str(",,,,"),
        }
        let _ = writeln!(out, ",{}", csv_field(&f.reason));
    }
    out
}

/// Points `log2 N` from `a` to `b` (inclusive), at most 1/32 apart.
fn span(a: f64, b: f64) -> Vec<f64> {
    if b <= a {
        return vec![a];
    }
    let steps = ((b - a) * 32.0).ceil().max(1.0) as usize;
    (0..=steps)
        .map(|i| a + (b - a) * i as f64 / steps as f64)
        .collect()
}

/// The label the plot carries for its dashed lines.
pub(crate) const DASHED_LABEL: &str = "dashed: USL model, not a measurement";

/// Measured throughput (markers, hollow beyond `cores`, min–max bars) and
/// each curve's fitted model: solid over the measured thread range it was
/// fitted to (the points within `cores`), dashed beyond it up to `up_to`
/// (so also across measured oversubscribed points, which it was not fitted
/// to and does not model). x is threads on a log2 scale from 1 to `up_to`,
/// y throughput on a log scale; the machine stamped along the foot.
pub(crate) fn plot(
    curves: &[Curve],
    fits: &[(String, Fit)],
    cores: usize,
    meta: &Meta,
    up_to: usize,
    path: &Path,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("usl plot: {e}");
    let up_to = up_to.max(2) as f64;
    let u_max = up_to.log2();
    let fit_of = |name: &str| fits.iter().find(|(n, _)| n == name).map(|(_, f)| f);

    // y range: every measured value and every modelled one, floored at a
    // millionth of the top so a collapsing model does not squash the rest.
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    for p in curves.iter().flat_map(|c| &c.points) {
        for v in [p.min, p.mops, p.max] {
            if v.is_finite() && v > 0.0 {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    for (_, f) in fits {
        for u in span(0.0, u_max) {
            let x = f.throughput(u.exp2());
            if x.is_finite() && x > 0.0 {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
    }
    if hi <= 0.0 {
        (lo, hi) = (0.1, 1.0);
    }
    let (y_min, y_max) = (lo.max(hi * 1e-6) / 2.0, hi * 2.0);
    let in_range = |x: f64| x.is_finite() && (y_min..=y_max).contains(&x);

    let root = crate::stamped(path, (1400, 760), &meta.summary())?;
    let root = root
        .titled(
            "USL fits to counter throughput, X(N) = λN/(1+σ(N−1)+κN(N−1))",
            ("sans-serif", 14),
        )
        .map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(1060);
    let mut chart = ChartBuilder::on(&left)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..u_max, (y_min..y_max).log_scale())
        .map_err(|e| err(&e))?;
    if up_to > cores as f64 {
        let x0 = (cores as f64 + 0.5).log2().min(u_max);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, y_min), (u_max, y_max)],
                RGBColor(242, 242, 242).filled(),
            )))
            .map_err(|e| err(&e))?;
    }

    chart
        .configure_mesh()
        .x_desc("threads (log2 scale)")
        .y_desc("throughput, M increments/s (log)")
        .x_labels(u_max.floor() as usize + 1)
        .x_label_formatter(&|u| format!("{:.0}", u.exp2()))
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                num(*y)
            }
        })
        .draw()
        .map_err(|e| err(&e))?;

    for (i, curve) in curves.iter().enumerate() {
        let color = crate::PALETTE[i % crate::PALETTE.len()].to_rgba();
        if let Some(f) = fit_of(&curve.strategy) {
            let model = |us: Vec<f64>| -> Vec<(f64, f64)> {
                us.into_iter()
                    .map(|u| (u, f.throughput(u.exp2())))
                    .filter(|&(_, x)| in_range(x))
                    .collect()
            };
            // Solid where it was fitted: the measured points within the
            // cores; dashed everywhere else.
            let fitted = || {
                curve
                    .points
                    .iter()
                    .filter(|p| !p.oversubscribed && p.threads <= cores)
                    .map(|p| p.threads)
            };
            let first = fitted().min().unwrap_or(1) as f64;
            let last = fitted().max().unwrap_or(1) as f64;
            let (a, b) = (first.log2().max(0.0), last.log2().min(u_max));
            chart
                .draw_series(LineSeries::new(model(span(a, b)), color.stroke_width(2)))
                .map_err(|e| err(&e))?;
            for (from, to) in [(0.0, a), (b, u_max)] {
                if to > from {
                    chart
                        .draw_series(DashedLineSeries::new(
                            model(span(from, to)),
                            7,
                            5,
                            color.stroke_width(2),
                        ))
                        .map_err(|e| err(&e))?;
                }
            }
        }
        let measured: Vec<_> = curve
            .points
            .iter()
            .filter(|p| in_range(p.mops) && p.threads as f64 <= up_to)
            .collect();
        chart
            .draw_series(measured.iter().map(|p| {
                let u = (p.threads as f64).log2();
                PathElement::new(
                    vec![
                        (u, p.min.clamp(y_min, y_max)),
                        (u, p.max.clamp(y_min, y_max)),
                    ],
                    color.stroke_width(1),
                )
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(measured.iter().map(|p| {
                let style = if p.oversubscribed || p.threads > cores {
                    color.stroke_width(2)
                } else {
                    color.filled()
                };
                Circle::new(((p.threads as f64).log2(), p.mops), 4, style)
            }))
            .map_err(|e| err(&e))?;
    }

    // Labels in pixels, top left of the plotting area.
    let text = ("sans-serif", 15).into_font();
    left.draw(&Text::new(DASHED_LABEL, (90, 22), text.clone()))
        .map_err(|e| err(&e))?;
    if up_to > cores as f64 {
        left.draw(&Text::new(
            format!(
                "shaded: beyond this machine's {cores} cores (measured points there oversubscribed, hollow, not fitted)"
            ),
            (90, 42),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(|e| err(&e))?;
    }

    // The legend, in its own panel: a curve per line, then the key.
    let small = ("sans-serif", 13).into_font();
    let mut y = 24;
    for (i, curve) in curves.iter().enumerate() {
        let color = crate::PALETTE[i % crate::PALETTE.len()].to_rgba();
        right
            .draw(&PathElement::new(
                vec![(8, y), (36, y)],
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        right
            .draw(&Circle::new((22, y), 4, color.filled()))
            .map_err(|e| err(&e))?;
        let label = match fit_of(&curve.strategy) {
            Some(f) => format!("{} ({})", curve.strategy, f.model.name()),
            None => format!("{} (no fit)", curve.strategy),
        };
        right
            .draw(&Text::new(label, (44, y - 7), small.clone()))
            .map_err(|e| err(&e))?;
        y += 19;
    }
    y += 12;
    let gray = RGBColor(60, 60, 60).to_rgba();
    right
        .draw(&PathElement::new(
            vec![(8, y), (36, y)],
            gray.stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    right
        .draw(&Text::new(
            "model where fitted (measured, within the cores)",
            (44, y - 7),
            small.clone(),
        ))
        .map_err(|e| err(&e))?;
    y += 19;
    right
        .draw(&DashedPathElement::new(
            vec![(8, y), (36, y)],
            7,
            5,
            gray.stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    right
        .draw(&Text::new("model extrapolated", (44, y - 7), small.clone()))
        .map_err(|e| err(&e))?;
    y += 19;
    right
        .draw(&Circle::new((22, y), 4, gray.filled()))
        .map_err(|e| err(&e))?;
    right
        .draw(&Text::new(
            "measured median (min–max bar)",
            (44, y - 7),
            small.clone(),
        ))
        .map_err(|e| err(&e))?;
    y += 19;
    right
        .draw(&Circle::new((22, y), 4, gray.stroke_width(2)))
        .map_err(|e| err(&e))?;
    right
        .draw(&Text::new(
            format!("oversubscribed (> {cores} cores), not fitted"),
            (44, y - 7),
            small,
        ))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// How a published ns/op figure is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Wall time per operation per thread: the study's ns/op, `N × 1000 / X`.
    PerThread,
    /// Wall time over all threads' operations: `1000 / X`.
    Aggregate,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::PerThread => "per thread",
            Unit::Aggregate => "aggregate",
        }
    }

    /// A fit's prediction at `n` threads in this unit.
    fn predict(self, fit: &Fit, n: f64) -> f64 {
        match self {
            Unit::PerThread => fit.ns_per_op(n),
            Unit::Aggregate => fit.aggregate_ns(n),
        }
    }
}

/// A published shared-atomic against sharded comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Published {
    /// Where it is from.
    pub(crate) figure: &'static str,
    /// Threads it was measured at.
    pub(crate) threads: usize,
    /// How its ns are read here.
    pub(crate) unit: Unit,
    /// Why that reading (and how sure).
    pub(crate) unit_note: &'static str,
    /// `(what, our strategy, published ns/op)`, the shared atomic first.
    pub(crate) rows: &'static [(&'static str, &'static str, f64)],
}

/// The published figures [`published_check`] compares with.
pub(crate) const PUBLISHED: [Published; 4] = [
    Published {
        figure: "ClickHouse per-CPU ProfileEvents",
        threads: 500,
        unit: Unit::Aggregate,
        unit_note: "assumed, ambiguous: 26.1 ns per thread at 500 threads would be 19 G increments/s on one cache line, impossible, so read as wall time over all increments; 500 threads likely exceed that machine's cores (oversubscribed, outside the USL)",
        rows: &[
            ("shared atomic", "atomic", 26.1),
            ("per-CPU", "per-cpu", 1.77),
        ],
    },
    Published {
        figure: "ClickHouse PR (2026)",
        threads: 64,
        unit: Unit::PerThread,
        unit_note: "assumed: as aggregate time, 956 ns would mean 1 M increments/s on a shared line, far below any x86 line-transfer rate; as per-thread time it is 67 M/s in total, typical",
        rows: &[
            ("one shared atomic", "atomic", 956.0),
            ("per-CPU atomic slots", "per-cpu-locked", 4.0),
            ("rseq per-CPU increments", "rseq", 2.9),
        ],
    },
    Published {
        figure: "folly ThreadCachedInt bench, dual X5650 (12 cores, 24 hw threads)",
        threads: 20,
        unit: Unit::Aggregate,
        unit_note: "from the source: folly's REG_BASELINE splits iters over the 20 threads and reports wall time / iters (atomic_inc64 18.29 ns = 52 M/s in total); 'sharded' is its ShardedAtomicInt, fetch_add on a bucket hashed from pthread_self, so matched to thread-sharded; two sockets",
        rows: &[
            ("shared atomic", "atomic", 18.3),
            ("sharded (ShardedAtomicInt)", "thread-sharded", 1.17),
        ],
    },
    Published {
        figure: "Java AtomicLong vs LongAdder, 32-core Xeon",
        threads: 3,
        unit: Unit::PerThread,
        unit_note: "assumed: JMH average-time mode reports time per op per thread; the source's harness is not given. LongAdder (CAS on a base word, cells on contention) matched to adaptive, our LongAdder-style counter; JVM call overhead included in the published figure",
        rows: &[
            ("AtomicLong", "atomic", 135.0),
            ("LongAdder", "adaptive", 39.0),
        ],
    },
];

/// Published shared-atomic against sharded figures beside the fits'
/// predictions at the same thread count: per row the model's ns/op per
/// thread, its prediction in the figure's unit, the published figure and
/// their ratio; per figure the ratio of ratios (shared ns / sharded ns,
/// predicted against published), which is the same in either unit. Ends
/// with every prediction or shape off by more than [`FAIL_FACTOR`].
pub(crate) fn published_check(fits: &[(String, Fit)]) -> String {
    let fit_of = |name: &str| fits.iter().find(|(n, _)| n == name).map(|(_, f)| f);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Published figures against the fitted models. Units: the study's ns/op is per thread, N × 1000 / X(N): \
         the wall time each of N threads spends per increment; aggregate is 1000 / X(N), wall time over all \
         threads' increments (per thread / N). Each prediction is compared in the unit its figure is read in; \
         the shape (shared ns / sharded ns) is the same in both."
    );
    let mut failures: Vec<String> = Vec::new();
    for published in &PUBLISHED {
        let n = published.threads as f64;
        let _ = writeln!(
            out,
            "\n{}, {} threads; read as {} ({})",
            published.figure,
            published.threads,
            published.unit.name(),
            published.unit_note
        );
        let _ = writeln!(
            out,
            "  {:<28} {:<15} {:<7} {:>14} {:>14} {:>11} {:>10}  pred/pub over the run spread",
            "published", "ours", "model", "ns/op/thread", "predicted", "published", "pred/pub"
        );
        let mut predicted: Vec<Option<f64>> = Vec::new();
        for &(what, ours, ns) in published.rows {
            match fit_of(ours) {
                Some(f) => {
                    let p = published.unit.predict(f, n);
                    let ratio = p / ns;
                    let spread = f.spread.as_ref().map_or_else(String::new, |sp| {
                        let (lo, hi) = sp.range(|g| published.unit.predict(g, n) / ns);
                        format!("[{}×, {}×]", num(lo), num(hi))
                    });
                    let _ = writeln!(
                        out,
                        "  {:<28} {:<15} {:<7} {:>14} {:>14} {:>11} {:>9}×  {spread}",
                        what,
                        ours,
                        f.model.name(),
                        num(f.ns_per_op(n)),
                        num(p),
                        num(ns),
                        num(ratio)
                    );
                    if !(1.0 / FAIL_FACTOR..=FAIL_FACTOR).contains(&ratio) {
                        failures.push(format!(
                            "{} {} ({ours}) at {} threads: predicted {} ns {}, published {} ({}× {})",
                            published.figure,
                            what,
                            published.threads,
                            num(p),
                            published.unit.name(),
                            num(ns),
                            num(if ratio >= 1.0 { ratio } else { 1.0 / ratio }),
                            if ratio >= 1.0 { "too slow" } else { "too fast" },
                        ));
                    }
                    predicted.push(Some(p));
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  {what:<28} {ours:<15} not fitted (no such curve with 2+ thread counts within the cores)"
                    );
                    predicted.push(None);
                }
            }
        }
        let (Some(&(_, shared_name, shared_ns)), Some(Some(shared_p))) =
            (published.rows.first(), predicted.first())
        else {
            continue;
        };
        for (&(what, ours, ns), p) in published.rows.iter().zip(&predicted).skip(1) {
            let Some(p) = p else { continue };
            let (model_shape, published_shape) = (shared_p / p, shared_ns / ns);
            let ratio = model_shape / published_shape;
            let _ = writeln!(
                out,
                "  shape {shared_name}/{ours}: predicted {}, published {}, ratio of ratios {}",
                num(model_shape),
                num(published_shape),
                num(ratio)
            );
            if !(1.0 / FAIL_FACTOR..=FAIL_FACTOR).contains(&ratio) {
                failures.push(format!(
                    "{} shape shared/{what} at {} threads: predicted {}, published {} (off {}×)",
                    published.figure,
                    published.threads,
                    num(model_shape),
                    num(published_shape),
                    num(if ratio >= 1.0 { ratio } else { 1.0 / ratio }),
                ));
            }
        }
    }
    let _ = writeln!(
        out,
        "\nWhere the model fails (off by more than {FAIL_FACTOR}×):{}",
        if failures.is_empty() { " nowhere" } else { "" }
    );
    for f in &failures {
        let _ = writeln!(out, "  {f}");
    }
    let _ = writeln!(
        out,
        "Caveats: every prediction extrapolates from the thread counts fitted (see the fit table) to the figure's; \
         the published machines differ in cores, sockets (NUMA: cross-socket line transfers are slower), \
         microarchitecture and harness."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curves::CurvePoint;

    fn usl(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
        lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
    }

    fn synthetic(lambda: f64, sigma: f64, kappa: f64, threads: &[u32]) -> Vec<(f64, f64)> {
        threads
            .iter()
            .map(|&n| (f64::from(n), usl(lambda, sigma, kappa, f64::from(n))))
            .collect()
    }

    fn close(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want.abs()
    }

    const SWEEP: [u32; 6] = [1, 2, 4, 8, 16, 32];

    #[test]
    fn recovers_known_parameters() {
        // Both σ and κ matter over 1..32 (peak near N = 27); and a κ-heavy
        // curve that is retrograde well inside the sweep.
        for (lambda, sigma, kappa) in [(150.0, 0.03, 0.0013), (40.0, 0.2, 0.02)] {
            let f = fit(&synthetic(lambda, sigma, kappa, &SWEEP)).unwrap();
            assert_eq!(f.model, Model::Full);
            assert_eq!((f.points, f.thread_counts, f.dof()), (6, 6, 3));
            assert!(close(f.lambda, lambda, 0.01), "{f:?}");
            assert!(close(f.sigma, sigma, 0.01), "{f:?}");
            assert!(close(f.kappa, kappa, 0.01), "{f:?}");
            assert!(f.rel_rms < 1e-6, "{f:?}");
            assert!(f.alternative.is_none());
            // Noiseless and fitted: not "exact" (3 residual dof), ~0%.
            assert!(!f.exact());
            assert_eq!(f.error_text(), "0.00%");
        }
        // Pure contention: κ exactly at its bound.
        let f = fit(&synthetic(80.0, 0.4, 0.0, &SWEEP)).unwrap();
        assert!(close(f.sigma, 0.4, 0.01), "{f:?}");
        assert!(f.kappa < 1e-6, "{f:?}");
        assert!(close(f.limit(), 200.0, 0.01), "{f:?}");
    }

    #[test]
    fn linear_curve_has_no_contention() {
        let points: Vec<(f64, f64)> = SWEEP
            .iter()
            .map(|&n| (f64::from(n), 100.0 * f64::from(n)))
            .collect();
        let f = fit(&points).unwrap();
        assert!(f.sigma < 1e-9 && f.kappa < 1e-9, "{f:?}");
        assert!(close(f.lambda, 100.0, 1e-9), "{f:?}");
        assert!(close(f.ns_per_op(64.0), 10.0, 1e-6));
        assert!(close(f.aggregate_ns(64.0), 10.0 / 64.0, 1e-6));
    }

    #[test]
    fn two_points_pick_one_parameter_model_through_both() {
        // This machine's shared atomic (retrograde) and rseq counter.
        for (x1, x2) in [(165.049, 60.770), (674.463, 1206.812)] {
            let f = fit(&[(1.0, x1), (2.0, x2)]).unwrap();
            assert_eq!(f.model, Model::SigmaOnly, "{f:?}");
            assert_eq!(f.kappa, 0.0);
            assert!(close(f.sigma, 2.0 * x1 / x2 - 1.0, 1e-6), "{f:?}");
            assert!(close(f.throughput(1.0), x1, 1e-6));
            assert!(close(f.throughput(2.0), x2, 1e-6));
            assert!(f.exact(), "{f:?}");
            assert_eq!(f.error_text(), "exact (no residual degrees of freedom)");
            assert!(f.reason.contains("can't separate σ from κ"), "{}", f.reason);
            // The κ-only alternative passes through both too, and differs
            // beyond them.
            let alt = f.alternative.as_deref().unwrap();
            assert_eq!(alt.model, Model::KappaOnly);
            assert_eq!(alt.sigma, 0.0);
            assert!(
                close(alt.kappa, (2.0 * x1 / x2 - 1.0) / 2.0, 1e-6),
                "{alt:?}"
            );
            assert!(close(alt.throughput(2.0), x2, 1e-6));
            assert!(alt.ns_per_op(64.0) > 2.0 * f.ns_per_op(64.0));
        }
        let atomic = fit(&[(1.0, 165.049), (2.0, 60.770)]).unwrap();
        assert!(atomic.sigma > 1.0 && atomic.reason.contains("σ > 1"));
        // Saturation: the per-thread cost grows linearly, to λ/σ in total.
        assert!(close(atomic.limit(), 165.049 / atomic.sigma, 1e-12));
        // Superlinear: σ = κ = 0 at the bound, and the error is real.
        let f = fit(&[(1.0, 100.0), (2.0, 250.0)]).unwrap();
        assert_eq!((f.sigma, f.kappa), (0.0, 0.0));
        assert!(!f.exact() && f.rel_rms > 0.05, "{f:?}");
        assert!(f.error_text().contains("at a bound"));
    }

    #[test]
    fn three_points_choose_kappa_only_when_it_fits_clearly_better() {
        // Retrograde κ data at 1, 2, 3: σ-only can't follow it.
        let f = fit(&synthetic(100.0, 0.0, 0.3, &[1, 2, 3])).unwrap();
        assert_eq!(f.model, Model::KappaOnly, "{f:?}");
        assert!(close(f.kappa, 0.3, 0.01), "{f:?}");
        assert_eq!(f.alternative.as_deref().unwrap().model, Model::SigmaOnly);
        // Saturating data at 1, 2, 3: σ only, and fitted to 1%.
        let f = fit(&synthetic(100.0, 0.5, 0.0, &[1, 2, 3])).unwrap();
        assert_eq!(f.model, Model::SigmaOnly, "{f:?}");
        assert!(close(f.sigma, 0.5, 0.01), "{f:?}");
        assert_eq!(f.dof(), 1);
    }

    #[test]
    fn bad_input_gives_none() {
        assert!(fit(&[]).is_none());
        assert!(fit(&[(1.0, 100.0)]).is_none());
        assert!(fit(&[(2.0, 100.0), (2.0, 110.0)]).is_none(), "one count");
        assert!(fit(&[(1.0, 100.0), (2.0, 0.0)]).is_none());
        assert!(fit(&[(1.0, 100.0), (2.0, -5.0)]).is_none());
        assert!(fit(&[(1.0, 100.0), (2.0, f64::NAN)]).is_none());
        assert!(fit(&[(1.0, 100.0), (f64::INFINITY, 5.0)]).is_none());
        assert!(fit(&[(0.0, 100.0), (2.0, 150.0)]).is_none());
        assert!(fit(&[(-1.0, 100.0), (2.0, 150.0)]).is_none());
    }

    fn point(threads: usize, mops: f64, cores: usize) -> CurvePoint {
        CurvePoint {
            threads,
            mops,
            min: mops * 0.9,
            max: mops * 1.1,
            oversubscribed: threads > cores,
        }
    }

    fn curves() -> Vec<Curve> {
        let curve = |name: &str, x: [f64; 3]| Curve {
            strategy: name.to_string(),
            points: vec![point(1, x[0], 2), point(2, x[1], 2), point(4, x[2], 2)],
        };
        vec![
            curve("atomic", [165.0, 60.8, 59.4]),
            curve("rseq", [674.5, 1206.8, 1256.8]),
            curve("mutex", [68.6, 11.6, 8.4]),
        ]
    }

    #[test]
    fn spread_fits_the_runs_extremes() {
        let p = |threads, mops, min, max| CurvePoint {
            threads,
            mops,
            min,
            max,
            oversubscribed: false,
        };
        let curve = Curve {
            strategy: "c".to_string(),
            points: vec![p(1, 100.0, 90.0, 110.0), p(2, 150.0, 140.0, 160.0)],
        };
        let fits = fit_curves(&[curve], 2);
        let f = &fits[0].1;
        // σ = 2·X(1)/X(2) − 1 through two points.
        assert!(close(f.sigma, 2.0 * 100.0 / 150.0 - 1.0, 1e-6), "{f:?}");
        let sp = f.spread.as_ref().expect("spread");
        let sigma = sp.sigma();
        assert!(
            close(sigma.0, 2.0 * 90.0 / 160.0 - 1.0, 1e-6),
            "best: {sp:?}"
        );
        assert!(
            close(sigma.1, 2.0 * 110.0 / 140.0 - 1.0, 1e-6),
            "worst: {sp:?}"
        );
        assert!(sigma.0 < f.sigma && f.sigma < sigma.1);
        let (lo, hi) = sp.ns_per_op(256.0);
        assert!(lo < f.ns_per_op(256.0) && f.ns_per_op(256.0) < hi, "{sp:?}");
        // The table and CSV carry it.
        assert!(
            fit_table(&fits).contains("[0.1250, 0.5714]"),
            "{}",
            fit_table(&fits)
        );
        let csv = fit_csv(&fits, &meta());
        let header: Vec<&str> = csv
            .lines()
            .find(|l| l.starts_with("strategy,"))
            .unwrap()
            .split(',')
            .collect();
        let row: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
        let at = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
        assert!(close(at("sigma_lo").parse().unwrap(), 0.125, 1e-5));
        assert!(close(
            at("sigma_hi").parse().unwrap(),
            2.0 * 110.0 / 140.0 - 1.0,
            1e-5
        ));
    }

    #[test]
    fn curves_fit_within_the_cores_only() {
        let fits = fit_curves(&curves(), 2);
        let names: Vec<&str> = fits.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["atomic", "rseq", "mutex"]);
        for (_, f) in &fits {
            assert_eq!(f.points, 2, "the oversubscribed 4-thread point is left out");
        }
        // The 4-thread point would have changed the atomic fit.
        let (_, atomic) = &fits[0];
        assert!(close(atomic.throughput(2.0), 60.8, 1e-6));
        // The run's oversubscribed flag counts even where `cores` says more.
        assert!(fit_curves(&curves(), 4).iter().all(|(_, f)| f.points == 2));
        // A run on 4 cores: all three points count (σ and κ still
        // unseparated, one residual degree of freedom).
        let mut four = curves();
        four.iter_mut()
            .flat_map(|c| &mut c.points)
            .for_each(|p| p.oversubscribed = false);
        let fits4 = fit_curves(&four, 4);
        assert!(fits4.iter().all(|(_, f)| f.points == 3 && f.dof() == 1));
        assert_ne!(fits4[0].1.model, Model::Full);
        // One core: one count each, no fits.
        assert!(fit_curves(&curves(), 1).is_empty());
        let table = fit_table(&fits);
        assert!(table.contains("exact (no residual degrees of freedom)"));
        assert!(table.contains("κ only instead"));
    }

    fn meta() -> Meta {
        Meta::parse("# machine: 2 cores, test\n# cores_online: 2\n# cpu_model: Test CPU\n")
    }

    #[test]
    fn csv_has_header_and_a_row_per_curve() {
        let fits = fit_curves(&curves(), 2);
        let meta = meta();
        let csv = fit_csv(&fits, &meta);
        assert!(csv.starts_with(&meta.header()));
        let rows: Vec<&str> = csv.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rows.len(), 1 + 3, "{csv}");
        assert!(rows[0]
            .starts_with("strategy,model,lambda_mops,sigma,kappa,ceiling_mops,rel_rms,exact"));
        let atomic: Vec<&str> = rows[1].split(',').collect();
        assert_eq!(atomic[..2], ["atomic", "sigma-only"]);
        let sigma: f64 = atomic[3].parse().unwrap();
        assert!(close(sigma, 2.0 * 165.0 / 60.8 - 1.0, 1e-5), "six figures");
        let ceiling: f64 = atomic[5].parse().unwrap();
        assert!(close(ceiling, 165.0 / sigma, 1e-5), "λ/σ");
        assert_eq!(atomic[7], "true", "exact");
        let ns64: f64 = atomic[12].parse().unwrap();
        assert!(close(ns64, 64e3 / usl(165.0, sigma, 0.0, 64.0), 1e-4));
    }

    #[test]
    fn plot_writes_svg_with_dashed_label() {
        let dir = std::env::temp_dir().join(format!("metricz-usl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("usl.svg");
        let curves = curves();
        let fits = fit_curves(&curves, 2);
        let meta = meta();
        plot(&curves, &fits, 2, &meta, 256, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(DASHED_LABEL));
        assert!(svg.contains(&meta.summary()));
        assert!(svg.contains("atomic (σ only)"));
        // x labels on a log2 scale up to 256.
        assert!(
            svg.contains(">\n256\n<") || svg.contains(">256<"),
            "no 256 tick"
        );
    }

    #[test]
    fn published_check_compares_in_the_figures_unit() {
        // A model with a known answer: σ-only, λ = 100, σ = 1, so X(N) =
        // 100 for all N: aggregate 10 ns, per thread 10·N ns.
        let flat = Fit {
            lambda: 100.0,
            sigma: 1.0,
            kappa: 0.0,
            rel_rms: 0.0,
            points: 2,
            thread_counts: 2,
            model: Model::SigmaOnly,
            reason: String::new(),
            alternative: None,
            spread: None,
        };
        let out = published_check(&[("atomic".to_string(), flat)]);
        // ClickHouse ProfileEvents (aggregate, 500 threads): 10 vs 26.1.
        assert!(out.contains(" 5000 "), "per-thread at 500: {out}");
        assert!(out.contains("0.3831×"), "{out}");
        // ClickHouse PR (per thread, 64): 640 vs 956.
        assert!(out.contains("0.6695×"), "{out}");
        // folly (aggregate, 20): 10 vs 18.3; Java (per thread, 3): 30 vs 135.
        assert!(out.contains("0.5464×") && out.contains("0.2222×"), "{out}");
        assert!(out.contains("per-cpu") && out.contains("not fitted"));
        assert!(out.contains("AtomicLong (atomic) at 3 threads"), "{out}");
        assert!(!out.contains("ClickHouse PR (2026) one shared atomic"));
    }
}
