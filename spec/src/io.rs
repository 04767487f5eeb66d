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

/// Encodes a value as TOML, byte for byte as the reference's encoder (BurntSushi/toml) encodes the
/// equivalent Go value: see [`crate::toml_encoder`]. The one TOML writer of the project.
pub fn to_toml<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<String, FileError> {
    crate::toml_encoder::to_string(value).map_err(|e| FileError {
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

/// Encodes a value as compact JSON, escaped as Go's `json.Marshal` (and `json.Encoder`) escape it, which
/// the reference's labels and JSON files go through: see [`go_json_escape`].
pub fn to_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<String, FileError> {
    serde_json::to_string(value)
        .map(go_json_escape)
        .map_err(|e| FileError {
            path: path.to_path_buf(),
            kind: FileErrorKind::Encode(e.to_string()),
        })
}

/// Go's JSON string escaping on top of serde_json's output: `<`, `>`, `&` become `\u003c`, `\u003e`,
/// `\u0026` (HTML-safe, Go's default) and U+2028/U+2029 become `\u2028`/`\u2029`. These characters
/// can only occur inside JSON strings, so replacing them in the encoded text is exact.
pub fn go_json_escape(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Mode of every file a phase writes for another phase, a tool or an image: what the reference's
/// `os.Create` gives under the usual umask 022, set explicitly so that a stricter umask of the process
/// cannot make a file unreadable to the build user (platform spec: later phases run as the build user).
pub const FILE_MODE: u32 = 0o644;

/// Mode of every directory a phase creates for another phase ([`FILE_MODE`]'s counterpart).
pub const DIR_MODE: u32 = 0o755;

/// A file written under a temporary name in its destination's directory and renamed over the
/// destination by [`AtomicFile::commit`], with an explicit mode. Dropped without a commit, the temporary
/// file is removed and the destination is untouched. The one atomic writer of the project: TOML and
/// JSON files, layout blobs and `index.json`, cache entries and reports all go through it.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<fs::File>,
    mode: u32,
    sync: bool,
}

impl AtomicFile {
    /// Starts writing `dest` with `mode` (e.g. [`FILE_MODE`]); missing parent directories are created
    /// with [`DIR_MODE`].
    pub fn create(dest: &Path, mode: u32) -> io::Result<AtomicFile> {
        let dir = parent_dir(dest);
        create_dirs(&dir)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_string());
        loop {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
            match open_new(&tmp) {
                Ok(file) => {
                    return Ok(AtomicFile {
                        tmp,
                        dest: dest.to_path_buf(),
                        file: Some(file),
                        mode,
                        sync: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Also fsyncs the file before the rename and the directory after it (for files whose loss after a
    /// crash would leave a store inconsistent: layout blobs and `index.json`, cache metadata).
    pub fn durable(mut self) -> AtomicFile {
        self.sync = true;
        self
    }

    /// The temporary path being written.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Like [`AtomicFile::commit`] to another destination in the same directory (for content-addressed
    /// files whose name is known only once written, e.g. blobs named by their digest).
    pub fn commit_as(mut self, dest: &Path) -> io::Result<()> {
        self.dest = dest.to_path_buf();
        self.commit()
    }

    /// Sets the mode, optionally fsyncs, and renames the file over its destination.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("atomic file already committed"))?;
        let result = (|| {
            set_mode(&file, self.mode)?;
            if self.sync {
                file.sync_all()?;
            }
            drop(file);
            fs::rename(&self.tmp, &self.dest)?;
            if self.sync {
                if let Ok(d) = fs::File::open(parent_dir(&self.dest)) {
                    let _ = d.sync_all();
                }
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        // Renamed (or removed): nothing left for Drop to clean.
        self.tmp = PathBuf::new();
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("atomic file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `mkdir -p` where every directory it creates gets [`DIR_MODE`] whatever the umask; existing
/// directories are left as they are.
pub fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => set_dir_mode(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn set_dir_mode(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
}

#[cfg(not(unix))]
fn set_dir_mode(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` atomically with [`FILE_MODE`]: see [`write_atomic_mode`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_atomic_mode(path, bytes, FILE_MODE)
}

/// Writes `bytes` to `path` atomically with `mode`: parent directories are created ([`DIR_MODE`]), the
/// content goes to a temporary file in the same directory that is renamed over `path`. On failure the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let mut f =
        AtomicFile::create(path, mode).map_err(|e| FileError::io(parent_dir(path), "create", e))?;
    f.write_all(bytes)
        .map_err(|e| FileError::io(path, "write", e))?;
    f.commit().map_err(|e| FileError::io(path, "rename", e))
}

#[cfg(unix)]
fn open_new(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
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

    #[cfg(unix)]
    #[test]
    fn atomic_files_get_explicit_modes_and_vanish_uncommitted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/report.toml");
        write_atomic(&p, b"x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&p), FILE_MODE);
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE);
        assert_eq!(mode(&dir.path().join("a/b")), DIR_MODE);
        write_atomic_mode(&p, b"y", 0o755).unwrap();
        assert_eq!(mode(&p), 0o755);

        let mut f = AtomicFile::create(&dir.path().join("a/b/blob"), FILE_MODE).unwrap();
        f.write_all(b"half").unwrap();
        let tmp = f.temp_path().to_path_buf();
        assert!(tmp.exists());
        drop(f);
        assert!(!tmp.exists());
        assert!(!dir.path().join("a/b/blob").exists());

        let mut f = AtomicFile::create(&dir.path().join("a/b/incoming"), FILE_MODE).unwrap();
        f.write_all(b"named later").unwrap();
        f.durable().commit_as(&dir.path().join("a/b/sha")).unwrap();
        assert_eq!(
            fs::read(dir.path().join("a/b/sha")).unwrap(),
            b"named later"
        );
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(names.len(), 2);
    }
}
