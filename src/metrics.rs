//! Prometheus metrics: requests by route and status, a latency histogram, and the database pool's state.

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::db::Pool;

/// One registry per running app (tests run many apps in one process; nothing is global).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    purged_rows: IntCounterVec,
    api_key_lookups: prometheus::IntCounter,
    api_key_cache_hits: prometheus::IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("tessera".into()), None)
            .expect("static registry options are valid");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("static metric options are valid");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route.",
            )
            .buckets(vec![
                0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )
        .expect("static metric options are valid");
        let pool_connections = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state."),
            &["state"],
        )
        .expect("static metric options are valid");
        let pool_max = IntGauge::new("db_pool_max_connections", "Database pool size limit.")
            .expect("static metric options are valid");
        let purged_rows = IntCounterVec::new(
            Opts::new(
                "purged_rows_total",
                "Expired rows deleted by the janitor, by table.",
            ),
            &["table"],
        )
        .expect("static metric options are valid");
        let api_key_lookups = prometheus::IntCounter::new(
            "api_key_lookups_total",
            "Well-formed API keys looked up, in the per-node cache or the database (malformed keys are \
             refused before any lookup).",
        )
        .expect("static metric options are valid");
        let api_key_cache_hits = prometheus::IntCounter::new(
            "api_key_cache_hits_total",
            "API-key lookups answered by the per-node cache without a database query.",
        )
        .expect("static metric options are valid");
        for table in crate::janitor::TABLES {
            purged_rows.with_label_values(&[table.name()]);
        }
        for c in [
            Box::new(purged_rows.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(api_key_lookups.clone()),
            Box::new(api_key_cache_hits.clone()),
            Box::new(requests.clone()),
            Box::new(duration.clone()),
            Box::new(pool_connections.clone()),
            Box::new(pool_max.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            duration,
            pool_connections,
            pool_max,
            purged_rows,
            api_key_lookups,
            api_key_cache_hits,
        }
    }

    /// Counts one lookup of a well-formed API key.
    pub fn api_key_lookup(&self) {
        self.api_key_lookups.inc();
    }

    /// Counts one API-key lookup answered by the per-node cache.
    pub fn api_key_cache_hit(&self) {
        self.api_key_cache_hits.inc();
    }

    /// Counts rows the janitor deleted from `table`.
    pub fn purged(&self, table: &str, rows: usize) {
        self.purged_rows
            .with_label_values(&[table])
            .inc_by(rows as u64);
    }

    /// Records one finished request. `route` is the matched pattern, never the raw path, and `method`
    /// is labelled by [`method_label`] (bounded labels).
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[method, route, status.to_string().as_str()])
            .inc();
        self.duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The Prometheus text exposition of every metric, with the pool's state read now.
    pub fn render(&self, pool: &Pool) -> String {
        let state = pool.state();
        let idle = i64::from(state.idle_connections);
        self.pool_connections.with_label_values(&["idle"]).set(idle);
        self.pool_connections
            .with_label_values(&["active"])
            .set(i64::from(state.connections) - idle);
        self.pool_max.set(i64::from(pool.max_size()));
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The `method` label: a standard method as it is, any other `other`. HTTP lets a client send any token
/// as a method, and each distinct label value is a series (a counter and a histogram) kept for the
/// process's life: labelled as they came, random methods grew memory and `/metrics` without bound.
pub fn method_label(method: &str) -> &str {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" | "TRACE" | "CONNECT" => {
            method
        }
        _ => "other",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
