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
