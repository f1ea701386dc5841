//! The contention study: counter and histogram throughput against threads,
//! for every counter strategy, the baselines and the peers, then metricz's
//! `Histogram` against the histogram peers, then registry lookups, then the
//! `metrics` facade's macros through metricz's recorder and the
//! `metrics-exporter-prometheus` one, in one process.
//!
//! ```text
//! cargo run --release --example contention -- --all         # every section, 7 runs a point, into papers/figures/current
//! cargo run --release --example contention                  # every section, into target/metricz
//! cargo run --release --example contention -- --threads 1,2,8 --runs 7
//! cargo run --release --example contention -- --only facade # some sections
//! cargo run --release --example contention -- --quick       # seconds; what the test runs
//! cargo run --release --example contention -- --compare ours/contention.csv yours/contention.csv
//! ```
//!
//! Every CSV starts with `# key: value` lines naming what it was measured
//! on (`meta.rs`: CPU model, cores online and possible, NUMA nodes, kernel,
//! whether rseq is registered, the CPU source, rustc, the crate version and
//! git commit, the date); `machine.json` in the out dir holds the same, and
//! every plot carries the machine along its foot. `--compare` reads those
//! CSVs back (`curves.rs`, `compare.rs`) and overlays runs from other
//! machines: a colour per strategy, a line style and marker per run, and a
//! ratio table against the first run. The counter section fits the
//! Universal Scalability Law to each strategy (`usl.rs`), prints the fit and
//! its error, checks it against published many-core figures, and draws it
//! to 256 cores, dashed where it is a model rather than a measurement. The
//! export section (`exporters.rs`) times one registry encoded in every
//! format beside the peers. `tables.txt` keeps everything printed.
//!
//! Protocol (see `papers/contention.md`): one rayon pool per thread count,
//! built before any timing; each run uses a fresh counter, every thread warms
//! its handle and meets the others at a barrier, then does a calibrated number
//! of increments; wall time runs from the first start to the last end. Each
//! point is the median of `--runs` runs (at least 5 unless `--quick`), with
//! min and max. Every run checks the counter's final value, so a strategy
//! that lost an increment fails the study instead of looking fast.
//!
//! The histogram section does the same for `record`: every implementation
//! records the same fixed-seed table of log-uniform values (1 µs–100 ms in
//! ns, `support::values`), each thread walking it with its own cursor; each
//! thread records the whole table untimed first. Runs check the final count
//! (threads × records) wherever the implementation can report one, summing
//! the per-thread `hdrhistogram`s (and, for `hdrhistogram`'s own concurrent
//! path, `hdr-sync`, dropping each thread's `Recorder` and refreshing the
//! `SyncHistogram`). Beside throughput it reports the bytes the
//! series holds at the end of the last run: measured for metricz
//! (`bytes_used`) and `hdrhistogram` (counts array + struct, summed over
//! threads; for `hdr-sync` the merged histogram and one per recorder),
//! estimated from the bucket layout for `prometheus` and
//! `prometheus-client`, and records × 8 for the `metrics` exporter, which
//! keeps every sample until scraped (see `benches/support/mod.rs`).
//!
//! The registry section times lookup + increment of an existing two-label
//! series: metricz `CounterVec::with(&["GET", "200"])?.inc()` against
//! `prometheus` `IntCounterVec::with_label_values`, `prometheus_client`
//! `Family::get_or_create` and the `metrics` crate's
//! `register_counter(&key)` + `increment` on a `metrics-exporter-prometheus`
//! recorder (`support::FamilyStrategy`). Each run builds a fresh family with
//! all its series created; each thread builds its labels in the form its
//! lookup takes before the warm-up. Two curves per implementation: every
//! thread on the same series, and each thread on its own series
//! (`/own-series`). Runs check the sum of the family's counts. It then
//! reports the counter storage of 10 000 labelled series at 2 and 64 shards:
//! as standalone counters (series × `Counter::storage_bytes`, a padded
//! shard per CPU), and in a registry's per-CPU arena holding that many real
//! series (`Registry::counter_arena_bytes`).
//!
//! The facade section times the macros users write, each worker thread
//! running its warm-up and timed loop inside
//! `metrics::with_local_recorder(&recorder, …)` (the global recorder plays
//! no part), through metricz's `facade::Recorder` (`metricz/…` curves) and
//! `PrometheusBuilder::new().build_recorder()` (`metrics-exporter/…`), on
//! one series shared by all threads (`support::facade`):
//! `counter!("r_total", "method" => "GET", "status" => "200").increment(1)`
//! (`counter-static`: literal labels, a static `Key`); the same with the
//! status a `&'static str` the thread holds, chosen at run time before the
//! warm-up (`counter-runtime`: the macro allocates a label `Vec` and hashes
//! the key on every call); and `histogram!("latency_seconds").record(v)`
//! (`histogram`) over the value table converted to seconds, each thread
//! recording the whole table untimed first. Each run builds a fresh
//! recorder (and registry) and checks the value read back: metricz's from
//! the registry, the exporter's from its rendered exposition (the counter's
//! sample, the histogram's `_count`). Histogram points report the series'
//! bytes at the end of the last run, as the histogram section does:
//! `bytes_used` for metricz, records × 8 for the exporter.
//!
//! Writes the tables to stdout, and `contention.csv`, `contention.svg`,
//! `contention-usl.csv`, `contention-usl.svg`, `export.csv`, `export.svg`,
//! `machine.json`, `tables.txt`,
//! `histogram.csv`, `histogram.svg`, `registry.csv`, `registry.svg`,
//! `registry-churn.csv`, `registry-churn.svg`, `registry-encode.csv`,
//! `registry-memory.csv`, `facade.csv` and `facade.svg` to
//! `target/metricz/` (or `--out DIR`); `--only` runs and writes some
//! sections (`counter`, `histogram`, `registry`, `facade`, `export`,
//! comma-separated).
//! Points with more threads than cores are oversubscribed and marked so in
//! all of them.

#[path = "../../benches/support/mod.rs"]
mod support;

mod compare;
mod curves;
mod exporters;
mod meta;
mod usl;

use meta::Meta;

use metricz::strategy::CounterStrategy;
use plotters::prelude::*;
use rayon::ThreadPool;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::facade::{FacadeStrategy, Workload};
use support::{cores, FamilyStrategy, HistogramStrategy, SeriesChoice};

/// What to run.
#[derive(Debug, Clone)]
struct Config {
    threads: Vec<usize>,
    runs: usize,
    /// Target wall time of one timed run.
    run_time: Duration,
    /// Untimed increments per thread before the barrier.
    warm: u64,
    out: PathBuf,
    /// The sections to run ([`SECTIONS`]).
    sections: Vec<&'static str>,
    /// `--compare`: study CSVs to overlay instead of running anything.
    compare: Vec<PathBuf>,
}

/// The study's sections, in the order they run.
const SECTIONS: [&str; 5] = ["counter", "histogram", "registry", "facade", "export"];

impl Config {
    fn full() -> Self {
        Config {
            threads: support::thread_counts(),
            runs: 5,
            run_time: Duration::from_millis(100),
            warm: 10_000,
            out: Path::new(env!("CARGO_MANIFEST_DIR")).join("target/metricz"),
            sections: SECTIONS.to_vec(),
            compare: Vec::new(),
        }
    }

    /// Whether `section` (one of [`SECTIONS`]) runs.
    fn runs(&self, section: &str) -> bool {
        self.sections.contains(&section)
    }

