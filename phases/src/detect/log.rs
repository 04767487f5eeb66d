//! A buffer of detector log entries (checklist DT-09).
//!
//! Detection logs a lot at debug level. When detection fails, those entries are what explains why, so
//! the detector buffers everything and, at the end, re-emits debug entries at info level if detection
//! failed; otherwise each entry keeps its level.

use tracing::Level;

/// Buffered log entries, in order.
#[derive(Debug, Default, Clone)]
pub struct LogBuf {
    entries: Vec<(Level, String)>,
}

impl LogBuf {
    /// Records a debug entry.
    pub fn debug(&mut self, msg: impl Into<String>) {
        self.entries.push((Level::DEBUG, msg.into()));
    }

    /// Records an info entry.
    pub fn info(&mut self, msg: impl Into<String>) {
        self.entries.push((Level::INFO, msg.into()));
    }

    /// Records a warning.
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.entries.push((Level::WARN, msg.into()));
    }

    /// The entries recorded so far.
    pub fn entries(&self) -> &[(Level, String)] {
        &self.entries
    }

    /// Emits every entry through `tracing`; when `failed`, debug entries are promoted to info.
    pub fn flush(&mut self, failed: bool) {
        for (level, msg) in self.entries.drain(..) {
            let level = if failed && level == Level::DEBUG {
                Level::INFO
            } else {
                level
            };
            match level {
                Level::DEBUG => tracing::debug!("{msg}"),
                Level::INFO => tracing::info!("{msg}"),
                Level::WARN => tracing::warn!("{msg}"),
                Level::ERROR => tracing::error!("{msg}"),
                _ => tracing::trace!("{msg}"),
            }
        }
    }
}
