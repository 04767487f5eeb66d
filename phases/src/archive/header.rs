//! Tar headers byte-compatible with Go's `archive/tar` writer as the reference lifecycle uses it (checklist
//! T-01): USTAR when every field fits (names over 100 bytes split into the 155-byte prefix when possible),
//! otherwise a PAX extended header (`<dir>/PaxHeaders.0/<base>`, records sorted by key) followed by the main
//! header. Numbers are zero-padded octal with a NUL, the checksum is six octal digits, NUL, space; uname and
//! gname are empty.

use std::collections::BTreeMap;

/// Size of a tar block.
pub const BLOCK: usize = 512;
const NAME: usize = 100;
const PREFIX: usize = 155;
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// The kind of a tar entry (its typeflag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file (`'0'`).
    File,
    /// Hard link to an earlier entry (`'1'`).
    Hardlink,
    /// Symbolic link (`'2'`).
    Symlink,
    /// Character device (`'3'`).
    Char,
    /// Block device (`'4'`).
    Block,
    /// Directory (`'5'`).
    Dir,
    /// Named pipe (`'6'`).
    Fifo,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Hardlink => b'1',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }
}

/// Everything a normalised entry header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// Entry name as raw bytes (no trailing `/` for directories, as the reference writes them).
    pub name: Vec<u8>,
    /// Entry kind.
    pub kind: Kind,
    /// Permission bits plus setuid/setgid/sticky (`0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Content size (regular files only).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Link target for symlinks and hard links.
    pub link: Vec<u8>,
    /// Device major number (char/block devices).
    pub devmajor: u32,
    /// Device minor number (char/block devices).
    pub devminor: u32,
    /// Extended attributes, written as `SCHILY.xattr.<name>` PAX records.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|&b| b < 0x80)
}

/// Go's `toASCII`: drops every byte that is not 7-bit ASCII (and NUL).
fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&b| b < 0x80 && b != 0).collect()
}

/// Go's `formatString`: copy, NUL-terminate when shorter, never leave a trailing slash on truncation.
fn put_str(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
    if s.len() < field.len() {
        field[s.len()] = 0;
    }
    if s.len() > field.len() && field[field.len() - 1] == b'/' {
        let mut end = field.len();
        while end > 0 && field[end - 1] == b'/' {
            end -= 1;
        }
        field[end] = 0;
    }
}

/// Go's `formatOctal`: zero-padded octal leaving room for a NUL; values that do not fit become 0.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let value = if digits < 22 && value >= 1u64 << (3 * digits) {
        0
    } else {
        value
    };
    let s = format!("{value:0digits$o}");
    put_str(field, s.as_bytes());
}

/// Go's `splitUSTARPath`.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = name.len();
    if length <= NAME || !is_ascii(name) {
        return None;
    } else if length > PREFIX + 1 {
        length = PREFIX + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|&b| b == b'/')?;
    let nlen = name.len() - i - 1;
    if i == 0 || nlen > NAME || nlen == 0 || i > PREFIX {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// One PAX record, `<len> <key>=<value>\n` where `<len>` counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut size = base + base.to_string().len();
    if (base + size.to_string().len()) != size {
        size = base + size.to_string().len();
    }
    let mut rec = format!("{size} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

fn finish(block: &mut [u8; BLOCK]) {
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    put_octal(&mut block[148..155], sum);
    block[155] = b' ';
}

fn template(h: &EntryHeader, name: &[u8], link: &[u8]) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], name);
    put_octal(&mut b[100..108], u64::from(h.mode));
    put_octal(&mut b[108..116], h.uid);
    put_octal(&mut b[116..124], h.gid);
    put_octal(&mut b[124..136], h.size);
    put_octal(&mut b[136..148], u64::try_from(h.mtime).unwrap_or(0));
    b[156] = h.kind.flag();
    put_str(&mut b[157..257], link);
    // uname (265..297) and gname (297..329) stay empty.
    put_octal(&mut b[329..337], u64::from(h.devmajor));
    put_octal(&mut b[337..345], u64::from(h.devminor));
    b
}

