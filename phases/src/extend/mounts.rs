//! The mount points of this process (`/proc/self/mountinfo`, proc(5)), which the extender's snapshots
//! leave out as kaniko's `DetectFilesystemIgnoreList` does: in a container they are the platform's
//! volumes (`/layers`, `/workspace`, `/kaniko`, `/platform`, `/cnb`, `/tekton/*`), secrets and the
//! runtime's bind-mounted `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` — often on the same device
//! as `/`, so the snapshot's device check alone would record them.

use std::path::PathBuf;

/// Mount points listed in `/proc/self/mountinfo` (empty when it cannot be read).
pub fn mount_points() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| parse(&text))
        .unwrap_or_default()
}

/// The mount point (5th field, octal escapes `\040` etc. decoded) of every line of a mountinfo file.
pub fn parse(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect()
}

/// Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash) in a mountinfo field.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a container under Docker's defaults sees (trimmed), plus a volume with a space.
    #[test]
    fn parses_a_containers_mountinfo() {
        let text = "70 47 254:0 /var/lib/docker/vfs/dir/b84c / rw,relatime master:1 - ext4 /dev/vda rw\n\
71 70 0:41 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n\
87 70 254:0 /var/lib/docker/containers/c8/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw\n\
90 70 254:0 /tmp/x /layers rw,relatime - ext4 /dev/vda rw\n\
91 70 254:0 /tmp/y /tekton/my\\040home rw,relatime - ext4 /dev/vda rw\n";
        assert_eq!(
            parse(text),
            [
                "/",
                "/proc",
                "/etc/resolv.conf",
                "/layers",
                "/tekton/my home"
            ]
            .iter()
            .map(PathBuf::from)
            .collect::<Vec<_>>()
        );
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn this_process_has_a_root_mount() {
        assert!(mount_points()
            .iter()
            .any(|p| p == std::path::Path::new("/")));
    }
}
