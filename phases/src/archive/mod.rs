//! Deterministic layer tarballs, streaming hashing/compression and safe extraction (platform spec "Layer" and image format).