    fn quick(mut self) -> Self {
        self.threads.retain(|&t| t <= 2);
        self.runs = 3;
        self.run_time = Duration::from_millis(2);
        self.warm = 100;
        self
    }

    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let args: Vec<String> = args.into_iter().collect();
        let mut config = Config::full();
        let quick = args.iter().any(|a| a == "--quick");
        if quick {
            config = config.quick();
        }
        let mut out_given = false;
        let mut runs_given = false;
        let mut it = args.iter().peekable();
        while let Some(arg) = it.next() {
            if arg == "--compare" {
                while let Some(path) = it.next_if(|a| !a.starts_with("--")) {
                    config.compare.push(PathBuf::from(path));
                }
                if config.compare.is_empty() {
                    return Err(format!("--compare needs study CSVs\n{USAGE}"));
                }
                continue;
            }
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => {}
                "--all" => {
                    config.sections = SECTIONS.to_vec();
                    if !out_given {
                        config.out = Path::new(env!("CARGO_MANIFEST_DIR")).join(PAPER_FIGURES);
                    }
                    if !runs_given && !quick {
                        config.runs = PAPER_RUNS;
                    }
                }
                "--threads" => {
                    config.threads = value()?
                        .split(',')
                        .map(|t| match t.trim().parse::<usize>() {
                            Ok(n) if n > 0 => Ok(n),
                            _ => Err(format!("bad thread count {t:?}")),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--runs" => {
                    let min_runs = if quick { 1 } else { 5 };
                    config.runs = value()?.parse().ok().filter(|&r| r >= min_runs).ok_or(
                        "--runs takes a number ≥ 5: each point is the median of at least 5 runs",
                    )?;
                    runs_given = true;
                }
                "--millis" => {
                    let ms: u64 = value()?.parse().map_err(|_| "--millis takes a number")?;
                    config.run_time = Duration::from_millis(ms.max(1));
                }
                "--out" => {
                    config.out = PathBuf::from(value()?);
                    out_given = true;
                }
                "--only" => {
                    config.sections = value()?
                        .split(',')
                        .map(|s| {
                            SECTIONS
                                .into_iter()
                                .find(|&known| known == s.trim())
                                .ok_or_else(|| format!("unknown section {s:?}\n{USAGE}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--help" | "-h" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(config)
    }
}

/// Where `--all` writes: the figures and tables the paper cites.
const PAPER_FIGURES: &str = "papers/figures/current";

/// Runs per point for `--all` (unless `--runs` says otherwise): on a shared
/// VM a 2-thread point is sometimes bimodal (a run whose threads shared a
/// CPU for part of it), and the median of 7 is steadier than that of 5.
const PAPER_RUNS: usize = 7;

const USAGE: &str =
    "usage: contention [--all] [--quick] [--threads 1,2,4] [--runs N] [--millis MS] \
     [--out DIR] [--only counter,histogram,registry,facade,export]\n       \
     contention --compare A.csv B.csv ... [--out DIR]";

/// One point of a curve.
#[derive(Debug, Clone)]
struct Point {
    strategy: &'static str,
    threads: usize,
    ops_per_thread: u64,
    /// Throughput of each run, Mops/s, sorted.
    mops: Vec<f64>,
    /// Bytes the series held at the end of the last run (histograms only).
    bytes: Option<usize>,
}

impl Point {
    fn median(&self) -> f64 {
        let n = self.mops.len();
        if n % 2 == 1 {
            self.mops[n / 2]
        } else {
            (self.mops[n / 2 - 1] + self.mops[n / 2]) / 2.0
        }
    }

    fn min(&self) -> f64 {
        self.mops[0]
    }

    fn max(&self) -> f64 {
        self.mops[self.mops.len() - 1]
    }

    /// Wall time per increment per thread at the median, in ns.
    fn ns_per_op(&self) -> f64 {
        self.threads as f64 * 1e3 / self.median()
    }
}

/// Calibrates and times `run` (which does `ops` operations per thread on a
/// fresh series, checks it, and returns the wall time and the bytes the
/// series holds) at one thread count: the shared loop of both sweeps.
fn measure_with(
    name: &'static str,
    threads: usize,
    config: &Config,
    mut run: impl FnMut(u64) -> Result<(Duration, Option<usize>), String>,
) -> Result<Point, String> {
    // Calibrate: grow the run until it is long enough to time, then scale
    // it to the target. This also serves as the warm-up.
    let mut ops = 1_000u64;
    let mut elapsed = run(ops)?.0;
    while elapsed < config.run_time / 10 && ops < 1 << 34 {
        ops *= 4;
        elapsed = run(ops)?.0;
    }
    let scale = config.run_time.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
    ops = ((ops as f64 * scale) as u64).max(1_000);
    let mut mops = Vec::with_capacity(config.runs);
    let mut bytes = None;
    for _ in 0..config.runs {
        let (elapsed, held) = run(ops)?;
        let secs = elapsed.as_secs_f64().max(1e-9);
        mops.push(threads as f64 * ops as f64 / secs / 1e6);
        bytes = held;
    }
    mops.sort_by(f64::total_cmp);
    Ok(Point {
        strategy: name,
        threads,
        ops_per_thread: ops,
        mops,
        bytes,
    })
}

/// Measures one counter strategy at one thread count.
fn measure<S: CounterStrategy + Default>(
    pool: &ThreadPool,
    config: &Config,
) -> Result<Point, String> {
    let threads = pool.current_num_threads();
    measure_with(S::NAME, threads, config, |ops| {
        let counter = S::default();
        let elapsed = support::timed_run(pool, &counter, config.warm, ops);
        let expected = threads as u64 * (config.warm + ops);
        let got = counter.get();
        if got != expected {
            return Err(format!(
                "{} at {threads} threads counted {got}, expected {expected}",
                S::NAME
            ));
        }
        Ok((elapsed, None))
    })
}

/// Measures one histogram implementation at one thread count.
fn measure_histogram<H: HistogramStrategy>(
    pool: &ThreadPool,
    config: &Config,
) -> Result<Point, String> {
    let threads = pool.current_num_threads();
    // Record the whole value table on every thread before timing, so every
    // bucket (block) the run touches exists: steady state.
    let warm = config.warm.max(support::VALUES_LEN as u64);
    measure_with(H::NAME, threads, config, |ops| {
        let histogram = H::build();
        let (elapsed, locals) = support::timed_record(pool, &histogram, warm, ops);
        let expected = threads as u64 * (warm + ops);
        // Bytes first: reading the `metrics` exporter's count drains it.
        let bytes = histogram.bytes(&locals, expected);
        if let Some(got) = histogram.count(&locals) {
            if got != expected {
                return Err(format!(
                    "{} at {threads} threads counted {got} records, expected {expected}",
                    H::NAME
                ));
            }
        }
        Ok((elapsed, Some(bytes)))
    })
}

/// Measures lookup + increment of one family implementation at one thread
/// count.
fn measure_family<F: FamilyStrategy>(
    pool: &ThreadPool,
    config: &Config,
    choice: SeriesChoice,
) -> Result<Point, String> {
    let threads = pool.current_num_threads();
    let name = match choice {
        SeriesChoice::Same => F::NAME,
        SeriesChoice::PerThread => F::NAME_PER_THREAD,
    };
    measure_with(name, threads, config, |ops| {
        // Every series created before timing: steady state.
        let family = F::build();
        let elapsed = support::timed_lookup(pool, &family, choice, config.warm, ops);
        let expected = threads as u64 * (config.warm + ops);
        let got = family.total();
        if got != expected {
            return Err(format!(
                "{name} at {threads} threads counted {got}, expected {expected}"
            ));
        }
        Ok((elapsed, None))
    })
}

/// Measures one `metrics` recorder on one facade workload at one thread
/// count.
fn measure_facade<F: FacadeStrategy>(
    pool: &ThreadPool,
    config: &Config,
    workload: Workload,
) -> Result<Point, String> {
    let threads = pool.current_num_threads();
    let name = F::curve(workload);
    // Histograms: every thread records the whole value table before timing,
    // as in the histogram section, so every bucket the run touches exists.
    let warm = if workload.is_histogram() {
        config.warm.max(support::VALUES_LEN as u64)
    } else {
        config.warm
    };
    measure_with(name, threads, config, |ops| {
        let facade = F::build();
        let elapsed = support::facade::timed_facade(pool, &facade, workload, warm, ops);
        let expected = threads as u64 * (warm + ops);
        let (got, bytes) = if workload.is_histogram() {
            // Bytes first: reading the exporter's count drains it.
            let bytes = facade.histogram_bytes(expected);
            (facade.histogram_count(), Some(bytes))
        } else {
            (facade.counter_total(), None)
        };
        if got != Some(expected) {
            return Err(format!(
                "{name} at {threads} threads read back {got:?}, expected {expected}"
            ));
        }
        Ok((elapsed, bytes))
    })
}

/// Every strategy, baseline and peer at every thread count.
fn sweep(pools: &[ThreadPool], config: &Config) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    macro_rules! strategies {
        ($($ty:ty),* $(,)?) => {
            $(
                for pool in pools {
                    points.push(report(measure::<$ty>(pool, config)?));
                }
            )*
        };
    }
    support::for_each_counter!(strategies);
    Ok(points)
}

/// Every histogram implementation at every thread count.
fn histogram_sweep(pools: &[ThreadPool], config: &Config) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    macro_rules! implementations {
        ($($ty:ty),* $(,)?) => {
            $(
                for pool in pools {
                    points.push(report(measure_histogram::<$ty>(pool, config)?));
                }
            )*
        };
    }
    support::for_each_histogram!(implementations);
    Ok(points)
}

/// Every family implementation, same series then one series per thread, at
/// every thread count.
fn registry_sweep(pools: &[ThreadPool], config: &Config) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    macro_rules! implementations {
        ($($ty:ty),* $(,)?) => {
            $(
                for choice in [SeriesChoice::Same, SeriesChoice::PerThread] {
                    for pool in pools {
                        points.push(report(measure_family::<$ty>(pool, config, choice)?));
                    }
                }
            )*
        };
    }
    support::for_each_family!(implementations);
    Ok(points)
}

/// Measures churn (create, increment and remove a fresh series, each
/// thread its own) of one family implementation at one thread count;
/// `None` for one that cannot remove a series.
fn measure_churn<F: FamilyStrategy>(
    pool: &ThreadPool,
    config: &Config,
) -> Result<Option<Point>, String> {
    let threads = pool.current_num_threads();
    if F::empty()
        .remove(&F::labels(support::label_pair(0)))
        .is_none()
    {
        return Ok(None);
    }
    measure_with(F::NAME, threads, config, |ops| {
        let family = F::build();
        let elapsed = support::timed_churn(pool, &family, config.warm, ops)
            .ok_or_else(|| format!("{} cannot remove", F::NAME))?;
        // Every cycle removed what it created: the churned series are gone.
        for index in 0..threads {
            if family.remove(&F::labels(support::label_pair(index))) != Some(false) {
                return Err(format!("{} kept a churned series", F::NAME));
            }
        }
        Ok((elapsed, None))
    })
    .map(Some)
}

/// Churn of every family implementation that can remove, at every thread
/// count.
fn churn_sweep(pools: &[ThreadPool], config: &Config) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    macro_rules! implementations {
        ($($ty:ty),* $(,)?) => {
            $(
                for pool in pools {
                    if let Some(point) = measure_churn::<$ty>(pool, config)? {
                        points.push(report(point));
                    }
                }
            )*
        };
    }
    support::for_each_family!(implementations);
    Ok(points)
}

/// Series in the encode rows.
const ENCODE_SERIES: usize = 10_000;

/// One encode row: text exposition of [`ENCODE_SERIES`] two-label counters.
#[derive(Debug, Clone)]
struct EncodeRow {
    layout: String,
    shards: usize,
    /// Arena rows written per chunk (0 for the peer).
    rows: usize,
    /// Milliseconds per encode of each run, sorted.
    ms: Vec<f64>,
}

impl EncodeRow {
    fn median(&self) -> f64 {
        let n = self.ms.len();
        if n % 2 == 1 {
            self.ms[n / 2]
        } else {
            (self.ms[n / 2 - 1] + self.ms[n / 2]) / 2.0
        }
    }
}

/// Times `encode` (one whole encode, returning the output's length): a
/// warm-up encode, then `config.runs` runs of as many encodes as fill
/// about the run time; the ms per encode of each run, sorted.
fn time_encodes(config: &Config, mut encode: impl FnMut() -> usize) -> Vec<f64> {
    let start = Instant::now();
    std::hint::black_box(encode());
    let one = start.elapsed().max(Duration::from_micros(1));
    let per_run = ((config.run_time.as_secs_f64() / one.as_secs_f64()) as usize).max(1);
    let mut ms: Vec<f64> = (0..config.runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_run {
                std::hint::black_box(encode());
            }
            start.elapsed().as_secs_f64() * 1e3 / per_run as f64
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// Scrape cost against the shard count: Prometheus text of
/// [`ENCODE_SERIES`] two-label counters (series `i` at `i + 1`) from
/// registries built with `shards(n)`, n = 2, 16, 64, 256, with every row
/// written (each series' word on every shard: as on a machine whose `n`
/// CPUs all recorded; rows this machine lacks are written with the
/// `add_to_shard` test hook), and at 256 shards with rows 0 and 1 written
/// (two CPUs recorded); `prometheus_client` beside them. Each output is
/// checked for every sample line before timing.
fn registry_encode(config: &Config) -> Result<Vec<EncodeRow>, String> {
    let labels = |i: usize| [format!("m{}", i / 100), format!("s{}", i % 100)];
    let check = |name: &str, text: &str| -> Result<(), String> {
        let samples = text
            .lines()
            .filter(|l| l.starts_with("encode_requests_total{"))
            .count();
        let last =
            format!("encode_requests_total{{method=\"m99\",status=\"s99\"}} {ENCODE_SERIES}");
        if samples != ENCODE_SERIES || !text.contains(&last) {
            return Err(format!("{name}: {samples} samples, or no {last:?}"));
        }
        Ok(())
    };
    let mut rows = Vec::new();
    for (shards, written) in [(2, 2), (16, 16), (64, 64), (256, 256), (256, 2)] {
        let reg = metricz::Registry::builder().shards(shards).build();
        let family = reg
            .counter_vec("encode_requests_total", "Requests.", &["method", "status"])
            .map_err(|e| e.to_string())?;
        for i in 0..ENCODE_SERIES {
            let [m, s] = labels(i);
            let series = family.with(&[&m, &s]).map_err(|e| e.to_string())?;
            series.add_to_shard(0, i as u64 + 1);
            for row in 1..written {
                series.add_to_shard(row, 0);
            }
        }
        let layout = format!("metricz {shards} shards; {written} rows written");
        let mut text = String::new();
        reg.encode_prometheus(&mut text)
            .map_err(|e| e.to_string())?;
        check(&layout, &text)?;
        let ms = time_encodes(config, || {
            text.clear();
            reg.encode_prometheus(&mut text).expect("encode");
            text.len()
        });
        eprintln!("  {layout:<40} {:.3} ms", ms[ms.len() / 2]);
        rows.push(EncodeRow {
            layout,
            shards,
            rows: written,
            ms,
        });
    }
    let mut client = prometheus_client::registry::Registry::default();
    let family = prometheus_client::metrics::family::Family::<
        Vec<(String, String)>,
        prometheus_client::metrics::counter::Counter,
    >::default();
    client.register("encode_requests", "Requests.", family.clone());
    for i in 0..ENCODE_SERIES {
        let [m, s] = labels(i);
        family
            .get_or_create(&vec![("method".to_string(), m), ("status".to_string(), s)])
            .inc_by(i as u64 + 1);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &client).map_err(|e| e.to_string())?;
    check("prometheus-client", &out)?;
    let ms = time_encodes(config, || {
        out.clear();
        prometheus_client::encoding::text::encode(&mut out, &client).expect("encode");
        out.len()
    });
    eprintln!("  {:<40} {:.3} ms", "prometheus-client", ms[ms.len() / 2]);
    rows.push(EncodeRow {
        layout: "prometheus-client".to_string(),
        shards: 0,
        rows: 0,
        ms,
    });
    Ok(rows)
}

/// The encode table printed to stdout, with each row's median against
/// `prometheus_client`'s and against metricz at 2 shards.
fn encode_table(rows: &[EncodeRow]) -> String {
    let peer = rows.iter().find(|r| r.shards == 0).map(EncodeRow::median);
    let two = rows.iter().find(|r| r.shards == 2).map(EncodeRow::median);
    let mut out = format!(
        "text exposition of {ENCODE_SERIES} two-label counters, ms per encode (median of runs)\n"
    );
    let _ = writeln!(
        out,
        "{:<40} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "layout", "median", "min", "max", "/ peer", "/ 2 shards"
    );
    for row in rows {
        let ratio = |base: Option<f64>| base.map_or(f64::NAN, |b| row.median() / b);
        let _ = writeln!(
            out,
            "{:<40} {:>9.3} {:>9.3} {:>9.3} {:>9.2}x {:>9.2}x",
            row.layout,
            row.median(),
            row.ms[0],
            row.ms[row.ms.len() - 1],
            ratio(peer),
            ratio(two)
        );
    }
    out
}

/// `registry-encode.csv`.
fn encode_csv(rows: &[EncodeRow], header: &str) -> String {
    let mut out = format!(
        "{header}\
         # text exposition of {ENCODE_SERIES} two-label counters; rows = arena rows written per chunk\n\
         layout,shards,rows,runs,median_ms,min_ms,max_ms\n"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{:.4},{:.4},{:.4}",
            row.layout,
            row.shards,
            row.rows,
            row.ms.len(),
            row.median(),
            row.ms[0],
            row.ms[row.ms.len() - 1]
        );
    }
    out
}

/// Every facade workload, each through every recorder, at every thread
/// count.
fn facade_sweep(pools: &[ThreadPool], config: &Config) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    macro_rules! implementations {
        ($($ty:ty),* $(,)?) => {
            for workload in Workload::ALL {
                $(
                    for pool in pools {
                        points.push(report(measure_facade::<$ty>(pool, config, workload)?));
                    }
                )*
            }
        };
    }
    support::facade::for_each_facade!(implementations);
    Ok(points)
}

/// For each facade workload and thread count, metricz's throughput over
/// the exporter's (the medians).
fn facade_ratios(points: &[Point], cores: usize) -> String {
    let mut out = String::from("metricz / metrics-exporter throughput (medians):\n");
    for workload in Workload::ALL {
        let ours = support::facade::MetriczFacade::curve(workload);
        let theirs = support::facade::ExporterFacade::curve(workload);
        let _ = write!(out, "  {:<16}", workload.name());
        for p in points.iter().filter(|p| p.strategy == ours) {
            if let Some(q) = points
                .iter()
                .find(|q| q.strategy == theirs && q.threads == p.threads)
            {
                let _ = write!(
                    out,
                    "  {} thr{} {:.1}x",
                    p.threads,
                    if p.threads > cores {
                        " (oversubscribed)"
                    } else {
                        ""
                    },
                    p.median() / q.median()
                );
            }
        }
        out.push('\n');
    }
    out
}

/// Labelled series in the memory report.
const MEMORY_SERIES: usize = 10_000;

/// Counter storage of [`MEMORY_SERIES`] labelled series at one shard count.
#[derive(Debug, Clone)]
struct MemoryRow {
    layout: String,
    series: usize,
    shards: usize,
    /// Bytes of counter storage (measured or, for standalone counters,
    /// series × the handle's own storage).
    bytes: usize,
}

impl MemoryRow {
    fn mib(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0)
    }
}

/// The counter storage of [`MEMORY_SERIES`] labelled counters at 2, 64 and
/// 256 shards: standalone `metricz::Counter`s (series × `storage_bytes()`,
/// one padded shard per CPU), and a registry's per-CPU arena holding that
/// many real series (`Registry::counter_arena_bytes`: per chunk of 512
/// slots, a directory of one pointer per shard and a 4 KiB row per CPU
/// that wrote). In the arena rows two CPUs recorded: every series' words of
/// rows 0 and 1 are written (with the `add_to_shard` test hook, so the
/// figure is the same on any machine); at 256 shards also with all 256
/// rows written, the most a 256-CPU machine could hold.
fn registry_memory() -> Result<Vec<MemoryRow>, String> {
    let mut rows = Vec::new();
    for (shards, written) in [(2, 2), (64, 2), (256, 2), (256, 256)] {
        if written == 2 {
            let standalone = metricz::Counter::with_shards(shards);
            rows.push(MemoryRow {
                layout: format!("Counter::with_shards({shards})"),
                series: MEMORY_SERIES,
                shards: standalone.shards(),
                bytes: MEMORY_SERIES * standalone.storage_bytes(),
            });
        }
        let reg = metricz::Registry::builder().shards(shards).build();
        let family = reg
            .counter_vec("memory_total", "Memory.", &support::LABEL_NAMES)
            .map_err(|e| e.to_string())?;
        for i in 0..MEMORY_SERIES {
            let (a, b) = (format!("m{}", i / 100), format!("s{}", i % 100));
            let series = family.with(&[&a, &b]).map_err(|e| e.to_string())?;
            for row in 0..written {
                series.add_to_shard(row, 1);
            }
        }
        let shards = family
            .with(&["m0", "s0"])
            .map_err(|e| e.to_string())?
            .shards();
        rows.push(MemoryRow {
            layout: format!("registry arena ({shards} shards; {written} CPUs)"),
            series: family.len(),
            shards,
            bytes: reg.counter_arena_bytes(),
        });
    }
    Ok(rows)
}

/// The memory table printed to stdout.
fn memory_table(rows: &[MemoryRow]) -> String {
    let mut out = format!(
        "counter storage of labelled series: standalone Counter = series x shards x {} B \
         padded shard; registry arena = installed chunks x (shards x 8 B directory + \
         CPUs that wrote x 4 KiB row) (map nodes and label strings not counted)\n",
        support::SHARD_BYTES
    );
    let _ = writeln!(
        out,
        "{:<40} {:>7} {:>7} {:>12} {:>9}",
        "layout", "series", "shards", "bytes", "MiB"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<40} {:>7} {:>7} {:>12} {:>9.2}",
            row.layout,
            row.series,
            row.shards,
            row.bytes,
            row.mib()
        );
    }
    out
}

