//! Shared read/write helpers for the specification's TOML and JSON files.
//!
//! Every error names the file ([`FileError::path`]) and, for syntax and type errors, the TOML or JSON
//! location (line and column). Writes are atomic: the content goes to a temporary file in the target
//! directory that is then renamed over the target, so readers never see a half-written file.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The path recorded in errors from `from_toml_str`-style helpers that parse text, not a file.
pub const STRING_SOURCE: &str = "<string>";

/// Reading, decoding, encoding or writing one specification file failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind_display}", kind_display = ErrorDisplay(self))]
pub struct FileError {
    /// The file the error is about ([`STRING_SOURCE`] when parsing text).
    pub path: PathBuf,
    /// What went wrong.
    pub kind: FileErrorKind,
}

/// What went wrong with a file.
#[derive(Debug)]
pub enum FileErrorKind {
    /// An I/O operation failed (`op` is `open`, `write`, `rename`, ...).
    Io {
        /// The operation, as in Go's `*PathError` (`open <path>: no such file or directory`).
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The text is not valid TOML or JSON, or a value has the wrong type.
    Syntax {
        /// `"toml"` or `"json"`.
        format: &'static str,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// The decoder's message.
        message: String,
    },
    /// The value could not be encoded.
    Encode(String),
    /// The file decodes but breaks a rule of the specification.
    Invalid(String),
}

struct ErrorDisplay<'a>(&'a FileError);

impl fmt::Display for ErrorDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.0.path.display();
        match &self.0.kind {
            FileErrorKind::Io { op, source } => write!(f, "{op} {path}: {}", go_io_message(source)),
            FileErrorKind::Syntax {
                format,
                line,
                column,
                message,
            } => {
                write!(f, "{format}: ")?;
                match (line, column) {
                    (Some(l), Some(c)) => write!(f, "line {l}, column {c} of {path}: ")?,
                    (Some(l), None) => write!(f, "line {l} of {path}: ")?,
                    _ => write!(f, "{path}: ")?,
                }
                write!(f, "{message}")
            }
            FileErrorKind::Encode(m) => write!(f, "encode {path}: {m}"),
            FileErrorKind::Invalid(m) => write!(f, "{path}: {m}"),
        }
    }
}

/// Renders an I/O error the way Go does (`no such file or directory`, no `(os error N)` suffix).
fn go_io_message(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => s,
    }
}

impl FileError {
    /// Builds an I/O error for `path`.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        Self {
            path: path.into(),
            kind: FileErrorKind::Io { op, source },
        }
    }
    /// Builds a specification-rule violation for `path`.
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: FileErrorKind::Invalid(message.into()),
        }
    }
    /// Whether the file does not exist (many inputs are optional: callers treat this as "absent").
    pub fn is_not_found(&self) -> bool {
        matches!(&self.kind, FileErrorKind::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
    /// Replaces the recorded path (used when text read elsewhere is parsed).
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }
}

/// 1-based (line, column) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Converts a `toml` decode error for `text` into a [`FileError`] naming `path`.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> FileError {
    let (line, column) = match e.span() {
        Some(span) => {
            let (l, c) = line_col(text, span.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    FileError {
        path: path.to_path_buf(),
        kind: FileErrorKind::Syntax {
            format: "toml",
            line,
            column,
            message: e.message().trim_end().to_string(),
        },
    }
}

/// Reads a whole file, mapping errors to [`FileError`] (`open <path>: ...`).
pub fn read_text(path: &Path) -> Result<String, FileError> {
    fs::read_to_string(path).map_err(|e| FileError::io(path, "open", e))
}

/// Decodes TOML `text`; errors name `path` and the line/column.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, FileError> {
    toml::from_str(text).map_err(|e| toml_error(path, text, &e))
}

/// Reads and decodes a TOML file.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let text = read_text(path)?;
    parse_toml(path, &text)
}

