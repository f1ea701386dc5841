//! [`Describe`]: a family described in full (unit, labels, histogram range
//! and precision, export buckets, scale or summary) before it is
//! registered, and [`Registry::register`] for a metric built standalone.

use super::buckets::{check_buckets, check_scale};
use super::error::{MetricKind, RegistryError};
use super::families::Registry;
use super::family::{CounterVec, Family, GaugeVec, HistogramVec, Metric, TimerVec};
use super::stored::{Make, Stored};
use crate::histogram::HistogramBuilder;
use crate::{Counter, Gauge, Histogram, Timer};
use std::any::Any;

/// A family's description; from [`Registry::describe`]. Set what differs
/// from the defaults, then register it as the kind it is with one of the
/// terminal methods ([`counter_vec`](Self::counter_vec),
/// [`histogram`](Self::histogram), …).
///
/// Registering a name again with the same kind and label names returns
/// the registered family, whose first description stays (help, unit,
/// histogram range and precision, export settings); another kind or other
/// label names is an error. Settings a kind does not have (buckets on a
/// counter) are an error, [`RegistryError::NotADistribution`].
///
/// ```
/// use metricz::Registry;
///
/// let reg = Registry::new();
/// // A histogram of nanoseconds, exported in seconds, 1 µs to 1 min at
/// // 2 significant figures, with its own buckets.
/// let rpc = reg
///     .describe("rpc_duration_seconds", "RPC latency.")
///     .unit("seconds")
///     .labels(&["method"])
///     .range(1_000, 60_000_000_000)
///     .significant_figures(2)
///     .scale(1e-9)
///     .buckets(&[0.001, 0.01, 0.1, 1.0])
///     .histogram_vec()?;
/// rpc.with(&["get"])?.record(2_000_000); // 2 ms
/// assert_eq!(rpc.with(&["get"])?.significant_figures(), 2);
///
/// let mut text = String::new();
/// reg.encode_openmetrics(&mut text).unwrap();
/// assert!(text.contains("# UNIT rpc_duration_seconds seconds\n"));
/// assert!(text.contains("rpc_duration_seconds_bucket{method=\"get\",le=\"0.01\"} 1\n"));
/// assert!(text.contains("rpc_duration_seconds_sum{method=\"get\"} 0.002\n"));
/// # Ok::<(), metricz::RegistryError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a description registers nothing until a terminal method is called"]
pub struct Describe<'a> {
    registry: &'a Registry,
    name: &'a str,
    help: &'a str,
    unit: Option<&'a str>,
    labels: &'a [&'a str],
    range: Option<(u64, u64)>,
    significant_figures: Option<u8>,
    buckets: Option<&'a [f64]>,
    scale: Option<f64>,
    summary: Option<bool>,
}

impl Registry {
    /// Describes the family `name` before registering it: see [`Describe`].
    pub fn describe<'a>(&'a self, name: &'a str, help: &'a str) -> Describe<'a> {
        Describe {
            registry: self,
            name,
            help,
            unit: None,
            labels: &[],
            range: None,
            significant_figures: None,
            buckets: None,
            scale: None,
            summary: None,
        }
    }

    /// Registers `metric`, built standalone, as the unlabelled family
    /// `name`: the registry exports the metric itself (clones share it).
    /// Any of [`Counter`], [`Gauge`], [`Histogram`] (exported with the
    /// default histogram settings; see [`Describe`] for others) and
    /// [`Timer`]. A name already registered is an error
    /// ([`RegistryError::AlreadyRegistered`]), since two metrics cannot be
    /// exported under one name.
    ///
    /// ```
    /// let served = metricz::Counter::new();
    /// served.add(3);
    /// let reg = metricz::Registry::new();
    /// reg.register("served_total", "Requests served.", served.clone())?;
    /// served.inc();
    /// let mut text = String::new();
    /// reg.encode_prometheus(&mut text).unwrap();
    /// assert!(text.contains("served_total 4\n"));
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn register<M: Metric + Clone>(
        &self,
        name: &str,
        help: &str,
        metric: M,
    ) -> Result<(), RegistryError> {
        let metric: &dyn Any = &metric;
        if let Some(m) = metric.downcast_ref::<Counter>() {
            self.adopt(name, help, None, m.clone()).map(drop)
        } else if let Some(m) = metric.downcast_ref::<Gauge>() {
            self.adopt(name, help, None, m.clone()).map(drop)
        } else if let Some(m) = metric.downcast_ref::<Histogram>() {
            // Exported in the base unit its `record_f64` takes.
            let family = self.adopt(name, help, None, m.clone())?;
            family.set_scale(m.scale())?;
            Ok(())
        } else if let Some(m) = metric.downcast_ref::<Timer>() {
            self.adopt(name, help, Some("seconds"), m.clone()).map(drop)
        } else {
            unreachable!("Metric is sealed to the four kinds")
        }
    }

    fn adopt<M: Stored + Clone>(
        &self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        metric: M,
    ) -> Result<Family<M>, RegistryError> {
        super::error::check_metric_name(name)?;
        check_counter_name::<M>(name)?;
        let shared = metric.clone();
        let make: Make<M> = Box::new(move || shared.clone());
        let (family, created) =
            self.family_unchecked_prefix(name, help, unit, &[], Some(make), true)?;
        if !created {
            return Err(RegistryError::AlreadyRegistered(name.to_string()));
        }
        // The family's one series is the metric itself.
        family.with(&())?;
        Ok(family)
    }
}