/// `registry-memory.csv`.
fn memory_csv(rows: &[MemoryRow], header: &str) -> String {
    let mut out = format!(
        "{header}\
         # counter storage only: standalone Counter = series x shards x padded shard; \
         registry arena = installed chunks x (shards x 8 B directory + CPUs that wrote x 4 KiB row)\n\
         layout,series,shards,counter_bytes,counter_mib\n"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{:.3}",
            row.layout,
            row.series,
            row.shards,
            row.bytes,
            row.mib()
        );
    }
    out
}

/// Prints a point's progress line and passes it on.
fn report(point: Point) -> Point {
    eprintln!(
        "  {:<28} {:>3} threads  {:>9.1} Mops/s",
        point.strategy,
        point.threads,
        point.median()
    );
    point
}

/// The table printed to stdout; a bytes column when the points have bytes.
fn table(points: &[Point], cores: usize) -> String {
    let with_bytes = points.iter().any(|p| p.bytes.is_some());
    let width = points
        .iter()
        .map(|p| p.strategy.chars().count())
        .fold(18, usize::max);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$} {:>7} {:>11} {:>11} {:>11} {:>10}{}",
        "strategy",
        "threads",
        "Mops/s",
        "min",
        "max",
        "ns/op/thr",
        if with_bytes { "  bytes/series" } else { "" }
    );
    for p in points {
        let _ = writeln!(
            out,
            "{:<width$} {:>7} {:>11.1} {:>11.1} {:>11.1} {:>10.2}{}{}",
            p.strategy,
            p.threads,
            p.median(),
            p.min(),
            p.max(),
            p.ns_per_op(),
            match p.bytes {
                Some(bytes) if with_bytes => format!("  {bytes:>12}"),
                _ if with_bytes => format!("  {:>12}", "-"),
                _ => String::new(),
            },
            if p.threads > cores {
                "  (oversubscribed)"
            } else {
                ""
            }
        );
    }
    out
}

