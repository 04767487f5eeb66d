//! Deterministic layer tars for the exporter's [`LayerContent`]s (checklist IM-10, IM-12, IM-13,
//! T-01, T-03), streamed through sha256 (diffID), optionally gzip and a second sha256 (digest).
//!
//! USTAR headers as Go's `archive/tar` writes them: absolute names, mtime 1980-01-01T00:00:01Z, empty
//! uname/gname, no record padding after the two zero blocks; names longer than USTAR allows use a PAX
//! `path` record.
//!
//! TODO(integration): replace with the `archive` module's `LayerBuilder` once it is in main (it also
//! matches Go's bytes exactly and builds layers in parallel).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::plan::LayerContent;

/// Normalised entry time (T-03).
pub const NORMALIZED_MTIME: u64 = 315_532_801;

/// Media type of a gzip-compressed OCI layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Owner of the layer content (`CNB_USER_ID`/`CNB_GROUP_ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
}

#[derive(Debug)]
enum Kind {
    Dir,
    File(PathBuf, u64),
    Symlink(String),
}

#[derive(Debug)]
struct Entry {
    name: String,
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn io_at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn entry_for(host: &Path, name: String, owner: Option<Owner>) -> io::Result<Option<Entry>> {
    let md = fs::symlink_metadata(host).map_err(|e| io_at(host, e))?;
    let ft = md.file_type();
    let (uid, gid) = match owner {
        Some(o) => (o.uid, o.gid),
        None => (md.uid(), md.gid()),
    };
    let mode = md.permissions().mode() & 0o7777;
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File(host.to_path_buf(), md.len())
    } else if ft.is_symlink() {
        let t = fs::read_link(host).map_err(|e| io_at(host, e))?;
        Kind::Symlink(t.to_string_lossy().into_owned())
    } else {
        // Sockets, fifos and devices are skipped (IM-10).
        return Ok(None);
    };
    Ok(Some(Entry {
        name,
        kind,
        mode,
        uid,
        gid,
    }))
}

fn image_name(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Ancestors of `dir` (root excluded), outermost first, with their real owners (IM-10).
fn ancestors(dir: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
    let mut anc: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .filter(|a| a.parent().is_some())
        .collect();
    anc.reverse();
    for a in anc {
        if let Some(e) = entry_for(a, image_name(a), None)? {
            out.push(e);
        }
    }
    Ok(())
}

fn walk(dir: &Path, owner: Owner, out: &mut Vec<Entry>) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| io_at(dir, e))?
        .map(|r| r.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| io_at(dir, e))?;
    names.sort();
    for n in names {
        let p = dir.join(&n);
        if let Some(e) = entry_for(&p, image_name(&p), Some(owner))? {
            let is_dir = matches!(e.kind, Kind::Dir);
            out.push(e);
            if is_dir {
                walk(&p, owner, out)?;
            }
        }
    }
    Ok(())
}

