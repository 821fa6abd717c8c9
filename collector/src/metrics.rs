//! The Prometheus metrics (`prometheus` crate, one registry per server, text format at
//! `GET /metrics`): requests by route and status, events accepted, duplicate and refused by
//! reason, rejected batches by status, rate-limited requests, connections, store commit latency
//! and queue depth, and the audit chain's length.
//!
//! Names are prefixed `consentry_`. Gauges that mirror the store (queue depth, audit length)
//! are read when scraped.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric the collector exports.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Answers by route (its audit action name, or `unrouted`) and status.
    pub requests: IntCounterVec,
    /// Events stored.
    pub events_accepted: IntCounter,
    /// Events whose id was already stored.
    pub events_duplicate: IntCounter,
    /// Events refused by the consent re-check, by reason.
    pub events_refused: IntCounterVec,
    /// Batches rejected by status (4xx).
    pub batches_rejected: IntCounterVec,
    /// Requests answered 429, by limit (`address`, `API key`).
    pub rate_limited: IntCounterVec,
    /// Connections open now.
    pub connections_open: IntGauge,
    /// Connections closed on accept because the cap was reached.
    pub connections_refused: IntCounterVec,
    /// Seconds from BEGIN to COMMIT of each store write group.
    pub store_commit_seconds: Histogram,
    /// Operations waiting for the store thread (set when scraped).
    pub store_queue_depth: IntGauge,
    /// Entries in the audit log (set when scraped).
    pub audit_chain_length: IntGauge,
    /// Values the current data key has sealed (set when scraped; the key allows 2^32).
    pub encryption_sealed_values: IntGauge,
    /// Events of suppressed identities, dropped before storage.
    pub events_suppressed: IntCounter,
    /// Events deleted by erasure (API or DSR).
    pub events_erased: IntCounter,
    /// Data-subject requests received, by type and origin.
    pub dsr_requests: IntCounterVec,
    /// Data-subject requests completed, by type.
    pub dsr_completed: IntCounterVec,
    /// Status callback attempts, by outcome (`delivered`, `retry`, `failed`).
    pub dsr_callback_attempts: IntCounterVec,
    /// Status callback attempts that did not deliver.
    pub dsr_callback_failures: IntCounter,
    /// Export downloads, by status.
    pub export_downloads: IntCounterVec,
    /// Rows deleted by retention, by kind (`events`, `exports`).
    pub retention_deleted: IntCounterVec,
    /// Retention sweeps run.
    pub retention_sweeps: IntCounter,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> prometheus::Result<T> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new_custom(Some("consentry".to_owned()), None)?;
        let r = &registry;
        Ok(Metrics {
            requests: register(
                r,
                IntCounterVec::new(
                    Opts::new("http_requests_total", "Answers by route and status."),
                    &["route", "status"],
                ),
            )?,
            events_accepted: register(
                r,
                IntCounter::new("events_accepted_total", "Events stored."),
            )?,
            events_duplicate: register(
                r,
                IntCounter::new(
                    "events_duplicate_total",
                    "Events ignored because their id was already stored.",
                ),
            )?,
            events_refused: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "events_refused_total",
                        "Events refused by the consent re-check, by reason.",
                    ),
                    &["reason"],
                ),
            )?,
            batches_rejected: register(
                r,
                IntCounterVec::new(
                    Opts::new("batches_rejected_total", "Batches answered 4xx, by status."),
                    &["status"],
                ),
            )?,
            rate_limited: register(
                r,
                IntCounterVec::new(
                    Opts::new("rate_limited_total", "Requests answered 429, by limit."),
                    &["limit"],
                ),
            )?,
            connections_open: register(
                r,
                IntGauge::new("connections_open", "Connections open now."),
            )?,
            connections_refused: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "connections_refused_total",
                        "Connections closed on accept, by cap: `total` or `address`.",
                    ),
                    &["cap"],
                ),
            )?,
            store_commit_seconds: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "store_commit_seconds",
                        "Seconds from BEGIN to COMMIT of each store write group.",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    ]),
                ),
            )?,
            store_queue_depth: register(
                r,
                IntGauge::new(
                    "store_queue_depth",
                    "Operations waiting for the store thread.",
                ),
            )?,
            audit_chain_length: register(
                r,
                IntGauge::new("audit_chain_length", "Entries in the audit log."),
            )?,
            encryption_sealed_values: register(
                r,
                IntGauge::new(
                    "encryption_sealed_values",
                    "Values the current data key has sealed (random nonces allow 2^32).",
                ),
            )?,
            events_suppressed: register(
                r,
                IntCounter::new(
                    "events_suppressed_total",
                    "Events of suppressed identities, dropped before storage.",
                ),
            )?,
            events_erased: register(
                r,
                IntCounter::new("events_erased_total", "Events deleted by erasure."),
            )?,
            dsr_requests: register(
                r,
                IntCounterVec::new(
                    Opts::new("dsr_requests_total", "Data-subject requests received."),
                    &["type", "origin"],
                ),
            )?,
            dsr_completed: register(
                r,
                IntCounterVec::new(
                    Opts::new("dsr_completed_total", "Data-subject requests completed."),
                    &["type"],
                ),
            )?,
            dsr_callback_attempts: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "dsr_callback_attempts_total",
                        "Status callback attempts, by outcome.",
                    ),
                    &["outcome"],
                ),
            )?,
            dsr_callback_failures: register(
                r,
                IntCounter::new(
                    "dsr_callback_failures_total",
                    "Status callback attempts that did not deliver.",
                ),
            )?,
            export_downloads: register(
                r,
                IntCounterVec::new(
                    Opts::new("export_downloads_total", "Export downloads, by status."),
                    &["status"],
                ),
            )?,
            retention_deleted: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "retention_deleted_total",
                        "Rows deleted by retention schedules, by kind.",
                    ),
                    &["kind"],
                ),
            )?,
            retention_sweeps: register(
                r,
                IntCounter::new("retention_sweeps_total", "Retention sweeps run."),
            )?,
            registry,
        })
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> Result<String, String> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_in_the_text_format() {
        let metrics = Metrics::new().unwrap();
        metrics
            .requests
            .with_label_values(&["events.read", "200"])
            .inc();
        metrics.store_commit_seconds.observe(0.002);
        let text = metrics.render().unwrap();
        assert!(
            text.contains("consentry_http_requests_total{route=\"events.read\",status=\"200\"} 1")
        );
        assert!(text.contains("consentry_store_commit_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("# TYPE consentry_events_accepted_total counter"));
    }
}