/// The CSV file; a trailing `bytes_per_series` column when the points have
/// bytes (empty where one lacks them).
fn csv(points: &[Point], cores: usize, header: &str) -> String {
    let with_bytes = points.iter().any(|p| p.bytes.is_some());
    let mut out = header.to_string();
    out.push_str("strategy,threads,oversubscribed,runs,ops_per_thread,mops_median,mops_min,mops_max,ns_per_op_median");
    out.push_str(if with_bytes {
        ",bytes_per_series\n"
    } else {
        "\n"
    });
    for p in points {
        let _ = write!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{:.3},{:.4}",
            p.strategy,
            p.threads,
            p.threads > cores,
            p.mops.len(),
            p.ops_per_thread,
            p.median(),
            p.min(),
            p.max(),
            p.ns_per_op()
        );
        if with_bytes {
            out.push(',');
            if let Some(bytes) = p.bytes {
                let _ = write!(out, "{bytes}");
            }
        }
        out.push('\n');
    }
    out
}

/// What a plot shows: its caption (before the machine) and y axis.
#[derive(Debug, Clone, Copy)]
struct Labels {
    caption: &'static str,
    y_desc: &'static str,
}

const COUNTER_LABELS: Labels = Labels {
    caption: "Counter increments",
    y_desc: "throughput, M increments/s (log)",
};

