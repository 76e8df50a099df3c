//! Metrics as CloudWatch embedded metric format (EMF) lines on standard output: in Lambda,
//! CloudWatch Logs turns each line into metric data points with no API call on the request
//! path. Names, units and dimensions are MediaPackage's (v1, namespace `AWS/MediaPackage`),
//! published under the namespace `Sluice`:
//!
//! - `IngressBytes`, `IngressResponseTime` by Channel and Channel + IngestEndpoint;
//! - `EgressBytes`, `EgressResponseTime` by Channel and Channel + OriginEndpoint;
//! - `EgressRequestCount` by StatusCodeRange, Channel + StatusCodeRange and
//!   Channel + OriginEndpoint + StatusCodeRange;
//! - `ActiveInput` (1 for the ingest endpoint a segment came from) by IngestEndpoint +
//!   OriginEndpoint;
//! - `KeyProviderError` (an event in MediaPackage), in all and by OriginEndpoint: a key
//!   request to the endpoint's SPEKE key provider failed;
//! - `StagedUploadsRejected` (Sluice's own), in all and by Channel: an upload API Gateway staged in S3
//!   that the staged-ingest function refused (its encoder got 201 from S3 and never learns).
//!
//! Off unless `SLUICE_METRICS=emf` (the SAM template sets it; `sluice-local` leaves it off
//! so a terminal is not flooded).

use serde_json::{json, Value};

/// The CloudWatch namespace of Sluice's metrics.
pub const NAMESPACE: &str = "Sluice";

/// Whether EMF lines are written (`SLUICE_METRICS=emf`).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("SLUICE_METRICS").is_ok_and(|v| v.eq_ignore_ascii_case("emf")))
}

fn line(timestamp_ms: i64, directives: Value, fields: Value) -> String {
    let mut root = fields;
    root["_aws"] = json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": directives });
    root.to_string()
}

/// `2xx`, `3xx`, `4xx` or `5xx`.
pub fn status_code_range(status: u16) -> String {
    format!("{}xx", (status / 100).clamp(2, 5))
}

/// One ingest request.
pub fn ingress(timestamp_ms: i64, channel: &str, ingest_endpoint: &str, bytes: u64, millis: f64) -> String {
    line(
        timestamp_ms,
        json!([{
            "Namespace": NAMESPACE,
            "Dimensions": [["Channel"], ["Channel", "IngestEndpoint"]],
            "Metrics": [
                { "Name": "IngressBytes", "Unit": "Bytes" },
                { "Name": "IngressResponseTime", "Unit": "Milliseconds" }
            ]
        }]),
        json!({
            "Channel": channel,
            "IngestEndpoint": ingest_endpoint,
            "IngressBytes": bytes,
            "IngressResponseTime": millis,
        }),
    )
}

/// One playback request.
pub fn egress(timestamp_ms: i64, channel: &str, origin_endpoint: &str, status: u16, bytes: u64, millis: f64) -> String {
    line(
        timestamp_ms,
        json!([
            {
                "Namespace": NAMESPACE,
                "Dimensions": [["Channel"], ["Channel", "OriginEndpoint"]],
                "Metrics": [
                    { "Name": "EgressBytes", "Unit": "Bytes" },
                    { "Name": "EgressResponseTime", "Unit": "Milliseconds" }
                ]
            },
            {
                "Namespace": NAMESPACE,
                "Dimensions": [
                    ["StatusCodeRange"],
                    ["Channel", "StatusCodeRange"],
                    ["Channel", "OriginEndpoint", "StatusCodeRange"]
                ],
                "Metrics": [{ "Name": "EgressRequestCount", "Unit": "Count" }]
            }
        ]),
        json!({
            "Channel": channel,
            "OriginEndpoint": origin_endpoint,
            "StatusCodeRange": status_code_range(status),
            "EgressBytes": bytes,
            "EgressResponseTime": millis,
            "EgressRequestCount": 1,
        }),
    )
}

/// A segment served from `ingest_endpoint`'s input.
pub fn active_input(timestamp_ms: i64, ingest_endpoint: &str, origin_endpoint: &str) -> String {
    line(
        timestamp_ms,
        json!([{
            "Namespace": NAMESPACE,
            "Dimensions": [["IngestEndpoint", "OriginEndpoint"]],
            "Metrics": [{ "Name": "ActiveInput", "Unit": "None" }]
        }]),
        json!({
            "IngestEndpoint": ingest_endpoint,
            "OriginEndpoint": origin_endpoint,
            "ActiveInput": 1,
        }),
    )
}

/// A staged upload refused after API Gateway acknowledged it.
pub fn staged_rejected(timestamp_ms: i64, channel: &str) -> String {
    line(
        timestamp_ms,
        json!([{
            "Namespace": NAMESPACE,
            "Dimensions": [[], ["Channel"]],
            "Metrics": [{ "Name": "StagedUploadsRejected", "Unit": "Count" }]
        }]),
        json!({ "Channel": channel, "StagedUploadsRejected": 1 }),
    )
}

/// A key request to an endpoint's SPEKE key provider failed (MediaPackage's
/// `KeyProviderError` event, as a metric).
pub fn key_provider_error(timestamp_ms: i64, origin_endpoint: &str) -> String {
    line(
        timestamp_ms,
        json!([{
            "Namespace": NAMESPACE,
            "Dimensions": [[], ["OriginEndpoint"]],
            "Metrics": [{ "Name": "KeyProviderError", "Unit": "Count" }]
        }]),
        json!({ "OriginEndpoint": origin_endpoint, "KeyProviderError": 1 }),
    )
}

/// Writes one line to standard output when metrics are enabled.
pub fn emit(line: impl FnOnce() -> String) {
    if enabled() {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric a directive names is a number at the root, and every dimension a
    /// string at the root (the EMF specification's rules for a valid line). An empty
    /// dimension set publishes the metric without dimensions (what the aws-embedded-metrics
    /// libraries write for `set_dimensions()` with none).
    fn assert_valid_emf(text: &str) -> Value {
        let v: Value = serde_json::from_str(text).unwrap();
        for directive in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], NAMESPACE);
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for d in set {
                    assert!(v[d.as_str().unwrap()].is_string(), "dimension {d}");
                }
            }
            for m in directive["Metrics"].as_array().unwrap() {
                assert!(v[m["Name"].as_str().unwrap()].is_number(), "metric {m}");
            }
        }
        assert!(v["_aws"]["Timestamp"].is_i64());
        v
    }

    #[test]
    fn lines_are_valid_emf_with_mediapackage_names() {
        let v = assert_valid_emf(&ingress(1, "ch", "ie", 1000, 2.5));
        assert_eq!(v["IngressBytes"], 1000);
        let v = assert_valid_emf(&egress(1, "ch", "ep", 404, 10, 1.0));
        assert_eq!(v["StatusCodeRange"], "4xx");
        assert_valid_emf(&active_input(1, "ie", "ep"));
        assert_eq!(assert_valid_emf(&staged_rejected(1, "ch"))["StagedUploadsRejected"], 1);
        assert_eq!(status_code_range(206), "2xx");
        assert_eq!(status_code_range(503), "5xx");
    }
}
