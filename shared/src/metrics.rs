//! Process-wide counters: what the room did, for operators. The local server serves them as
//! Prometheus text at `/metrics`; on Lambda they are written as CloudWatch Embedded Metric
//! Format lines, which CloudWatch turns into metrics with no API call.
//!
//! One process is one Lambda instance or one local server, so process-wide is the natural
//! scope; the names are fixed strings, so the registry stays small.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// A series: a metric name and at most one label.
type Series = (&'static str, Option<(&'static str, &'static str)>);

#[derive(Default)]
struct Registry {
    /// Each counter is an atomic: adding to it takes no lock (see [`add`]).
    counters: BTreeMap<Series, Arc<AtomicU64>>,
    gauges: BTreeMap<Series, f64>,
    /// Counter values at the last EMF flush, so each flush carries the increase.
    flushed: BTreeMap<Series, u64>,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let lock = REGISTRY.get_or_init(|| Mutex::new(Registry::default()));
    // std Mutex, taken to register a series or to read them all, never per request; a panic
    // elsewhere must not stop the counting.
    match lock.lock() {
        Ok(registry) => registry,
        Err(poisoned) => poisoned.into_inner(),
    }
}

thread_local! {
    /// This thread's handles to the counters it has touched: after the first add of a series
    /// on a thread, adding to it is one atomic add, with no process-wide lock.
    static HANDLES: RefCell<HashMap<Series, Arc<AtomicU64>>> = RefCell::new(HashMap::new());
}

fn add_to(series: Series, by: u64) {
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        let counter = handles.entry(series).or_insert_with(|| {
            registry()
                .counters
                .entry(series)
                .or_insert_with(|| Arc::new(AtomicU64::new(0)))
                .clone()
        });
        counter.fetch_add(by, Ordering::Relaxed);
    });
}

/// Adds `by` to a counter.
pub fn add(name: &'static str, by: u64) {
    if by > 0 {
        add_to((name, None), by);
    }
}

/// Adds one to a counter with a label (e.g. `tokens_rejected_total{reason="token_expired"}`).
pub fn add_labelled(name: &'static str, label: &'static str, value: &'static str) {
    add_to((name, Some((label, value))), 1);
}

pub fn set_gauge(name: &'static str, value: f64) {
    registry().gauges.insert((name, None), value);
}

/// The current value of a counter (tests, the control panel).
pub fn counter(name: &'static str, label: Option<(&'static str, &'static str)>) -> u64 {
    registry()
        .counters
        .get(&(name, label))
        .map_or(0, |c| c.load(Ordering::Relaxed))
}

fn series_name((name, label): &Series) -> String {
    match label {
        Some((key, value)) => format!("{name}{{{key}=\"{value}\"}}"),
        None => (*name).to_owned(),
    }
}

/// Every series in the Prometheus text exposition format.
pub fn prometheus() -> String {
    let registry = registry();
    let mut out = String::new();
    let mut typed = std::collections::BTreeSet::new();
    for (series, value) in &registry.counters {
        let value = value.load(Ordering::Relaxed);
        if typed.insert(series.0) {
            out.push_str(&format!("# TYPE waiting_room_{} counter\n", series.0));
        }
        out.push_str(&format!("waiting_room_{} {value}\n", series_name(series)));
    }
    for (series, value) in &registry.gauges {
        out.push_str(&format!("# TYPE waiting_room_{} gauge\n", series.0));
        out.push_str(&format!("waiting_room_{} {value}\n", series_name(series)));
    }
    out
}

/// One CloudWatch EMF document with what changed since the last flush (`None` when nothing
/// did). Labels become part of the metric name, so no dimension explodes the metric count.
pub fn emf_flush(namespace: &str, function: &str, now_ms: i64) -> Option<Value> {
    let mut registry = registry();
    let mut fields = Map::new();
    let mut metrics = Vec::new();
    let counters: Vec<(Series, u64)> = registry
        .counters
        .iter()
        .map(|(s, v)| (*s, v.load(Ordering::Relaxed)))
        .collect();
    for (series, value) in counters {
        let before = registry.flushed.insert(series, value).unwrap_or(0);
        if value > before {
            let name = match series.1 {
                Some((key, label)) => format!("{}_{key}_{label}", series.0),
                None => series.0.to_owned(),
            };
            metrics.push(json!({ "Name": name, "Unit": "Count" }));
            fields.insert(name, json!(value - before));
        }
    }
    for (series, value) in &registry.gauges {
        let name = series_name(series);
        metrics.push(json!({ "Name": name, "Unit": "None" }));
        fields.insert(name, json!(value));
    }
    if metrics.is_empty() {
        return None;
    }
    fields.insert("function".into(), json!(function));
    fields.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["function"]],
                "Metrics": metrics,
            }],
        }),
    );
    Some(Value::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_and_flush_as_emf_deltas() {
        add("test_metric_total", 3);
        add_labelled("test_rejected_total", "reason", "token_expired");
        let text = prometheus();
        assert!(text.contains("# TYPE waiting_room_test_metric_total counter\n"));
        assert!(text.contains("waiting_room_test_rejected_total{reason=\"token_expired\"} 1\n"));

        let first = emf_flush("WaitingRoom", "unit", 1_000).expect("something changed");
        assert_eq!(first["test_metric_total"], 3);
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "WaitingRoom"
        );
        add("test_metric_total", 2);
        let second = emf_flush("WaitingRoom", "unit", 2_000).expect("changed again");
        assert_eq!(
            second["test_metric_total"], 2,
            "only the increase since the last flush"
        );
        assert!(
            second
                .get("test_rejected_total_reason_token_expired")
                .is_none()
        );
    }
}