/// Reads and decodes a TOML file; `Ok(None)` when it does not exist.
pub fn read_toml_optional<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, FileError> {
    match read_toml(path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Encodes a value as TOML (tables of arrays as `[[name]]` sections).
pub fn to_toml<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<String, FileError> {
    toml::to_string(value).map_err(|e| FileError {
        path: path.to_path_buf(),
        kind: FileErrorKind::Encode(e.to_string()),
    })
}

/// Encodes a value as TOML and writes it atomically.
pub fn write_toml<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), FileError> {
    let text = to_toml(path, value)?;
    write_atomic(path, text.as_bytes())
}

/// Decodes JSON `text`; errors name `path` and the line/column.
pub fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, FileError> {
    serde_json::from_str(text).map_err(|e| FileError {
        path: path.to_path_buf(),
        kind: FileErrorKind::Syntax {
            format: "json",
            line: (e.line() > 0).then_some(e.line()),
            column: (e.column() > 0).then_some(e.column()),
            message: strip_json_location(&e.to_string(), e.line(), e.column()),
        },
    })
}

/// serde_json appends " at line L column C" to its messages; the location is reported separately.
fn strip_json_location(msg: &str, line: usize, column: usize) -> String {
    let suffix = format!(" at line {line} column {column}");
    msg.strip_suffix(&suffix).unwrap_or(msg).to_string()
}

/// Encodes a value as compact JSON.
pub fn to_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<String, FileError> {
    serde_json::to_string(value).map_err(|e| FileError {
        path: path.to_path_buf(),
        kind: FileErrorKind::Encode(e.to_string()),
    })
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: parent directories are created, the content is written to a
/// temporary file in the same directory (mode 0666 minus umask, like Go's `os.Create`) and renamed over
/// `path`. On failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| FileError::io(&dir, "mkdir", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let (tmp, mut file) = loop {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match open_new(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(FileError::io(&tmp, "open", e)),
        }
    };
    let result = file
        .write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|e| FileError::io(path, "write", e))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| FileError::io(path, "rename", e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn open_new(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Implements `read`, `read_optional`, `write`, `from_toml_str` and `to_toml_string` for a TOML file type
/// whose encoding does not depend on an API version.
macro_rules! toml_file {
    ($ty:ty, $what:literal) => {
        impl $ty {
            #[doc = concat!("Reads ", $what, " from `path`.")]
            pub fn read(path: impl AsRef<std::path::Path>) -> Result<Self, $crate::io::FileError> {
                $crate::io::read_toml(path.as_ref())
            }
            #[doc = concat!("Reads ", $what, " from `path`; `Ok(None)` when the file does not exist.")]
            pub fn read_optional(
                path: impl AsRef<std::path::Path>,
            ) -> Result<Option<Self>, $crate::io::FileError> {
                $crate::io::read_toml_optional(path.as_ref())
            }
            #[doc = concat!("Writes ", $what, " to `path` atomically (temp file + rename).")]
            pub fn write(&self, path: impl AsRef<std::path::Path>) -> Result<(), $crate::io::FileError> {
                $crate::io::write_toml(path.as_ref(), self)
            }
            #[doc = concat!("Decodes ", $what, " from TOML text.")]
            pub fn from_toml_str(text: &str) -> Result<Self, $crate::io::FileError> {
                $crate::io::parse_toml(std::path::Path::new($crate::io::STRING_SOURCE), text)
            }
            #[doc = concat!("Encodes ", $what, " as TOML text.")]
            pub fn to_toml_string(&self) -> Result<String, $crate::io::FileError> {
                $crate::io::to_toml(std::path::Path::new($crate::io::STRING_SOURCE), self)
            }
        }
    };
}
pub(crate) use toml_file;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct T {
        a: String,
    }

    #[test]
    fn missing_file_reads_like_go() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("group.toml");
        let e = read_toml::<T>(&p).unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            format!("open {}: no such file or directory", p.display())
        );
        assert!(read_toml_optional::<T>(&p).unwrap().is_none());
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let p = Path::new("/layers/group.toml");
        let e = parse_toml::<T>(p, "a = \"x\"\nb c\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("toml: line 2, column 3 of /layers/group.toml: "),
            "{s}"
        );
    }

    #[test]
    fn write_is_atomic_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.toml");
        write_toml(&p, &T { a: "1".into() }).unwrap();
        write_toml(&p, &T { a: "2".into() }).unwrap();
        assert_eq!(read_toml::<T>(&p).unwrap(), T { a: "2".into() });
        let names: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn json_errors_report_location_once() {
        let e = parse_json::<T>(Path::new("label"), "{\"a\": 1}").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("json: line 1, column "), "{s}");
        assert_eq!(s.matches("line").count(), 1, "{s}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
