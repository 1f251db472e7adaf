//! Helpers shared by the integration tests: the numpy oracle, property-test settings,
//! scratch directories, child processes (also under a memory cap), small full disks, and a
//! multiset checksum.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "oracle.rs"]
mod oracle;
pub use oracle::*;

/// Property-test settings: `cases` cases (`PROPTEST_CASES` does not change them), and the
/// failing cases of a property test in `tests/FILE.rs` saved to
/// `tests/proptest-regressions/FILE.txt`, where later runs replay them first.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel(
                "tests/proptest-regressions",
            ),
        )),
        ..Default::default()
    }
}

/// SplitMix64: reproducible test data without a dependency.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The names of the files in `dir` other than `keep`: what an operation left behind.
pub fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

/// A fresh scratch directory, removed when dropped.
pub fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("outcore-test-")
        .tempdir()
        .expect("temp dir")
}

/// `dir/name` as a string, for passing to Python.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Runs this test binary again as a child process that executes the `#[ignore]`d test
/// `entry` (a full path such as `array::child_entry`), passing `args` in the environment
/// variable `OUTCORE_TEST_CHILD`. Returns when the child exits.
pub fn run_child(entry: &str, args: &str) -> std::process::Output {
    spawn_child(entry, args)
        .wait_with_output()
        .expect("wait for child")
}

/// Like [`run_child`], without waiting; stdout is piped.
pub fn spawn_child(entry: &str, args: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--ignored",
            "--exact",
            entry,
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OUTCORE_TEST_CHILD", args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child")
}

/// A small tmpfs mounted for a full-disk test, unmounted (and its directory removed) on
/// drop, also when the test panics.
pub struct SmallDisk {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. `"1m"`), or returns `None` with a visible notice when
    /// that is impossible (mounting needs root).
    pub fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tmpdir();
        let path = dir.path().join("small");
        std::fs::create_dir(&path).ok()?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let ok = root
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&path)
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a small tmpfs (needs root)");
            return None;
        }
        Some(SmallDisk { path, _dir: dir })
    }

    /// The names of the files on the disk.
    pub fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.path)
            .expect("list the small disk")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// An order-independent checksum of elements' bytes, fed piece by piece: equal for two
/// sequences that are permutations of each other (and, with overwhelming probability, only
/// then).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Multiset {
    sum: u64,
    xor: u64,
    len: usize,
}

impl Multiset {
    /// Adds the elements of `v`.
    pub fn feed<T: bytemuck::Pod>(&mut self, v: &[T]) {
        for x in v {
            // Eight bytes at a time (each step a bijection of the word, so distinct
            // elements of up to 8 bytes never collide).
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            for word in bytemuck::bytes_of(x).chunks(8) {
                let mut w = [0u8; 8];
                w[..word.len()].copy_from_slice(word);
                h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x100_0000_01b3);
                h ^= h >> 29;
            }
            h ^= h >> 31;
            h = h.wrapping_mul(0x7fb5_d329_728e_a185);
            self.sum = self.sum.wrapping_add(h);
            self.xor ^= h.rotate_left(17);
        }
        self.len += v.len();
    }
}

/// The [`Multiset`] checksum of `v`.
pub fn multiset<T: bytemuck::Pod>(v: &[T]) -> Multiset {
    let mut m = Multiset::default();
    m.feed(v);
    m
}

/// Like [`run_child`], with the child inside a memory cgroup of `mib` MiB (`tool` is
/// [`memcap`]). Returns the child's output and memcap's report line
/// (`memcap: limit_mb=.. max_usage_mb=.. max_usage_bytes=.. failcnt=.. oom_kill=.. rc=..`).
pub fn run_child_capped(
    tool: &Path,
    mib: u64,
    entry: &str,
    args: &str,
) -> (std::process::Output, String) {
    // Through bash: the tool's copy may have lost its execute bit.
    let out = Command::new("bash")
        .arg(tool)
        .arg(mib.to_string())
        .arg("--")
        .arg(std::env::current_exe().expect("test binary path"))
        .args([
            "--ignored",
            "--exact",
            entry,
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OUTCORE_TEST_CHILD", args)
        .output()
        .expect("run memcap");
    let report = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.starts_with("memcap:"))
        .unwrap_or_default()
        .to_string();
    (out, report)
}

/// The number after `key=` in a memcap report line.
pub fn memcap_field(report: &str, key: &str) -> u64 {
    report
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {report:?}"))
}