const HISTOGRAM_LABELS: Labels = Labels {
    caption: "Histogram records (1 µs–100 ms, log-uniform)",
    y_desc: "throughput, M records/s (log)",
};

const REGISTRY_LABELS: Labels = Labels {
    caption: "Lookup + increment of an existing two-label series",
    y_desc: "throughput, M lookups+increments/s (log)",
};

const CHURN_LABELS: Labels = Labels {
    caption: "Series churn: create, increment, remove a fresh series (each thread its own)",
    y_desc: "throughput, M churn cycles/s (log)",
};

const FACADE_LABELS: Labels = Labels {
    caption: "metrics facade: counter! (static, runtime label), histogram!",
    y_desc: "throughput, M macro calls/s (log)",
};

/// An SVG drawing area of `size` with the machine line stamped along its
/// foot: returns the area above the stamp, white, for the chart.
fn stamped<'a>(
    path: &'a Path,
    size: (u32, u32),
    machine: &str,
) -> Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>, String> {
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (size.0, size.1 + 22)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (chart, foot) = root.split_vertically(size.1);
    foot.draw(&Text::new(
        format!("machine: {machine}"),
        (12, 4),
        ("sans-serif", 12),
    ))
    .map_err(|e| err(&e))?;
    Ok(chart)
}

/// Throughput against threads, log y, one curve per strategy with min–max
/// bars, the oversubscribed region shaded.
fn plot(
    points: &[Point],
    cores: usize,
    machine: &str,
    labels: Labels,
    path: &Path,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plot: {e}");
    let max_threads = points.iter().map(|p| p.threads).max().unwrap_or(1) as f64;
    let y_max = points.iter().map(Point::max).fold(1.0, f64::max) * 2.0;
    let y_min = points
        .iter()
        .map(Point::min)
        .fold(f64::MAX, f64::min)
        .max(0.01)
        / 2.0;

    let root = stamped(path, (1000, 640), machine)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(labels.caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.5f64..max_threads + 0.5, (y_min..y_max).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc(labels.y_desc)
        .x_labels(max_threads as usize + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| err(&e))?;

    if max_threads > cores as f64 {
        let x0 = cores as f64 + 0.5;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, y_min), (max_threads + 0.5, y_max)],
                RGBColor(235, 235, 235).filled(),
            )))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("oversubscribed: > {cores} cores (hollow markers)"),
                (x0 + 0.1, y_max / 1.5),
                ("sans-serif", 14),
            )))
            .map_err(|e| err(&e))?;
    }

    let mut names: Vec<&str> = points.iter().map(|p| p.strategy).collect();
    names.dedup();
    for (i, name) in names.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()].to_rgba();
        let curve: Vec<&Point> = points.iter().filter(|p| p.strategy == *name).collect();
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|p| (p.threads as f64, p.median())),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        // Min–max bars, and filled markers within the core count, hollow
        // markers beyond it.
        chart
            .draw_series(curve.iter().map(|p| {
                PathElement::new(
                    vec![(p.threads as f64, p.min()), (p.threads as f64, p.max())],
                    color.stroke_width(1),
                )
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(curve.iter().map(|p| {
                let style = if p.threads > cores {
                    color.stroke_width(2)
                } else {
                    color.filled()
                };
                Circle::new((p.threads as f64, p.median()), 4, style)
            }))
            .map_err(|e| err(&e))?;
    }
    finish(chart, &root, SeriesLabelPosition::LowerLeft)
}

/// The end of every plot: the legend at `position`, then the file written.
fn finish<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    mut chart: ChartContext<'a, DB, CT>,
    root: &DrawingArea<DB, plotters::coord::Shift>,
    position: SeriesLabelPosition,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| format!("plot: {e}");
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Distinct colours for up to twelve curves (Tableau 10, then two darker).
const PALETTE: [RGBColor; 12] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(100, 100, 100),
    RGBColor(20, 60, 110),
    RGBColor(0, 0, 0),
];

/// The points of every section of the study.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // read by the test
struct Study {
    counters: Vec<Point>,
    histograms: Vec<Point>,
    registry: Vec<Point>,
    churn: Vec<Point>,
    encode: Vec<EncodeRow>,
    memory: Vec<MemoryRow>,
    facade: Vec<Point>,
    fits: Vec<(String, usl::Fit)>,
    export: Vec<exporters::ExportRow>,
}

/// Writes `{stem}.csv` and `{stem}.svg` to the out dir; returns their paths.
fn write_outputs(
    config: &Config,
    stem: &str,
    points: &[Point],
    meta: &Meta,
    labels: Labels,
) -> Result<(PathBuf, PathBuf), String> {
    let cores = cores();
    let csv_path = config.out.join(format!("{stem}.csv"));
    write_file(&csv_path, &csv(points, cores, &meta.header()))?;
    let svg_path = config.out.join(format!("{stem}.svg"));
    plot(points, cores, &meta.summary(), labels, &svg_path)?;
    Ok((csv_path, svg_path))
}

/// Writes `text` to `path`, naming the path in the error.
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The counter curves as [`curves::Curve`]s, for the scaling model.
fn to_curves(points: &[Point], cores: usize) -> Vec<curves::Curve> {
    let mut out: Vec<curves::Curve> = Vec::new();
    for p in points {
        let point = curves::CurvePoint {
            threads: p.threads,
            mops: p.median(),
            min: p.min(),
            max: p.max(),
            oversubscribed: p.threads > cores,
        };
        match out.iter_mut().find(|c| c.strategy == p.strategy) {
            Some(curve) => curve.points.push(point),
            None => out.push(curves::Curve {
                strategy: p.strategy.to_string(),
                points: vec![point],
            }),
        }
    }
    out
}

/// The core count the scaling model extrapolates to.
const MODEL_CORES: usize = 256;

