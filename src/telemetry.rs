//! Logging: one subscriber, filtered by `RUST_LOG` (default `info`). JSON lines in production
//! (where a log collector parses them), readable text in development: `LOG_FORMAT=json` or
//! `LOG_FORMAT=text` decides, and without it the Inngest mode does (`INNGEST_DEV` set: text).
//! Colours only on a terminal (and never with `NO_COLOR`), so files and log collectors get
//! plain text. With the cargo feature `otlp` and `OTEL_EXPORTER_OTLP_ENDPOINT` set, the spans
//! are also exported over OTLP (`telemetry/otlp.rs`).

#[cfg(feature = "otlp")]
mod otlp;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// What logging reads from the settings: `RUST_LOG`, `LOG_FORMAT` and `INNGEST_DEV`, from
/// the process environment or, in `huckleberry dev`, with `.env` merged in.
pub struct LogSettings {
    filter: Option<String>,
    json: bool,
}

impl LogSettings {
    /// The settings as `var` reads them.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            filter: var("RUST_LOG"),
            json: json_logs(&var),
        }
    }

    /// The settings in the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// `RUST_LOG`, else `info` (also when `RUST_LOG` does not parse).
    fn filter(&self) -> EnvFilter {
        self.filter
            .as_deref()
            .and_then(|directives| EnvFilter::try_new(directives).ok())
            .unwrap_or_else(|| EnvFilter::new("info"))
    }
}

/// Installs the global subscriber (once; later calls are ignored, as in tests).
pub fn init(settings: &LogSettings) {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    #[cfg(feature = "otlp")]
    if otlp::try_init(settings, colour) {
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(settings.filter())
        .with_ansi(colour);
    let result = if settings.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    drop(result);
}

/// Sends the spans not exported yet (OTLP export only; otherwise nothing to do). Call once,
/// as the process ends.
pub fn shutdown() {
    #[cfg(feature = "otlp")]
    otlp::shutdown();
}

/// The subscriber of `huckleberry demo`, whose story goes to stdout: text logs on stderr,
/// warnings and errors only unless `RUST_LOG` says otherwise.
pub fn init_for_demo() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    drop(
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(colour)
            .with_writer(std::io::stderr)
            .try_init(),
    );
}

/// Whether logs are JSON, from `LOG_FORMAT` or else from `INNGEST_DEV` (read through `var`).
pub fn json_logs(var: impl Fn(&str) -> Option<String>) -> bool {
    match var("LOG_FORMAT")
        .map(|f| f.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("json") => true,
        Some("text") => false,
        // Dev mode as the Inngest SDK reads it: set, and neither `0` nor `false`.
        _ => !var("INNGEST_DEV").is_some_and(|d| !matches!(d.trim(), "" | "0" | "false")),
    }
}

#[cfg(test)]
mod tests {
    use super::json_logs;

    fn with(vars: &[(&str, &str)]) -> bool {
        json_logs(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn production_logs_json_and_development_logs_text_unless_told() {
        assert!(with(&[]));
        assert!(with(&[("INNGEST_DEV", "0")]));
        assert!(!with(&[("INNGEST_DEV", "1")]));
        assert!(!with(&[("INNGEST_DEV", "http://localhost:8288")]));
        assert!(with(&[("INNGEST_DEV", "1"), ("LOG_FORMAT", "json")]));
        assert!(!with(&[("LOG_FORMAT", "text")]));
    }
}
