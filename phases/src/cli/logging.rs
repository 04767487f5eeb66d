//! Logging for the phase binaries (checklist G-13): the library emits `tracing` events; this subscriber
//! prints them the way the reference's logger does — plain lines for info/debug, `Warning: ` and
//! `ERROR: ` prefixes for warnings and errors — filtered by `-log-level`/`CNB_LOG_LEVEL`.
//!
//! Streams: info and debug go to stdout, warnings and errors to stderr, as the platform spec asks
//! (the reference writes everything to stdout; platforms show both streams). Colour only when the
//! stream is a terminal and `-no-color`/`CNB_NO_COLOR` is not set.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
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

/// Installs the global subscriber. Safe to call more than once (later calls are ignored), so the creator
/// and tests can call it freely.
pub fn init(level: LogLevel, no_color: bool) {
    let color = !no_color && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let writer = std::io::stderr
        .with_max_level(Level::WARN)
        .or_else(std::io::stdout);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing_level(level))
        .with_writer(writer)
        .event_format(LineFormat { color })
        .finish();
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
        let (out, err) = (Buf::default(), Buf::default());
        let (o, e) = (out.clone(), err.clone());
        let writer = (move || e.clone())
            .with_max_level(Level::WARN)
            .or_else(move || o.clone());
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing_level(level))
            .with_writer(writer)
            .event_format(LineFormat { color })
            .finish();
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
}