/// Runs the study's sections and writes their outputs; returns the points
/// (empty for the sections not run).
fn run(config: &Config) -> Result<Study, String> {
    let meta = Meta::current();
    // Everything the run prints to stdout, kept for `tables.txt`.
    let printed = std::cell::RefCell::new(meta.header());
    macro_rules! say_raw {
        ($($arg:tt)*) => {{
            let text = format!($($arg)*);
            print!("{text}");
            printed.borrow_mut().push_str(&text);
        }};
    }
    macro_rules! say {
        () => { say_raw!("\n") };
        ($($arg:tt)*) => {{ say_raw!($($arg)*); say_raw!("\n"); }};
    }
    let header = meta.header();
    let cores = cores();
    eprintln!("metricz contention study: {}", meta.summary());
    eprintln!(
        "threads {:?}, {} runs per point, ~{:?} per run, sections {:?}",
        config.threads, config.runs, config.run_time, config.sections
    );
    let pools: Vec<ThreadPool> = config.threads.iter().map(|&t| support::pool(t)).collect();
    std::fs::create_dir_all(&config.out).map_err(|e| format!("{}: {e}", config.out.display()))?;
    write_file(&config.out.join("machine.json"), &meta.to_json())?;
    let mut study = Study {
        counters: Vec::new(),
        histograms: Vec::new(),
        registry: Vec::new(),
        churn: Vec::new(),
        encode: Vec::new(),
        memory: Vec::new(),
        facade: Vec::new(),
        fits: Vec::new(),
        export: Vec::new(),
    };
    let section = |points: &[Point], stem: &str, labels: Labels| -> Result<(), String> {
        say!();
        say_raw!("{}", table(points, cores));
        let (csv_path, svg_path) = write_outputs(config, stem, points, &meta, labels)?;
        say!("wrote {} and {}", csv_path.display(), svg_path.display());
        Ok(())
    };

    if config.runs("counter") {
        eprintln!("counter increment:");
        study.counters = sweep(&pools, config)?;
        section(&study.counters, "contention", COUNTER_LABELS)?;
        {
            let curves = to_curves(&study.counters, cores);
            study.fits = usl::fit_curves(&curves, cores);
            say!();
            say_raw!("{}", usl::fit_table(&study.fits));
            say!();
            say_raw!("{}", usl::published_check(&study.fits));
            let csv_path = config.out.join("contention-usl.csv");
            write_file(&csv_path, &usl::fit_csv(&study.fits, &meta))?;
            let svg_path = config.out.join("contention-usl.svg");
            usl::plot(&curves, &study.fits, cores, &meta, MODEL_CORES, &svg_path)?;
            say!("wrote {} and {}", csv_path.display(), svg_path.display());
        }
    }

    if config.runs("histogram") {
        eprintln!("histogram record, bytes per series beside throughput:");
        study.histograms = histogram_sweep(&pools, config)?;
        section(&study.histograms, "histogram", HISTOGRAM_LABELS)?;
    }

    if config.runs("registry") {
        eprintln!("registry lookup + increment of an existing two-label series:");
        study.registry = registry_sweep(&pools, config)?;
        section(&study.registry, "registry", REGISTRY_LABELS)?;
        eprintln!("registry churn (create + increment + remove a fresh series):");
        study.churn = churn_sweep(&pools, config)?;
        section(&study.churn, "registry-churn", CHURN_LABELS)?;
        eprintln!("registry scrape cost against shards (text, {ENCODE_SERIES} series):");
        study.encode = registry_encode(config)?;
        say!();
        say_raw!("{}", encode_table(&study.encode));
        let encode_path = config.out.join("registry-encode.csv");
        write_file(&encode_path, &encode_csv(&study.encode, &header))?;
        say!("wrote {}", encode_path.display());
        study.memory = registry_memory()?;
        say!();
        say_raw!("{}", memory_table(&study.memory));
        let memory_path = config.out.join("registry-memory.csv");
        write_file(&memory_path, &memory_csv(&study.memory, &header))?;
        say!("wrote {}", memory_path.display());
    }

    if config.runs("facade") {
        eprintln!(
            "metrics facade (with_local_recorder), macro calls on one shared series, \
             histogram bytes per series beside throughput:"
        );
        study.facade = facade_sweep(&pools, config)?;
        section(&study.facade, "facade", FACADE_LABELS)?;
        say_raw!("{}", facade_ratios(&study.facade, cores));
    }

    if config.runs("export") {
        eprintln!("export: one registry encoded in every format, beside the peers:");
        study.export = exporters::measure(config)?;
        say!();
        say_raw!("{}", exporters::table(&study.export));
        let csv_path = config.out.join("export.csv");
        write_file(&csv_path, &exporters::csv(&study.export, &meta))?;
        let svg_path = config.out.join("export.svg");
        exporters::plot(&study.export, &meta, &svg_path)?;
        say!("wrote {} and {}", csv_path.display(), svg_path.display());
    }
    let tables = config.out.join("tables.txt");
    write_file(&tables, &printed.borrow())?;
    say!("wrote {}", tables.display());
    Ok(study)
}