/// Encodes `h` as Go's writer would (with an unspecified format): returns the header bytes, one or more
/// 512-byte blocks (a PAX extended header and its padded data come first when needed).
pub fn encode(h: &EntryHeader) -> Vec<u8> {
    let mut pax: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let name_ok = h.name.len() <= NAME && is_ascii(&h.name) || split_ustar(&h.name).is_some();
    if !(h.name.len() <= NAME && is_ascii(&h.name)) {
        pax.insert("path".into(), h.name.clone());
    }
    if h.link.len() > NAME || !is_ascii(&h.link) {
        pax.insert("linkpath".into(), h.link.clone());
    }
    if h.uid > MAX_OCTAL_7 {
        pax.insert("uid".into(), h.uid.to_string().into_bytes());
    }
    if h.gid > MAX_OCTAL_7 {
        pax.insert("gid".into(), h.gid.to_string().into_bytes());
    }
    if h.size > MAX_OCTAL_11 {
        pax.insert("size".into(), h.size.to_string().into_bytes());
    }
    if h.mtime < 0 || h.mtime as u64 > MAX_OCTAL_11 {
        pax.insert("mtime".into(), h.mtime.to_string().into_bytes());
    }
    for (k, v) in &h.xattrs {
        pax.insert(format!("SCHILY.xattr.{k}"), v.clone());
    }
    let ustar = name_ok && pax.keys().all(|k| k == "path");
    if ustar {
        let (prefix, name) = split_ustar(&h.name).unwrap_or((&[], &h.name));
        let mut b = template(h, name, &h.link);
        put_str(&mut b[345..500], prefix);
        finish(&mut b);
        return b.to_vec();
    }
    let mut data = Vec::new();
    for (k, v) in &pax {
        data.extend(pax_record(k, v));
    }
    // `path.Join(path.Split(name))` with PaxHeaders.0 between them, truncated to 100 bytes, no trailing '/'.
    let (dir, base) = match h.name.iter().rposition(|&b| b == b'/') {
        Some(i) => (&h.name[..=i], &h.name[i + 1..]),
        None => (&h.name[..0], &h.name[..]),
    };
    let mut pax_name = clean_join(dir, base);
    pax_name = to_ascii(&pax_name);
    pax_name.truncate(NAME);
    while pax_name.last() == Some(&b'/') {
        pax_name.pop();
    }
    let mut out = Vec::with_capacity(3 * BLOCK + data.len());
    let mut x = [0u8; BLOCK];
    put_str(&mut x[0..100], &pax_name);
    put_octal(&mut x[100..108], 0);
    put_octal(&mut x[108..116], 0);
    put_octal(&mut x[116..124], 0);
    put_octal(&mut x[124..136], data.len() as u64);
    put_octal(&mut x[136..148], 0);
    x[156] = b'x';
    finish(&mut x);
    out.extend_from_slice(&x);
    out.extend_from_slice(&data);
    out.resize(out.len() + padding(data.len() as u64), 0);
    let mut b = template(h, &to_ascii(&h.name), &to_ascii(&h.link));
    finish(&mut b);
    out.extend_from_slice(&b);
    out
}

/// Go's `path.Join(dir, "PaxHeaders.0", base)` (which also cleans the result).
fn clean_join(dir: &[u8], base: &[u8]) -> Vec<u8> {
    let mut joined = dir.to_vec();
    if !joined.is_empty() && joined.last() != Some(&b'/') {
        joined.push(b'/');
    }
    joined.extend_from_slice(b"PaxHeaders.0/");
    joined.extend_from_slice(base);
    let rooted = joined.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in joined.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(part);
                }
            }
            p => parts.push(p),
        }
    }
    let mut out = if rooted { vec![b'/'] } else { Vec::new() };
    out.extend(parts.join(&b'/'));
    out
}

/// Zero bytes that pad `size` bytes of entry data to a whole block.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str) -> EntryHeader {
        EntryHeader {
            name: name.as_bytes().to_vec(),
            kind: Kind::File,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            size: 5,
            mtime: 315_532_801,
            link: Vec::new(),
            devmajor: 0,
            devminor: 0,
            xattrs: BTreeMap::new(),
        }
    }

    #[test]
    fn ustar_fields_match_go() {
        let b = encode(&h("/a/b"));
        assert_eq!(b.len(), 512);
        assert_eq!(&b[100..108], b"0000644\0");
        assert_eq!(&b[108..116], b"0001750\0");
        assert_eq!(&b[124..136], b"00000000005\0");
        assert_eq!(&b[136..148], b"02263523001\0"); // 315532801 = 1980-01-01T00:00:01Z
        assert_eq!(&b[257..265], b"ustar\x0000");
        assert_eq!(&b[329..345], b"0000000\x000000000\0");
        assert_eq!(b[154], 0);
        assert_eq!(b[155], b' ');
    }

    #[test]
    fn long_names_split_or_pax() {
        let long = format!("/{}/{}", "d".repeat(120), "f".repeat(50));
        let b = encode(&h(&long));
        assert_eq!(b.len(), 512, "splits into the USTAR prefix");
        assert_eq!(&b[0..50], "f".repeat(50).as_bytes());
        let longer = format!("/{}", "x".repeat(200));
        let b = encode(&h(&longer));
        assert_eq!(b.len(), 3 * 512);
        assert_eq!(b[156], b'x');
        assert!(b.starts_with(b"/PaxHeaders.0/xxx"));
        let rec = pax_record("path", longer.as_bytes());
        assert!(rec.starts_with(b"211 path=/xxx"));
        assert_eq!(rec.len(), 211);
    }

    #[test]
    fn pax_record_length_rollover() {
        // 1 + 1 + key(1) + value + 3 → lengths around 9/10 and 99/100 must count their own digits.
        for n in 0..200 {
            let rec = pax_record("k", "v".repeat(n).as_bytes());
            let len: usize =
                std::str::from_utf8(&rec[..rec.iter().position(|&b| b == b' ').unwrap_or(0)])
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0);
            assert_eq!(len, rec.len(), "n={n}");
        }
    }
}
