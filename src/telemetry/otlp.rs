//! OTLP export of the traces (cargo feature `otlp`), on only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: every span
//! the logs carry (`request` with its request id; `inngest.execute` with the Inngest
//! `function`, `run_id`, `attempt` and `step`; the tracing middleware's `inngest.run` and
//! `inngest.step` with the step's name) goes, batched, over OTLP/HTTP (protobuf) to
//! `<endpoint>/v1/traces`, so a run can be followed across its requests by its run id. The
//! standard `OTEL_*` variables (headers, timeout, `OTEL_SERVICE_NAME`, default `huckleberry`)
//! are read by the exporter itself. The logs are unchanged.

use std::sync::Mutex;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The exporting provider, kept to flush it when the process ends.
static PROVIDER: Mutex<Option<SdkTracerProvider>> = Mutex::new(None);

fn endpoint_set() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// Installs the logs (as `settings` say) plus the OTLP export when an endpoint is set.
/// Answers whether it did: not without an endpoint, nor when the exporter cannot be built
/// (which is said on stderr).
pub(super) fn try_init(settings: &super::LogSettings, colour: bool) -> bool {
    if !endpoint_set() {
        return false;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("huckleberry: OTLP export is off: {e}");
            return false;
        }
    };
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("huckleberry");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("huckleberry");
    if let Ok(mut kept) = PROVIDER.lock() {
        *kept = Some(provider);
    }
    let json = settings.json;
    // One of the two, each built for its own place in the stack.
    let json_fmt = json.then(|| tracing_subscriber::fmt::layer().with_ansi(colour).json());
    let text_fmt = (!json).then(|| tracing_subscriber::fmt::layer().with_ansi(colour));
    let result = tracing_subscriber::registry()
        .with(settings.filter())
        .with(json_fmt)
        .with(text_fmt)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    drop(result);
    true
}

/// Exports what is left and stops the exporter.
pub(super) fn shutdown() {
    let provider = PROVIDER.lock().ok().and_then(|mut kept| kept.take());
    if let Some(provider) = provider
        && let Err(e) = provider.shutdown()
    {
        eprintln!("huckleberry: OTLP export could not flush its last spans: {e}");
    }
}