/// A counter named just `_total` has no OpenMetrics family name.
fn check_counter_name<M: Stored>(name: &str) -> Result<(), RegistryError> {
    if M::KIND == MetricKind::Counter && name == "_total" {
        return Err(RegistryError::InvalidMetricName(name.to_string()));
    }
    Ok(())
}

impl<'a> Describe<'a> {
    /// The unit (OpenMetrics `# UNIT`, when the name ends in `_<unit>`);
    /// timers default to `seconds`.
    pub fn unit(mut self, unit: &'a str) -> Self {
        self.unit = Some(unit);
        self
    }

    /// The label names (default: none).
    pub fn labels(mut self, labels: &'a [&'a str]) -> Self {
        self.labels = labels;
        self
    }

    /// Histograms and timers: the lowest discernible and highest trackable
    /// recorded values (see [`HistogramBuilder::lowest`] and
    /// [`HistogramBuilder::highest`]).
    pub fn range(mut self, lowest: u64, highest: u64) -> Self {
        self.range = Some((lowest, highest));
        self
    }

    /// Histograms and timers: decimal digits of precision, 1 to 5 (see
    /// [`HistogramBuilder::significant_figures`]).
    pub fn significant_figures(mut self, figures: u8) -> Self {
        self.significant_figures = Some(figures);
        self
    }

    /// Histograms and timers: the exported bucket bounds, in the base unit
    /// (see [`Family::set_buckets`](super::Family::set_buckets)).
    pub fn buckets(mut self, bounds: &'a [f64]) -> Self {
        self.buckets = Some(bounds);
        self
    }

    /// Histograms: exported value = recorded integer × `scale` (see
    /// [`Family::set_scale`](super::Family::set_scale)), and the scale of
    /// the series' histograms, so [`Histogram::record_f64`] takes values in
    /// the base unit; timers always export seconds.
    pub fn scale(mut self, scale: f64) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Histograms and timers: export as a summary (quantiles) instead of
    /// buckets.
    pub fn summary(mut self, summary: bool) -> Self {
        self.summary = Some(summary);
        self
    }

    /// A counter family.
    pub fn counter_vec(self) -> Result<CounterVec, RegistryError> {
        self.plain::<Counter>()
    }

    /// An unlabelled counter (its labels must be left empty).
    pub fn counter(self) -> Result<Counter, RegistryError> {
        single(self.counter_vec()?)
    }

    /// A gauge family.
    pub fn gauge_vec(self) -> Result<GaugeVec, RegistryError> {
        self.plain::<Gauge>()
    }

    /// An unlabelled gauge.
    pub fn gauge(self) -> Result<Gauge, RegistryError> {
        single(self.gauge_vec()?)
    }

    /// A histogram family.
    pub fn histogram_vec(self) -> Result<HistogramVec, RegistryError> {
        let builder = self.histogram_builder()?;
        let make: Make<Histogram> = Box::new(move || built(builder));
        let (family, created) = self.register::<Histogram>(self.unit, make)?;
        if created {
            if let Some(scale) = self.scale {
                family.set_scale(scale)?;
            }
            self.export_settings(|b| family.set_buckets(b), |s| family.set_summary(s))?;
        }
        Ok(family)
    }

    /// An unlabelled histogram.
    pub fn histogram(self) -> Result<Histogram, RegistryError> {
        single(self.histogram_vec()?)
    }

    /// A timer family (nanoseconds, exported in seconds).
    pub fn timer_vec(self) -> Result<TimerVec, RegistryError> {
        if self.scale.is_some() {
            return Err(self.not_a_distribution(MetricKind::Timer));
        }
        let builder = self.histogram_builder()?;
        let make: Make<Timer> = Box::new(move || Timer::from_histogram(built(builder)));
        let (family, created) =
            self.register::<Timer>(Some(self.unit.unwrap_or("seconds")), make)?;
        if created {
            self.export_settings(|b| family.set_buckets(b), |s| family.set_summary(s))?;
        }
        Ok(family)
    }

    /// An unlabelled timer.
    pub fn timer(self) -> Result<Timer, RegistryError> {
        single(self.timer_vec()?)
    }

    /// A counter or gauge family: no distribution settings allowed.
    fn plain<M: Stored>(self) -> Result<Family<M>, RegistryError> {
        let distribution = self.range.is_some()
            || self.significant_figures.is_some()
            || self.buckets.is_some()
            || self.scale.is_some()
            || self.summary.is_some();
        if distribution {
            return Err(self.not_a_distribution(M::KIND));
        }
        super::error::check_metric_name(self.name)?;
        check_counter_name::<M>(self.name)?;
        self.registry
            .family_unchecked_prefix(self.name, self.help, self.unit, self.labels, None, false)
            .map(|(family, _)| family)
    }

    fn register<M: Stored>(
        &self,
        unit: Option<&str>,
        make: Make<M>,
    ) -> Result<(Family<M>, bool), RegistryError> {
        super::error::check_metric_name(self.name)?;
        self.registry.family_unchecked_prefix(
            self.name,
            self.help,
            unit,
            self.labels,
            Some(make),
            false,
        )
    }

    /// The histogram configuration, checked once here so that making a
    /// series cannot fail; the export settings checked too, before anything
    /// is registered.
    fn histogram_builder(&self) -> Result<HistogramBuilder, RegistryError> {
        if let Some(bounds) = self.buckets {
            check_buckets(bounds)?;
        }
        if let Some(scale) = self.scale {
            check_scale(scale)?;
        }
        let mut builder = Histogram::builder();
        if let Some((lowest, highest)) = self.range {
            builder = builder.lowest(lowest).highest(highest);
        }
        if let Some(figures) = self.significant_figures {
            builder = builder.significant_figures(figures);
        }
        if let Some(scale) = self.scale {
            builder = builder.scale(scale);
        }
        builder.build().map_err(RegistryError::InvalidHistogram)?;
        Ok(builder)
    }

    fn export_settings(
        &self,
        set_buckets: impl FnOnce(&[f64]) -> Result<(), RegistryError>,
        set_summary: impl FnOnce(bool),
    ) -> Result<(), RegistryError> {
        if let Some(bounds) = self.buckets {
            set_buckets(bounds)?;
        }
        if let Some(summary) = self.summary {
            set_summary(summary);
        }
        Ok(())
    }

    fn not_a_distribution(&self, kind: MetricKind) -> RegistryError {
        RegistryError::NotADistribution {
            name: self.name.to_string(),
            kind,
        }
    }
}

/// A histogram from a configuration [`Describe::histogram_builder`]
/// checked.
fn built(builder: HistogramBuilder) -> Histogram {
    builder
        .build()
        .unwrap_or_else(|_| unreachable!("the configuration was checked at registration"))
}

/// The one series of an unlabelled family.
fn single<M: Stored + Clone>(family: Family<M>) -> Result<M, RegistryError> {
    family.handle(&())
}