fn entries(content: &LayerContent, owner: Owner) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let root_dir = |name: &str| Entry {
        name: name.into(),
        kind: Kind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
    };
    match content {
        LayerContent::Dir(dir) => {
            ancestors(dir, &mut out)?;
            if let Some(e) = entry_for(dir, image_name(dir), Some(owner))? {
                out.push(e);
            }
            walk(dir, owner, &mut out)?;
        }
        LayerContent::App { app_dir, entries } => {
            ancestors(app_dir, &mut out)?;
            if let Some(e) = entry_for(app_dir, image_name(app_dir), Some(owner))? {
                out.push(e);
            }
            let mut seen = std::collections::BTreeSet::new();
            for rel in entries {
                // Intermediate dirs of matched entries, then the entry (SL-04).
                let mut parents: Vec<&Path> = rel
                    .ancestors()
                    .skip(1)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect();
                parents.reverse();
                for p in parents.into_iter().chain(std::iter::once(rel.as_path())) {
                    if !seen.insert(p.to_path_buf()) {
                        continue;
                    }
                    let host = app_dir.join(p);
                    if let Some(e) = entry_for(&host, image_name(&host), Some(owner))? {
                        out.push(e);
                    }
                }
            }
        }
        LayerContent::Launcher(path) => {
            let md = fs::metadata(path).map_err(|e| io_at(path, e))?;
            out.push(root_dir("/cnb"));
            out.push(root_dir("/cnb/lifecycle"));
            out.push(Entry {
                name: "/cnb/lifecycle/launcher".into(),
                kind: Kind::File(path.clone(), md.len()),
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
        }
        LayerContent::ProcessTypes(types) => {
            out.push(root_dir("/cnb"));
            out.push(root_dir("/cnb/process"));
            for t in types {
                out.push(Entry {
                    name: format!("/cnb/process/{t}"),
                    kind: Kind::Symlink("/cnb/lifecycle/launcher".into()),
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                });
            }
        }
        LayerContent::Previous(_) => {}
    }
    Ok(out)
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    let b = s.as_bytes();
    let n = field.len() - 1;
    let start = b.len().saturating_sub(n);
    field[..n].copy_from_slice(&b[start..]);
    field[n] = 0;
}

fn split_ustar(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    // Split at a '/' so that prefix ≤ 155 and name ≤ 100.
    let bytes = name.as_bytes();
    for (i, b) in bytes.iter().enumerate().rev() {
        if *b == b'/' && i <= 155 && name.len() - i - 1 <= 100 && i > 0 {
            return Some((&name[..i], &name[i + 1..]));
        }
    }
    None
}

fn header(
    name: &str,
    typeflag: u8,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    link: &str,
) -> [u8; 512] {
    let mut h = [0u8; 512];
    let (prefix, short) = split_ustar(name).unwrap_or(("", ""));
    h[..short.len().min(100)].copy_from_slice(&short.as_bytes()[..short.len().min(100)]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], u64::from(uid));
    octal(&mut h[116..124], u64::from(gid));
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], NORMALIZED_MTIME);
    h[156] = typeflag;
    let l = link.as_bytes();
    h[157..157 + l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    if typeflag != b'x' {
        octal(&mut h[329..337], 0);
        octal(&mut h[337..345], 0);
    }
    let p = prefix.as_bytes();
    h[345..345 + p.len().min(155)].copy_from_slice(&p[..p.len().min(155)]);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn pad(w: &mut impl Write, size: u64) -> io::Result<()> {
    let rem = (size % 512) as usize;
    if rem != 0 {
        w.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

fn pax_record(key: &str, value: &str) -> String {
    // "<len> <key>=<value>\n" where len counts itself.
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    loop {
        let total = len.to_string().len() + body.len();
        if total == len {
            return format!("{len}{body}");
        }
        len = total;
    }
}

fn write_entry(w: &mut impl Write, e: &Entry) -> io::Result<()> {
    let (typeflag, size, link) = match &e.kind {
        Kind::Dir => (b'5', 0, ""),
        Kind::File(_, size) => (b'0', *size, ""),
        Kind::Symlink(t) => (b'2', 0, t.as_str()),
    };
    if split_ustar(&e.name).is_none() || link.len() > 100 {
        let mut rec = pax_record("path", &e.name);
        if link.len() > 100 {
            rec.push_str(&pax_record("linkpath", link));
        }
        let pax_name = "PaxHeaders.0/pax".to_string();
        w.write_all(&header(&pax_name, b'x', rec.len() as u64, 0o644, 0, 0, ""))?;
        w.write_all(rec.as_bytes())?;
        pad(w, rec.len() as u64)?;
    }
    let short: String = e.name.chars().take(100).collect();
    let name = if split_ustar(&e.name).is_some() {
        e.name.as_str()
    } else {
        short.as_str()
    };
    w.write_all(&header(name, typeflag, size, e.mode, e.uid, e.gid, link))?;
    if let Kind::File(path, size) = &e.kind {
        let f = File::open(path).map_err(|er| io_at(path, er))?;
        let copied = io::copy(&mut f.take(*size), w)?;
        if copied != *size {
            return Err(io::Error::other(format!(
                "file {} changed while being archived",
                path.display()
            )));
        }
        pad(w, *size)?;
    }
    Ok(())
}

/// A writer that hashes and counts what passes through.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// `sha256:<hex>`, bytes written, and the inner writer.
    pub fn finish(self) -> (String, u64, W) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the tar of `content` to `w`.
pub fn write_tar(content: &LayerContent, owner: Owner, w: &mut impl Write) -> io::Result<()> {
    for e in entries(content, owner)? {
        write_entry(w, &e)?;
    }
    w.write_all(&[0u8; 1024])
}

/// The diffID of `content` without compressing (hash-only mode). With `tee`, the tar is also written
/// to that file (for the cache).
pub fn diff_id(content: &LayerContent, owner: Owner, tee: Option<&Path>) -> io::Result<String> {
    match tee {
        None => {
            let mut h = HashWriter::new(io::sink());
            write_tar(content, owner, &mut h)?;
            Ok(h.finish().0)
        }
        Some(path) => {
            let f = File::create(path).map_err(|e| io_at(path, e))?;
            let mut h = HashWriter::new(BufWriter::with_capacity(1 << 20, f));
            write_tar(content, owner, &mut h)?;
            let (d, _, mut w) = h.finish();
            w.flush()?;
            Ok(d)
        }
    }
}

/// A compressed layer written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: String,
    /// sha256 of the blob.
    pub digest: String,
    /// Blob size.
    pub size: u64,
    /// Blob file.
    pub path: PathBuf,
}

/// Tars, hashes and gzips `content` into `blob_path` in one pass; with `tee`, the uncompressed tar
/// is also written there.
pub fn build_gzip(
    content: &LayerContent,
    owner: Owner,
    blob_path: &Path,
    tee: Option<&Path>,
) -> io::Result<BuiltLayer> {
    let f = File::create(blob_path).map_err(|e| io_at(blob_path, e))?;
    let outer = HashWriter::new(BufWriter::with_capacity(1 << 20, f));
    let gz = GzEncoder::new(outer, flate2::Compression::fast());
    let tee_file = match tee {
        Some(p) => Some(BufWriter::with_capacity(
            1 << 20,
            File::create(p).map_err(|e| io_at(p, e))?,
        )),
        None => None,
    };
    let mut inner = HashWriter::new(Tee { a: gz, b: tee_file });
    write_tar(content, owner, &mut inner)?;
    let (diff_id, _, tee) = inner.finish();
    if let Some(mut t) = tee.b {
        t.flush()?;
    }
    let outer = tee.a.finish()?;
    let (digest, size, mut w) = outer.finish();
    w.flush()?;
    Ok(BuiltLayer {
        diff_id,
        digest,
        size,
        path: blob_path.to_path_buf(),
    })
}

struct Tee<A, B> {
    a: A,
    b: Option<B>,
}

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.a.write_all(buf)?;
        if let Some(b) = &mut self.b {
            b.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.a.flush()?;
        if let Some(b) = &mut self.b {
            b.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OWNER: Owner = Owner {
        uid: 1000,
        gid: 1000,
    };

    fn list(tar: &[u8]) -> Vec<(String, u32, u64, u64)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn im10_dir_layer_is_deterministic_and_absolute() {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("layers/bp/layer");
        fs::create_dir_all(l.join("bin")).unwrap();
        fs::write(l.join("bin/tool"), b"x").unwrap();
        fs::write(l.join("a"), vec![7u8; 700]).unwrap();
        std::os::unix::fs::symlink("bin/tool", l.join("link")).unwrap();
        let c = LayerContent::Dir(l.clone());
        let mut buf = Vec::new();
        write_tar(&c, OWNER, &mut buf).unwrap();
        assert_eq!(buf.len() % 512, 0);
        assert!(buf[buf.len() - 1024..].iter().all(|b| *b == 0));
        let names = list(&buf);
        let lname = l.display().to_string();
        let last: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert!(last.contains(&lname.as_str()));
        assert!(last.contains(&format!("{lname}/bin/tool").as_str()));
        let tool = names.iter().find(|n| n.0.ends_with("bin/tool")).unwrap();
        assert_eq!((tool.2, tool.3), (1000, NORMALIZED_MTIME));
        // Same tree → same diffID; built blob agrees.
        let d1 = diff_id(&c, OWNER, None).unwrap();
        let blob = t.path().join("blob");
        let tee = t.path().join("tee.tar");
        let built = build_gzip(&c, OWNER, &blob, Some(&tee)).unwrap();
        assert_eq!(built.diff_id, d1);
        assert_eq!(crate::cache::sha256_file(&tee).unwrap(), d1);
        assert_eq!(crate::cache::sha256_file(&blob).unwrap(), built.digest);
        assert_eq!(fs::metadata(&blob).unwrap().len(), built.size);
    }

    #[test]
    fn im12_im13_launcher_and_process_types() {
        let t = tempfile::tempdir().unwrap();
        let launcher = t.path().join("launcher");
        fs::write(&launcher, b"#!bin").unwrap();
        let mut buf = Vec::new();
        write_tar(&LayerContent::Launcher(launcher), OWNER, &mut buf).unwrap();
        let names = list(&buf);
        assert_eq!(names[2].0, "/cnb/lifecycle/launcher");
        assert_eq!((names[2].1, names[2].2), (0o755, 0));
        let mut buf = Vec::new();
        write_tar(
            &LayerContent::ProcessTypes(vec!["web".into()]),
            OWNER,
            &mut buf,
        )
        .unwrap();
        let mut a = tar::Archive::new(buf.as_slice());
        let links: Vec<_> = a
            .entries()
            .unwrap()
            .filter_map(|e| {
                e.unwrap()
                    .link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
            })
            .collect();
        assert_eq!(links, vec!["/cnb/lifecycle/launcher"]);
    }

    #[test]
    fn long_names_use_prefix_or_pax() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("d").join("x".repeat(90)).join("y".repeat(90));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("z".repeat(120)), b"1").unwrap();
        let mut buf = Vec::new();
        write_tar(&LayerContent::Dir(t.path().join("d")), OWNER, &mut buf).unwrap();
        let names = list(&buf);
        assert!(names.iter().any(|n| n.0.ends_with(&"z".repeat(120))));
    }
}
