//! Real parsers of the text exposition: `promtool check metrics`
//! (Prometheus 2.42's parser and linter) and Python's `prometheus-client`
//! parsers for Prometheus text 0.0.4 and OpenMetrics 1.0, installed by
//! `scripts/install-clients`. A missing client fails the test.

use metricz::export::Format;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `program args` with `input` on stdin; returns (success, stdout,
/// stderr). Panics with a clear message if the program is missing.
fn run(program: &str, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is required (scripts/install-clients): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses `text` with prometheus-client's parser for `format` and returns
/// every sample as (name, labels, value).
pub(crate) fn python_samples(
    text: &str,
    format: Format,
) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let parser = match format {
        Format::Prometheus => "from prometheus_client.parser import text_string_to_metric_families",
        Format::OpenMetrics => {
            "from prometheus_client.openmetrics.parser import text_string_to_metric_families"
        }
        Format::Protobuf => panic!("prometheus-client parses text formats only"),
    };
    let script = format!(
        "import sys, json, math\n{parser}\n\
         out = []\n\
         for family in text_string_to_metric_families(sys.stdin.read()):\n\
         \x20   for s in family.samples:\n\
         \x20       v = s.value\n\
         \x20       v = 'NaN' if math.isnan(v) else ('+Inf' if v == math.inf else ('-Inf' if v == -math.inf else v))\n\
         \x20       out.append([s.name, s.labels, v])\n\
         print(json.dumps(out))\n"
    );
    let (ok, stdout, stderr) = run("python3", &["-c", &script], text);
    assert!(
        ok,
        "prometheus-client ({format:?}) rejected:\n{stderr}\n---\n{text}"
    );
    let parsed: Vec<(String, BTreeMap<String, String>, serde_json::Value)> =
        serde_json::from_str(&stdout).expect("parser output");
    parsed
        .into_iter()
        .map(|(name, labels, v)| {
            let v = match v {
                serde_json::Value::Number(n) => n.as_f64().expect("number"),
                serde_json::Value::String(s) => s.parse().expect("special float"),
                other => panic!("unexpected value {other}"),
            };
            (name, labels, v)
        })
        .collect()
}

/// Fails unless `promtool check metrics` accepts `text` (parses it and
/// finds nothing to lint).
pub(crate) fn promtool_accepts(text: &str) {
    let (ok, stdout, stderr) = run("promtool", &["check", "metrics"], text);
    assert!(
        ok,
        "promtool check metrics rejected the exposition:\n{stdout}{stderr}\n---\n{text}"
    );
}

/// A label set from (name, value) pairs, as [`python_samples`] gives it.
pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
