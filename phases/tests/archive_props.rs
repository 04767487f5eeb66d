//! Property: a tree's layer digest does not depend on creation order, mtimes or the umask in force when it
//! was created (modes are set explicitly). Alone in this test binary because the umask is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cnb_lifecycle::archive::{Compression, LayerBuilder, Sink};
use proptest::prelude::*;

fn create(root: &Path, files: &[(String, u32, Vec<u8>)], order: &[usize], mtime: u64, umask: u32) {
    // SAFETY: umask only changes the process file-creation mask; this binary has a single test.
    unsafe { libc::umask(umask as libc::mode_t) };
    for &i in order {
        let (p, mode, data) = &files[i];
        let full = root.join(p);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, data).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(*mode)).unwrap();
        let f = fs::File::options().write(true).open(&full);
        if let Ok(f) = f {
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime + i as u64))
                .unwrap();
        }
    }
    // directories: explicit modes (creation under any umask, then chmod)
    let mut dirs: Vec<_> = files
        .iter()
        .filter_map(|(p, _, _)| Path::new(p).parent().map(|d| d.to_path_buf()))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        let mut cur = root.to_path_buf();
        for c in d.components() {
            cur.push(c);
            fs::set_permissions(&cur, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    // SAFETY: as above.
    unsafe { libc::umask(0o022) };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn digest_independent_of_order_mtime_umask(
        files in prop::collection::btree_map("[a-d]{1,2}(/[a-d]{1,2}){0,2}/f[0-9]", (prop::sample::select(vec![0o644u32, 0o755, 0o600]), prop::collection::vec(any::<u8>(), 0..600)), 1..15),
        seed in any::<u64>(),
        m1 in 0u64..2_000_000_000, m2 in 0u64..2_000_000_000,
        u1 in prop::sample::select(vec![0o022u32, 0o077, 0o002, 0o000]), u2 in prop::sample::select(vec![0o022u32, 0o077, 0o002, 0o000]),
    ) {
        let files: Vec<(String, u32, Vec<u8>)> = files.into_iter().map(|(p, (m, d))| (p, m, d)).collect();
        let forward: Vec<usize> = (0..files.len()).collect();
        let mut shuffled = forward.clone();
        // deterministic shuffle from the seed
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        create(&a, &files, &forward, m1, u1);
        create(&b, &files, &shuffled, m2, u2);
        let digest = |root: &Path| {
            let mut lb = LayerBuilder::new();
            lb.add_tree(root, "/workspace", 1000, 1000);
            lb.write(Compression::default(), Sink::HashOnly).unwrap().diff_id
        };
        // The tree roots themselves differ in name only; ancestors come from their (equal) parents.
        prop_assert_eq!(digest(&a), digest(&b));
    }
}
