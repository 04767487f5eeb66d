//! [`LayerWriter`]: the same one-pass pipeline as [`LayerBuilder::write`](super::LayerBuilder::write) for a
//! tar stream produced elsewhere (an existing tar file, a rewritten extension layer): whatever is written
//! to it is hashed (diffID), compressed, hashed again (digest) and sent to a [`Sink`].

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::pipeline::{temp_in, Pipeline, TAR_BUFFER};
use super::{ArchiveError, Compression, LayerInfo, Sink, MEDIA_TYPE_TAR};

enum Out {
    Temp(BufWriter<cnb_spec::io::AtomicFile>),
    Writer(Box<dyn Write + Send>),
    Discard,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Temp(w) => w.write(buf),
            Out::Writer(w) => w.write(buf),
            Out::Discard => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Temp(w) => w.flush(),
            Out::Writer(w) => w.flush(),
            Out::Discard => Ok(()),
        }
    }
}

/// Where a finished blob file is renamed to.
enum Dest {
    File(PathBuf),
    BlobDir(PathBuf),
    None,
}

/// A writer taking uncompressed tar bytes; [`finish`](LayerWriter::finish) returns the layer's diffID,
/// digest, sizes and media type exactly as [`LayerBuilder::write`](super::LayerBuilder::write) does for the
/// same bytes, compression and sink.
pub struct LayerWriter {
    pipe: BufWriter<Pipeline<Out>>,
    compression: Compression,
    dest: Dest,
    hash_only: bool,
    target: String,
}

impl LayerWriter {
    /// A writer compressing with `compression` into `sink` ([`Sink::HashOnly`]: only the diffID).
    pub fn new(compression: Compression, sink: Sink) -> Result<Self, ArchiveError> {
        let target = format!("{sink:?}");
        let werr = |source: io::Error| ArchiveError::Write {
            target: target.clone(),
            source,
        };
        let temp = |dir: &Path| -> Result<Out, ArchiveError> {
            Ok(Out::Temp(BufWriter::with_capacity(
                256 << 10,
                temp_in(dir).map_err(werr)?,
            )))
        };
        let (out, dest, hash_only) = match sink {
            Sink::HashOnly => (Out::Discard, Dest::None, true),
            Sink::Writer(w) => (Out::Writer(w), Dest::None, false),
            Sink::File(p) => {
                let dir = p
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                (temp(&dir)?, Dest::File(p), false)
            }
            Sink::BlobDir(d) => (temp(&d)?, Dest::BlobDir(d), false),
        };
        let pipe = Pipeline::new(out, compression, hash_only).map_err(werr)?;
        Ok(Self {
            pipe: BufWriter::with_capacity(TAR_BUFFER, pipe),
            compression,
            dest,
            hash_only,
            target,
        })
    }

    /// Ends the stream: flushes the compressor and stores the blob (renamed into place for file sinks).
    pub fn finish(self) -> Result<LayerInfo, ArchiveError> {
        let target = self.target;
        let werr = |source: io::Error| ArchiveError::Write {
            target: target.clone(),
            source,
        };
        let pipe = self.pipe.into_inner().map_err(|e| werr(e.into_error()))?;
        let (diff_id, tar_size, rest) = pipe.finish().map_err(werr)?;
        if self.hash_only {
            return Ok(LayerInfo {
                digest: diff_id.clone(),
                diff_id,
                size: tar_size,
                tar_size,
                media_type: MEDIA_TYPE_TAR.to_string(),
                path: None,
            });
        }
        let (digest, size, out) =
            rest.ok_or_else(|| werr(io::Error::other("compression stage missing")))?;
        let path = match (out, self.dest) {
            (Out::Temp(w), dest) => {
                let tmp = w.into_inner().map_err(|e| werr(e.into_error()))?;
                let to = match dest {
                    Dest::File(p) => p,
                    Dest::BlobDir(d) => d.join(digest.hex()),
                    Dest::None => return Err(werr(io::Error::other("blob file without a name"))),
                };
                tmp.commit_as(&to).map_err(werr)?;
                Some(to)
            }
            (Out::Writer(mut w), _) => {
                w.flush().map_err(werr)?;
                None
            }
            (Out::Discard, _) => None,
        };
        Ok(LayerInfo {
            diff_id,
            digest,
            size,
            tar_size,
            media_type: self.compression.media_type().to_string(),
            path,
        })
    }
}

impl Write for LayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pipe.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::archive::{LayerBuilder, Meta, Source};

    /// The stream writer and `LayerBuilder::write` agree byte for byte on the same tar.
    #[test]
    fn same_layer_info_as_the_builder() {
        let t = tempfile::tempdir().unwrap();
        let mut b = LayerBuilder::new();
        b.add(Source::Dir {
            path: "/x".into(),
            meta: Meta::root(0o755),
        });
        let mut tar = Vec::new();
        b.write_tar(&mut tar).unwrap();
        for c in [
            Compression::None,
            Compression::default(),
            Compression::zstd(),
        ] {
            let want = b.write(c, Sink::File(t.path().join("a"))).unwrap();
            let mut w = LayerWriter::new(c, Sink::File(t.path().join("b"))).unwrap();
            w.write_all(&tar).unwrap();
            let got = w.finish().unwrap();
            assert_eq!(
                (&got.diff_id, &got.digest, got.size, &got.media_type),
                (&want.diff_id, &want.digest, want.size, &want.media_type)
            );
            assert_eq!(
                std::fs::read(t.path().join("a")).unwrap(),
                std::fs::read(t.path().join("b")).unwrap()
            );
        }
        let mut w = LayerWriter::new(Compression::default(), Sink::HashOnly).unwrap();
        w.write_all(&tar).unwrap();
        assert_eq!(
            w.finish().unwrap().digest,
            b.write(Compression::None, Sink::HashOnly).unwrap().diff_id
        );
    }

    /// Issue #16: a multi-block gzip layer has the same digest whatever the worker count, and its diffID
    /// is the sha256 of the tar that went in.
    #[test]
    fn gzip_layer_digest_independent_of_workers() {
        use sha2::{Digest as _, Sha256};
        let tar: Vec<u8> = (0..(3 * crate::archive::GZIP_BLOCK + 999) as u32)
            .map(|i| {
                (i.wrapping_mul(2_654_435_761) >> 24) as u8 & if i % 3 == 0 { 0xff } else { 0x0f }
            })
            .collect();
        let run = |workers| {
            crate::archive::set_gzip_workers(workers);
            let mut w = LayerWriter::new(Compression::default(), Sink::HashOnly).unwrap();
            let mut w2 =
                LayerWriter::new(Compression::default(), Sink::Writer(Box::new(io::sink())))
                    .unwrap();
            w.write_all(&tar).unwrap();
            w2.write_all(&tar).unwrap();
            (w.finish().unwrap(), w2.finish().unwrap())
        };
        let (h1, one) = run(1);
        let (_, four) = run(4);
        crate::archive::set_gzip_workers(0);
        assert_eq!(one, four);
        let want = crate::image::Digest::from_sha256(Sha256::digest(&tar).into());
        assert_eq!(one.diff_id, want);
        assert_eq!(h1.diff_id, want);
        assert_eq!(one.tar_size, tar.len() as u64);
    }
}