fn main() {
    let result = Config::from_args(std::env::args().skip(1)).and_then(|config| {
        if config.compare.is_empty() {
            run(&config).map(drop)
        } else {
            compare::run(&config.compare, &config.out).map(|table| print!("{table}"))
        }
    });
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of a quick study's CSV for every name at 1 and 2 threads
    /// (and no others), split into fields, each checked: as many fields as
    /// the header (which ends in `bytes_per_series`), 3 runs, and a
    /// positive median between positive min and max, at positive ns/op.
    fn checked_rows<'a>(csv: &'a str, names: &[&str], what: &str) -> Vec<Vec<&'a str>> {
        let mut lines = csv.lines().filter(|l| !l.starts_with('#'));
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        assert_eq!(header.last(), Some(&"bytes_per_series"));
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), names.len() * 2, "{what} rows");
        let mut checked = Vec::new();
        for name in names {
            for threads in [1, 2] {
                let row = rows
                    .iter()
                    .find(|r| r.starts_with(&format!("{name},{threads},")))
                    .unwrap_or_else(|| panic!("no {what} row for {name} at {threads} threads"));
                let fields: Vec<&str> = row.split(',').collect();
                assert_eq!(fields.len(), header.len(), "{row}");
                assert_eq!(fields[3], "3", "runs recorded: {row}");
                let number = |i: usize| -> f64 { fields[i].parse().unwrap() };
                let (median, min, max, ns) = (number(5), number(6), number(7), number(8));
                assert!(min > 0.0 && min <= median && median <= max, "{row}");
                assert!(ns > 0.0, "{row}");
                checked.push(fields);
            }
        }
        checked
    }

    #[test]
    fn quick_study_writes_every_curve() {
        let out = std::env::temp_dir().join(format!("metricz-contention-{}", std::process::id()));
        let config = Config::from_args([
            "--quick".to_string(),
            "--out".into(),
            out.display().to_string(),
        ])
        .expect("valid arguments");
        assert_eq!(config.threads, vec![1, 2]);
        let study = run(&config).expect("study runs and every count is exact");
        let points = &study.counters;

        let strategies = [
            "atomic",
            "per-cpu",
            "per-cpu-locked",
            "rseq",
            "thread-sharded",
            "adaptive",
            "single-writer",
            "prometheus",
            "prometheus-client",
            "mutex",
            "channel",
        ];
        assert_eq!(points.len(), strategies.len() * 2);
        let csv = std::fs::read_to_string(out.join("contention.csv")).expect("csv written");
        let rows: Vec<&str> = csv
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .collect();
        assert_eq!(rows.len(), points.len());
        for name in strategies {
            for threads in [1, 2] {
                let row = rows
                    .iter()
                    .find(|r| r.starts_with(&format!("{name},{threads},")))
                    .unwrap_or_else(|| panic!("no row for {name} at {threads} threads"));
                let fields: Vec<&str> = row.split(',').collect();
                assert_eq!(fields[3], "3", "runs recorded");
                let (median, min, max): (f64, f64, f64) = (
                    fields[5].parse().unwrap(),
                    fields[6].parse().unwrap(),
                    fields[7].parse().unwrap(),
                );
                assert!(min > 0.0 && min <= median && median <= max, "{row}");
            }
        }
        let svg = std::fs::read_to_string(out.join("contention.svg")).expect("svg written");
        assert!(svg.starts_with("<svg"));
        for name in strategies {
            assert!(
                svg.contains(&format!(">\n{name}\n<")),
                "legend lacks {name}"
            );
        }

        let implementations = [
            "metricz",
            "hdr-per-thread",
            "hdr-mutex",
            "hdr-sync",
            "prometheus",
            "prometheus-client",
            "metrics-exporter",
        ];
        assert_eq!(study.histograms.len(), implementations.len() * 2);
        let csv = std::fs::read_to_string(out.join("histogram.csv")).expect("histogram csv");
        for fields in checked_rows(&csv, &implementations, "histogram") {
            let bytes: u64 = fields[9]
                .parse()
                .unwrap_or_else(|_| panic!("bytes in {fields:?}"));
            assert!(bytes > 0, "{fields:?}");
        }
        // Per-thread hdrhistograms hold one full counts array per thread.
        let bytes = |name: &str, threads: usize| {
            study
                .histograms
                .iter()
                .find(|p| p.strategy == name && p.threads == threads)
                .and_then(|p| p.bytes)
                .expect("bytes reported")
        };
        assert_eq!(bytes("hdr-per-thread", 2), 2 * bytes("hdr-per-thread", 1));
        // The sync path: the merged histogram and one per recorder.
        assert_eq!(bytes("hdr-sync", 1) * 3, bytes("hdr-sync", 2) * 2);
        let svg = std::fs::read_to_string(out.join("histogram.svg")).expect("histogram svg");
        assert!(svg.starts_with("<svg"));
        for name in implementations {
            assert!(
                svg.contains(&format!(">\n{name}\n<")),
                "histogram legend lacks {name}"
            );
        }

        let implementations = [
            "metricz",
            "prometheus",
            "prometheus-client",
            "metrics-exporter",
        ];
        let curves: Vec<String> = implementations
            .iter()
            .flat_map(|name| [name.to_string(), format!("{name}/own-series")])
            .collect();
        assert_eq!(study.registry.len(), curves.len() * 2);
        // Churn: every family implementation that can remove (not the
        // `metrics` recorder), at 1 and 2 threads.
        let churn = std::fs::read_to_string(out.join("registry-churn.csv")).expect("churn csv");
        let churners = ["metricz", "prometheus", "prometheus-client"];
        assert_eq!(study.churn.len(), churners.len() * 2);
        for name in churners {
            for threads in [1, 2] {
                let row = churn
                    .lines()
                    .find(|r| r.starts_with(&format!("{name},{threads},")))
                    .unwrap_or_else(|| panic!("no churn row for {name} at {threads} threads"));
                let fields: Vec<&str> = row.split(',').collect();
                assert_eq!(fields[3], "3", "runs recorded: {row}");
                let number = |i: usize| -> f64 { fields[i].parse().unwrap() };
                let (median, min, max, ns) = (number(5), number(6), number(7), number(8));
                assert!(min > 0.0 && min <= median && median <= max, "{row}");
                assert!(ns > 0.0, "{row}");
            }
        }
        // Encode: the five metricz layouts and the peer, each timed.
        let encode = std::fs::read_to_string(out.join("registry-encode.csv")).expect("encode csv");
        let rows: Vec<Vec<&str>> = encode
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), 6);
        for (row, (shards, written)) in
            rows.iter()
                .zip([(2, 2), (16, 16), (64, 64), (256, 256), (256, 2), (0, 0)])
        {
            assert_eq!(
                (row[1], row[2]),
                (&*shards.to_string(), &*written.to_string()),
                "{row:?}"
            );
            assert_eq!(row[3], "3", "{row:?}");
            let median: f64 = row[4].parse().unwrap();
            assert!(median > 0.0, "{row:?}");
        }
        let csv = std::fs::read_to_string(out.join("registry.csv")).expect("registry csv");
        assert!(csv.starts_with("# metricz contention study\n# machine: "));
        let rows: Vec<&str> = csv
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .collect();
        assert_eq!(rows.len(), curves.len() * 2);
        for name in &curves {
            for threads in [1, 2] {
                let row = rows
                    .iter()
                    .find(|r| r.starts_with(&format!("{name},{threads},")))
                    .unwrap_or_else(|| panic!("no registry row for {name} at {threads} threads"));
                let fields: Vec<&str> = row.split(',').collect();
                assert_eq!(fields[3], "3", "runs recorded");
                let (median, min, max, ns): (f64, f64, f64, f64) = (
                    fields[5].parse().unwrap(),
                    fields[6].parse().unwrap(),
                    fields[7].parse().unwrap(),
                    fields[8].parse().unwrap(),
                );
                assert!(min > 0.0 && min <= median && median <= max, "{row}");
                assert!(ns > 0.0, "{row}");
            }
        }
        let svg = std::fs::read_to_string(out.join("registry.svg")).expect("registry svg");
        assert!(svg.starts_with("<svg"));
        for name in &curves {
            assert!(
                svg.contains(&format!(">\n{name}\n<")),
                "registry legend lacks {name}"
            );
        }

        // Counter storage: 10 000 standalone series x shards x one padded
        // shard; the arena: 20 chunks of 512 slots x shards x one 4 KiB row.
        let shard =
            std::mem::size_of::<crossbeam_utils::CachePadded<std::sync::atomic::AtomicU64>>();
        let header = (16 + 8 * shard).next_multiple_of(shard);
        let memory = std::fs::read_to_string(out.join("registry-memory.csv")).expect("memory csv");
        let rows: Vec<Vec<&str>> = memory
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), study.memory.len());
        for shards in [2usize, 64, 256] {
            let find = |layout: String| {
                rows.iter()
                    .find(|r| r[0] == layout)
                    .unwrap_or_else(|| panic!("no memory row {layout}"))
            };
            let standalone = find(format!("Counter::with_shards({shards})"));
            assert_eq!(standalone[1], "10000");
            assert_eq!(standalone[2], shards.to_string());
            assert_eq!(standalone[3], (10_000 * shards * shard).to_string());
            let arena = find(format!("registry arena ({shards} shards; 2 CPUs)"));
            assert_eq!(arena[1], "10000", "every series created");
            // 20 chunks, each with its directory and header (a bitmap of 8
            // words each padded to a line, the directory pointer: 1 152
            // bytes on x86_64) and the two rows written.
            assert_eq!(
                arena[3],
                (10_000usize.div_ceil(512) * (2 * 4096 + shards * 8 + header)).to_string()
            );
        }
        let all = rows
            .iter()
            .find(|r| r[0] == "registry arena (256 shards; 256 CPUs)")
            .expect("the 256-CPU row");
        assert_eq!(all[3], (20 * (256 * 4096 + 256 * 8 + header)).to_string());

        // The facade: three workloads through each recorder, every final
        // value checked by the run; bytes for the histogram curves only.
        let curves = [
            "metricz/counter-static",
            "metrics-exporter/counter-static",
            "metricz/counter-runtime",
            "metrics-exporter/counter-runtime",
            "metricz/histogram",
            "metrics-exporter/histogram",
        ];
        let names: Vec<&str> = study.facade.iter().map(|p| p.strategy).collect();
        let expected: Vec<&str> = curves.iter().flat_map(|c| [*c, *c]).collect();
        assert_eq!(
            names, expected,
            "workload, then implementation, then threads"
        );
        let csv = std::fs::read_to_string(out.join("facade.csv")).expect("facade csv");
        assert!(csv.starts_with("# metricz contention study\n# machine: "));
        for fields in checked_rows(&csv, &curves, "facade") {
            let threads: usize = fields[1].parse().unwrap();
            assert_eq!(fields[2], (threads > cores()).to_string(), "{fields:?}");
            if fields[0].ends_with("/histogram") {
                let bytes: u64 = fields[9]
                    .parse()
                    .unwrap_or_else(|_| panic!("bytes in {fields:?}"));
                assert!(bytes > 0, "{fields:?}");
            } else {
                assert_eq!(fields[9], "", "no bytes for counters: {fields:?}");
            }
        }
        // The exporter holds every sample: 8 bytes per record.
        let point = study
            .facade
            .iter()
            .find(|p| p.strategy == "metrics-exporter/histogram" && p.threads == 2)
            .expect("exporter histogram at 2 threads");
        let records = 2 * (point.ops_per_thread + support::VALUES_LEN as u64);
        assert_eq!(point.bytes, Some(records as usize * 8));
        let svg = std::fs::read_to_string(out.join("facade.svg")).expect("facade svg");
        assert!(svg.starts_with("<svg"));
        for name in curves {
            assert!(
                svg.contains(&format!(">\n{name}\n<")),
                "facade legend lacks {name}"
            );
        }

        // The run describes itself: every CSV starts with the metadata,
        // which reads back; machine.json holds the same; tables.txt what
        // was printed; every plot carries the machine line.
        let meta = meta::Meta::current();
        for stem in [
            "contention",
            "contention-usl",
            "histogram",
            "registry",
            "registry-churn",
            "registry-encode",
            "registry-memory",
            "facade",
            "export",
        ] {
            let (read, _) = meta::Meta::read(&out.join(format!("{stem}.csv"))).expect(stem);
            for key in [
                "cpu_model",
                "cores_online",
                "rustc",
                "git_commit",
                "crate_version",
            ] {
                assert_eq!(read.get(key), meta.get(key), "{stem}.csv {key}");
            }
            assert!(read.get("date").is_some_and(|d| d.len() == 20), "{stem}");
        }
        let json = std::fs::read_to_string(out.join("machine.json")).expect("machine.json");
        assert!(json.contains("\"rseq_registered\""), "{json}");
        let tables = std::fs::read_to_string(out.join("tables.txt")).expect("tables.txt");
        assert!(tables.starts_with("# metricz contention study\n"));
        assert!(tables.contains("per-cpu-locked") && tables.contains("ns/op/thr"));
        for svg in [
            "contention",
            "contention-usl",
            "histogram",
            "registry",
            "facade",
            "export",
        ] {
            let text = std::fs::read_to_string(out.join(format!("{svg}.svg"))).expect(svg);
            assert!(
                text.contains(&format!("machine: {}", meta.get("cores_online").unwrap())),
                "{svg}.svg lacks the machine line"
            );
        }
        // The curves read back as the points the run measured.
        let read = curves::read(&out.join("contention.csv")).expect("contention.csv reads back");
        assert_eq!(read.curves.len(), strategies.len());
        let rseq = read.curves.iter().find(|c| c.strategy == "rseq").unwrap();
        let measured = points
            .iter()
            .find(|p| p.strategy == "rseq" && p.threads == 2)
            .unwrap();
        assert!((rseq.at(2).unwrap().mops - measured.median()).abs() < 1e-3 * measured.median());
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn facade_checks_read_back_every_call() {
        use support::facade::{ExporterFacade, MetriczFacade};
        let pool = support::pool(2);
        fn check<F: FacadeStrategy>(pool: &ThreadPool) {
            for workload in Workload::ALL {
                let facade = F::build();
                support::facade::timed_facade(pool, &facade, workload, 10, 1_000);
                let got = if workload.is_histogram() {
                    facade.histogram_count()
                } else {
                    facade.counter_total()
                };
                assert_eq!(got, Some(2 * 1_010), "{}", F::curve(workload));
            }
            // A recorder nothing ran on reads back no series, not zero.
            let fresh = F::build();
            assert_eq!(fresh.counter_total(), None, "{}", F::NAME);
        }
        check::<MetriczFacade>(&pool);
        check::<ExporterFacade>(&pool);
    }

    #[test]
    fn value_table_is_fixed_and_log_uniform() {
        let values = support::values();
        assert!(values
            .iter()
            .all(|v| (support::VALUE_MIN..=support::VALUE_MAX).contains(v)));
        // Log-uniform over five decades: about a fifth in each.
        for decade in 0..5u32 {
            let lo = support::VALUE_MIN * 10u64.pow(decade);
            let n = values.iter().filter(|&&v| v >= lo && v < lo * 10).count();
            assert!((600..1050).contains(&n), "decade {decade}: {n} values");
        }
        // Fixed seed: the same table in every build and run.
        assert_eq!(values[..4], [298_797, 4_783_997, 3_706, 3_828_417]);
        let mut a = support::ValueCursor::new(0);
        let mut b = support::ValueCursor::new(1);
        assert_ne!(a.next_value(), b.next_value(), "threads start apart");
    }

    #[test]
    fn arguments_are_checked() {
        assert!(Config::from_args(["--threads".to_string(), "0".into()]).is_err());
        assert!(Config::from_args(["--runs".to_string()]).is_err());
        assert!(Config::from_args(["--runs".to_string(), "4".into()]).is_err());
        assert!(Config::from_args(["--quick".to_string(), "--runs".into(), "1".into()]).is_ok());
        assert!(Config::from_args(["--bogus".to_string()]).is_err());
        assert!(Config::from_args(["--only".to_string(), "bogus".into()]).is_err());
        let only = Config::from_args(["--only".to_string(), "registry, facade".into()]).unwrap();
        assert_eq!(only.sections, ["registry", "facade"]);
        assert!(only.runs("facade") && !only.runs("counter"));
        assert_eq!(Config::full().sections, SECTIONS);
        let c = Config::from_args([
            "--threads".to_string(),
            "1,3".into(),
            "--runs".into(),
            "7".into(),
        ])
        .unwrap();
        assert_eq!((c.threads, c.runs), (vec![1, 3], 7));
    }

    #[test]
    fn all_and_compare_arguments() {
        let all = Config::from_args(["--all".to_string()]).unwrap();
        assert_eq!(all.sections, SECTIONS);
        assert_eq!(all.runs, PAPER_RUNS);
        for args in [["--all", "--runs", "5"], ["--runs", "5", "--all"]] {
            assert_eq!(Config::from_args(args.map(String::from)).unwrap().runs, 5);
        }
        assert!(all.out.ends_with(PAPER_FIGURES), "{}", all.out.display());
        // --out wins, before or after --all.
        for args in [["--all", "--out", "/tmp/x"], ["--out", "/tmp/x", "--all"]] {
            let c = Config::from_args(args.map(String::from)).unwrap();
            assert_eq!(c.out, Path::new("/tmp/x"));
        }
        let c =
            Config::from_args(["--compare", "a.csv", "b.csv", "--out", "/tmp/y"].map(String::from))
                .unwrap();
        assert_eq!(c.compare, [PathBuf::from("a.csv"), PathBuf::from("b.csv")]);
        assert_eq!(c.out, Path::new("/tmp/y"));
        assert!(Config::from_args(["--compare".to_string()]).is_err());
        assert!(Config::from_args(["--compare", "--all"].map(String::from)).is_err());
        assert!(Config::full().compare.is_empty());
    }

    #[test]
    fn full_sweep_reaches_twice_the_cores() {
        let c = Config::full();
        assert_eq!(c.threads.first(), Some(&1));
        assert_eq!(c.threads.last(), Some(&(2 * cores())));
        assert!(c.runs >= 5);
    }
}
