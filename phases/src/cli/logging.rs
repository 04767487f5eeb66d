//! Logging for the phase binaries (checklist G-13): the library emits `tracing` events; this subscriber
//! prints them the way the reference's logger does — plain lines for info/debug, `Warning: ` and
//! `ERROR: ` prefixes for warnings and errors — filtered by `-log-level`/`CNB_LOG_LEVEL`.
//!
//! Only the lifecycle's own events are shown (targets `cnb_lifecycle…` and `cnb_spec…`): the HTTP, TLS and
//! registry crates' own `tracing` events (hyper, h2, rustls, reqwest, oci-client, …) are dropped, as the
//! reference's debug output holds the lifecycle's messages only, unless `RUST_LOG` asks for them
//! (`RUST_LOG=hyper_util=debug,h2=trace`; a bare level such as `RUST_LOG=debug` applies to every other
//! crate). `-log-level` keeps governing the lifecycle's own events.
//!
//! Streams: info and debug go to stdout, warnings and errors to stderr, as the platform spec asks
//! (the reference writes everything to stdout; platforms show both streams). Colour only when the
//! stream is a terminal and `-no-color`/`CNB_NO_COLOR` is not set.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

use super::inputs::LogLevel;

/// The prefix of warning lines.
pub const WARN_PREFIX: &str = "Warning: ";
/// The prefix of error lines.
pub const ERROR_PREFIX: &str = "ERROR: ";

/// Formats one event as `[prefix]message key=value...`.
#[derive(Debug, Clone, Copy)]
struct LineFormat {
    color: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        let prefix = match level {
            Level::WARN => Some((WARN_PREFIX, "\x1b[33;1m")),
            Level::ERROR => Some((ERROR_PREFIX, "\x1b[31;1m")),
            _ => None,
        };
        if let Some((text, style)) = prefix {
            if self.color {
                write!(writer, "{style}{text}\x1b[0m")?;
            } else {
                write!(writer, "{text}")?;
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn tracing_level(level: LogLevel) -> Level {
    match level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
        LogLevel::Error => Level::ERROR,
    }
}

/// The crates whose events are the lifecycle's own (targets are module paths).
pub const OWN_TARGETS: [&str; 2] = ["cnb_lifecycle", "cnb_spec"];

/// The variable that turns dependency crates' events back on (`target=level,...` or a bare level).
pub const RUST_LOG_ENV: &str = "RUST_LOG";

/// The per-target filter: the lifecycle's own crates at `level`, everything else off unless `rust_log`
/// (the value of `RUST_LOG`) names it. An unparsable `RUST_LOG` is ignored.
fn targets(level: LogLevel, rust_log: Option<&str>) -> Targets {
    let mut t = rust_log
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::OFF));
    if t.default_level().is_none() {
        t = t.with_default(LevelFilter::OFF);
    }
    for own in OWN_TARGETS {
        t = t.with_target(own, tracing_level(level));
    }
    t
}

/// Installs the global subscriber. Safe to call more than once (later calls are ignored), so the creator
/// and tests can call it freely.
pub fn init(level: LogLevel, no_color: bool) {
    let color = !no_color && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let writer = std::io::stderr
        .with_max_level(Level::WARN)
        .or_else(std::io::stdout);
    let rust_log = std::env::var(RUST_LOG_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_writer(writer)
        .event_format(LineFormat { color })
        .finish()
        .with(targets(level, rust_log.as_deref()));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(level: LogLevel, color: bool, f: impl FnOnce()) -> (String, String) {
        capture_full(level, color, None, f)
    }

    fn capture_with(level: LogLevel, rust_log: Option<&str>, f: impl FnOnce()) -> (String, String) {
        capture_full(level, false, rust_log, f)
    }

    fn capture_full(
        level: LogLevel,
        color: bool,
        rust_log: Option<&str>,
        f: impl FnOnce(),
    ) -> (String, String) {
        let (out, err) = (Buf::default(), Buf::default());
        let (o, e) = (out.clone(), err.clone());
        let writer = (move || e.clone())
            .with_max_level(Level::WARN)
            .or_else(move || o.clone());
        let sub = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_writer(writer)
            .event_format(LineFormat { color })
            .finish()
            .with(targets(level, rust_log));
        tracing::subscriber::with_default(sub, f);
        let s = |b: Buf| String::from_utf8(b.0.lock().unwrap().clone()).unwrap();
        (s(out), s(err))
    }

    #[test]
    fn prefixes_streams_and_levels() {
        // G-13
        let (out, err) = capture(LogLevel::Info, false, || {
            tracing::debug!("hidden");
            tracing::info!("===> DETECTING");
            tracing::warn!("No cached data will be used, no cache specified.");
            tracing::error!("failed to detect: boom");
        });
        assert_eq!(out, "===> DETECTING\n");
        assert_eq!(
            err,
            "Warning: No cached data will be used, no cache specified.\nERROR: failed to detect: boom\n"
        );
        let (out, err) = capture(LogLevel::Debug, false, || tracing::debug!("shown"));
        assert_eq!((out.as_str(), err.as_str()), ("shown\n", ""));
        let (out, err) = capture(LogLevel::Error, false, || {
            tracing::info!("x");
            tracing::warn!("y");
        });
        assert_eq!((out.as_str(), err.as_str()), ("", ""));
        let (_, err) = capture(LogLevel::Info, true, || tracing::warn!("w"));
        assert_eq!(err, "\x1b[33;1mWarning: \x1b[0mw\n");
    }

    #[test]
    fn dependency_events_are_dropped_unless_rust_log_asks() {
        let events = || {
            tracing::debug!("Starting analyzer...");
            tracing::debug!(target: "hyper_util::client::legacy::pool", "pooling idle connection");
            tracing::debug!(target: "h2::codec", "send frame");
            tracing::debug!(target: "rustls::client", "handshake");
            tracing::debug!(target: "oci_client::client", "token");
        };
        let (out, _) = capture_with(LogLevel::Debug, None, events);
        assert_eq!(out, "Starting analyzer...\n");
        let (out, _) = capture_with(LogLevel::Debug, Some("hyper_util=debug"), events);
        assert_eq!(out, "Starting analyzer...\npooling idle connection\n");
        let (out, _) = capture_with(LogLevel::Info, Some("debug"), events);
        assert_eq!(
            out,
            "pooling idle connection\nsend frame\nhandshake\ntoken\n"
        );
        let (out, _) = capture_with(LogLevel::Debug, Some("not a filter=="), events);
        assert_eq!(out, "Starting analyzer...\n");
    }
}
