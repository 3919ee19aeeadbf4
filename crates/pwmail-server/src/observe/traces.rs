//! OpenTelemetry traces, configured the standard way: on when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set, exported
//! as OTLP over HTTP (protobuf); `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)` and
//! `OTEL_BSP_*` are read by the SDK. Spans are `tracing`'s, bridged by
//! `tracing-opentelemetry`: an API call or page request continues an
//! incoming W3C `traceparent`; a queued email keeps its call's
//! `traceparent` (in its options) and its delivery attempt links to it.
//!
//! Off, every function here does nothing: the global propagator is the
//! no-op one, so nothing is extracted, injected or linked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Whether traces are on in this process: off, the spans that exist only
/// for traces are not made and nothing is propagated (each span costs the
/// log layer its fields, measured at ~20,000 instructions a call).
static ON: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported (set once, at start).
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// A span that exists only for traces, or none when they are off.
#[macro_export]
macro_rules! trace_span {
    ($($args:tt)*) => {
        if $crate::observe::traces::on() {
            tracing::info_span!($($args)*)
        } else {
            tracing::Span::none()
        }
    };
}

/// The exporter and its tracer, when the variables turn traces on.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Reads the variables; `None` when traces are off.
    pub fn from_env() -> anyhow::Result<Option<Traces>> {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim() == "true")
            || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
        if disabled
            || !(set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        {
            return Ok(None);
        }
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()
            .map_err(|e| {
                // The exporter's own words name the variable, or not.
                let said = e.to_string();
                if said.contains("OTEL_EXPORTER_OTLP") {
                    anyhow::anyhow!("traces: {said}")
                } else {
                    anyhow::anyhow!("traces (OTEL_EXPORTER_OTLP_ENDPOINT): {said}")
                }
            })?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        let named = set("OTEL_SERVICE_NAME")
            || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
        if !named {
            resource = resource.with_service_name("pwmail");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        ON.store(true, Ordering::Relaxed);
        Ok(Some(Traces { provider }))
    }

    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("pwmail")
    }

    /// Exports what is still buffered; at exit.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("pwmail: exporting the last traces: {e}");
        }
    }
}

/// Makes `span` continue the trace of an incoming `traceparent`, and
/// writes its trace and span ids into its `trace_id`/`span_id` fields (log
/// lines inside it carry them).
pub fn continue_from(span: &tracing::Span, headers: &http::HeaderMap) {
    if !on() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    record_ids(span);
}

/// Writes `span`'s trace and span ids into its `trace_id`/`span_id` fields
/// (declared `tracing::field::Empty`), when traces are on.
pub fn record_ids(span: &tracing::Span) {
    if !on() {
        return;
    }
    let context = span.context();
    let span_ref = context.span();
    let ids = span_ref.span_context();
    if ids.is_valid() {
        span.record("trace_id", ids.trace_id().to_string());
        span.record("span_id", ids.span_id().to_string());
    }
}

/// `span`'s context as a W3C `traceparent`, to be kept with what it queues.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !on() {
        return None;
    }
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&span.context(), &mut carrier)
    });
    carrier.remove("traceparent")
}

/// Links `span` to the span a stored `traceparent` names (a delivery
/// attempt to the call that queued it: a link, not a parent, since one call
/// may be delivered much later, many times).
pub fn link_to(span: &tracing::Span, traceparent: &str) {
    if !on() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let linked = cx.span().span_context().clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
