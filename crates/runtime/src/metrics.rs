//! Metrics in the Prometheus text format: per binding and direction, counts by outcome,
//! latency histograms, events in flight, retries, dead letters, reconnects, and the process
//! figures. Names follow Dapr's component metrics where Dapr has them
//! (`dapr_component_output_binding_count`, `dapr_component_input_binding_latencies`, ...).
//!
//! Recording is a few relaxed atomic adds on series created once per binding, operation and
//! outcome; nothing is formatted until a scrape.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bindery_core::HealthSnapshot;

/// Latency bucket bounds in milliseconds: Dapr's, with sub-millisecond ones added because a
/// bindery hop is much shorter than that.
const BUCKETS_MS: [f64; 37] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0, 40.0,
    50.0, 65.0, 80.0, 100.0, 130.0, 160.0, 200.0, 250.0, 300.0, 400.0, 500.0, 650.0, 800.0, 1000.0,
    2000.0, 5000.0, 10000.0, 20000.0, 50000.0, 100000.0,
];

/// A count and a latency histogram.
#[derive(Debug)]
struct Series {
    count: AtomicU64,
    sum_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS_MS.len()],
}

impl Default for Series {
    fn default() -> Self {
        Series {
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Series {
    fn observe(&self, elapsed: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let ms = elapsed.as_secs_f64() * 1000.0;
        if let Some(i) = BUCKETS_MS.iter().position(|b| ms <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What became of input events, by name.
const OUTCOMES: [&str; 5] = ["accepted", "dropped", "dead-lettered", "failed", "closed"];

/// The metrics of one binding.
#[derive(Debug, Default)]
pub struct BindingMetrics {
    // (operation, success) -> series
    output: RwLock<HashMap<(String, bool), Arc<Series>>>,
    input: [Series; 2],
    in_flight: AtomicI64,
    retries: AtomicU64,
    outcomes: [AtomicU64; OUTCOMES.len()],
}

impl BindingMetrics {
    /// An output call of `operation` finished after `elapsed`.
    pub fn output_call(&self, operation: &str, success: bool, elapsed: Duration) {
        // A binding has a handful of series: a scan finds one without allocating a key.
        let existing = self
            .output
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|((op, ok), _)| *ok == success && op == operation)
            .map(|(_, s)| Arc::clone(s));
        let series = match existing {
            Some(s) => s,
            None => Arc::clone(
                self.output
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry((operation.to_owned(), success))
                    .or_default(),
            ),
        };
        series.observe(elapsed);
    }

    /// Events being delivered now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// An event entered delivery.
    pub fn event_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// An event left delivery with `outcome` after `elapsed` and `retries` extra attempts.
    pub fn event_finished(&self, outcome: &str, elapsed: Duration, retries: u64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.retries.fetch_add(retries, Ordering::Relaxed);
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
        let success = matches!(outcome, "accepted" | "dropped");
        self.input[usize::from(success)].observe(elapsed);
    }
}

/// Every binding's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    bindings: RwLock<HashMap<String, Arc<BindingMetrics>>>,
}

impl Metrics {
    /// The metrics of binding `name`, created on first use and kept across reloads.
    pub fn binding(&self, name: &str) -> Arc<BindingMetrics> {
        if let Some(m) = self
            .bindings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Arc::clone(m);
        }
        Arc::clone(
            self.bindings
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(name.to_owned())
                .or_default(),
        )
    }

    /// The Prometheus text exposition of every metric. `health` gives each binding's
    /// connection state and reconnects at scrape time.
    pub fn render(&self, app_id: &str, health: &[(String, HealthSnapshot)]) -> String {
        let mut out = String::with_capacity(4096);
        let bindings: Vec<(String, Arc<BindingMetrics>)> = {
            let mut v: Vec<_> = self
                .bindings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let app = escape(app_id);

        header(
            &mut out,
            "dapr_component_output_binding_count",
            "counter",
            "Output binding calls, by operation and success.",
        );
        for (name, m) in &bindings {
            for ((op, ok), s) in sorted_output(m) {
                let _ = writeln!(
                    out,
                    "dapr_component_output_binding_count{{app_id=\"{app}\",component=\"{}\",operation=\"{}\",success=\"{ok}\"}} {}",
                    escape(name),
                    escape(&op),
                    s.count.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "dapr_component_output_binding_latencies",
            "histogram",
            "Output binding call latency in milliseconds.",
        );
        for (name, m) in &bindings {
            for ((op, ok), s) in sorted_output(m) {
                let labels = format!(
                    "app_id=\"{app}\",component=\"{}\",operation=\"{}\",success=\"{ok}\"",
                    escape(name),
                    escape(&op)
                );
                histogram(
                    &mut out,
                    "dapr_component_output_binding_latencies",
                    &labels,
                    &s,
                );
            }
        }
        header(
            &mut out,
            "dapr_component_input_binding_count",
            "counter",
            "Input events delivered to the app, by success.",
        );
        for (name, m) in &bindings {
            for (ok, s) in [(false, &m.input[0]), (true, &m.input[1])] {
                let _ = writeln!(
                    out,
                    "dapr_component_input_binding_count{{app_id=\"{app}\",component=\"{}\",success=\"{ok}\"}} {}",
                    escape(name),
                    s.count.load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "dapr_component_input_binding_latencies",
            "histogram",
            "Input event delivery latency in milliseconds, retries included.",
        );
        for (name, m) in &bindings {
            for (ok, s) in [(false, &m.input[0]), (true, &m.input[1])] {
                let labels = format!(
                    "app_id=\"{app}\",component=\"{}\",success=\"{ok}\"",
                    escape(name)
                );
                histogram(
                    &mut out,
                    "dapr_component_input_binding_latencies",
                    &labels,
                    s,
                );
            }
        }
        header(
            &mut out,
            "bindery_input_events_total",
            "counter",
            "Input events by outcome: accepted, dropped, dead-lettered, failed (left for redelivery), closed (left at shutdown).",
        );
        for (name, m) in &bindings {
            for (i, o) in OUTCOMES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "bindery_input_events_total{{app_id=\"{app}\",component=\"{}\",outcome=\"{o}\"}} {}",
                    escape(name),
                    m.outcomes[i].load(Ordering::Relaxed)
                );
            }
        }
        header(
            &mut out,
            "bindery_input_events_in_flight",
            "gauge",
            "Input events being delivered now.",
        );
        for (name, m) in &bindings {
            let _ = writeln!(
                out,
                "bindery_input_events_in_flight{{app_id=\"{app}\",component=\"{}\"}} {}",
                escape(name),
                m.in_flight.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "bindery_input_retries_total",
            "counter",
            "Extra delivery attempts made by inbound retry policies.",
        );
        for (name, m) in &bindings {
            let _ = writeln!(
                out,
                "bindery_input_retries_total{{app_id=\"{app}\",component=\"{}\"}} {}",
                escape(name),
                m.retries.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "bindery_binding_connected",
            "gauge",
            "1 while the binding holds a working connection to its backend.",
        );
        for (name, h) in health {
            let _ = writeln!(
                out,
                "bindery_binding_connected{{app_id=\"{app}\",component=\"{}\"}} {}",
                escape(name),
                u8::from(h.connected)
            );
        }
        header(
            &mut out,
            "bindery_binding_reconnects_total",
            "counter",
            "Times the binding reconnected after losing its backend.",
        );
        for (name, h) in health {
            let _ = writeln!(
                out,
                "bindery_binding_reconnects_total{{app_id=\"{app}\",component=\"{}\"}} {}",
                escape(name),
                h.reconnects
            );
        }
        process(&mut out);
        out
    }
}

fn sorted_output(m: &BindingMetrics) -> Vec<((String, bool), Arc<Series>)> {
    let mut v: Vec<_> = m
        .output
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), Arc::clone(v)))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, s: &Series) {
    let mut cumulative = 0;
    for (i, bound) in BUCKETS_MS.iter().enumerate() {
        cumulative += s.buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    let count = s.count.load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let sum_ms = s.sum_us.load(Ordering::Relaxed) as f64 / 1000.0;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum_ms}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The process figures Prometheus clients conventionally export, read from /proc.
fn process(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let page = 4096.0;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the name), rss is 24 (21).
    let cpu = (num(11) + num(12)) / ticks;
    let rss = num(21) * page;
    header(
        out,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
    );
    let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
    header(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    );
    let _ = writeln!(out, "process_resident_memory_bytes {rss}");
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        header(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
    let threads = num(17);
    header(out, "process_threads", "gauge", "Number of OS threads.");
    let _ = writeln!(out, "process_threads {threads}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histograms() {
        let m = Metrics::default();
        let b = m.binding("orders");
        b.output_call("create", true, Duration::from_micros(700));
        b.output_call("create", true, Duration::from_millis(3));
        b.output_call("get", false, Duration::from_millis(1));
        b.event_started();
        b.event_finished("accepted", Duration::from_millis(2), 2);
        let text = m.render(
            "app\"1",
            &[(
                "orders".into(),
                HealthSnapshot {
                    connected: true,
                    reconnects: 4,
                    ..Default::default()
                },
            )],
        );
        assert!(text.contains("dapr_component_output_binding_count{app_id=\"app\\\"1\",component=\"orders\",operation=\"create\",success=\"true\"} 2"), "{text}");
        assert!(text.contains("operation=\"get\",success=\"false\"} 1"));
        assert!(text.contains("dapr_component_output_binding_latencies_bucket{app_id=\"app\\\"1\",component=\"orders\",operation=\"create\",success=\"true\",le=\"1\"} 1"));
        assert!(text.contains("dapr_component_output_binding_latencies_bucket{app_id=\"app\\\"1\",component=\"orders\",operation=\"create\",success=\"true\",le=\"+Inf\"} 2"));
        assert!(text.contains("dapr_component_input_binding_count{app_id=\"app\\\"1\",component=\"orders\",success=\"true\"} 1"));
        assert!(text.contains("bindery_input_events_total{app_id=\"app\\\"1\",component=\"orders\",outcome=\"accepted\"} 1"));
        assert!(
            text.contains(
                "bindery_input_retries_total{app_id=\"app\\\"1\",component=\"orders\"} 2"
            )
        );
        assert!(text.contains(
            "bindery_input_events_in_flight{app_id=\"app\\\"1\",component=\"orders\"} 0"
        ));
        assert!(text.contains(
            "bindery_binding_reconnects_total{app_id=\"app\\\"1\",component=\"orders\"} 4"
        ));
        assert!(text.contains("process_resident_memory_bytes "));
    }
}
