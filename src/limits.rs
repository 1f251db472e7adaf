//! What the machine allows: the memory this process may use, and the default budgets of the
//! bounded-memory operations derived from it.
//!
//! A default that assumes more memory than the process has is how a sort gets OOM-killed in
//! a container: a 1 GiB budget inside a 256 MiB memory cgroup. So the default budget is not
//! a constant: [`memory_limit`] takes the least of
//!
//! * the memory cgroup's limit: cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`, of the
//!   process's own cgroup and of each cgroup above it (a child cannot use more than its
//!   parent allows);
//! * `MemAvailable` from `/proc/meminfo`: what the kernel can give without swapping,
//!   reclaimable page cache included;
//! * `RLIMIT_AS`, the address-space limit (`ulimit -v`),
//!
//! and [`default_budget`] keeps a quarter of it (at least 48 MiB) as headroom for what is
//! not in a budget: the page cache the operation's own reads and writes pass through, the
//! program, its threads' stacks. An explicit budget above [`memory_limit`] is refused with
//! [`Error::BudgetTooLarge`]: under a cgroup it would end in the OOM killer, not in an
//! error.
//!
//! ```
//! let limit = outcore::memory_limit();
//! let budget = outcore::default_budget();
//! assert!(budget as u64 <= limit.bytes);
//! println!("{} bytes available ({}), default budget {budget}", limit.bytes, limit.source);
//! ```

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::sys;

/// Where a memory limit comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitSource {
    /// The memory cgroup of the process (or one above it).
    Cgroup,
    /// `MemAvailable` in `/proc/meminfo`.
    MemAvailable,
    /// The address-space limit `RLIMIT_AS`.
    AddressSpace,
    /// Nothing could be read; an assumed 4 GiB.
    Assumed,
}

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitSource::Cgroup => "the memory cgroup's limit",
            LimitSource::MemAvailable => "MemAvailable",
            LimitSource::AddressSpace => "RLIMIT_AS",
            LimitSource::Assumed => "an assumed 4 GiB (no limit could be read)",
        })
    }
}

/// The memory this process can use: the least of the limits above, and which one it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes.
    pub bytes: u64,
    /// Which limit is the least.
    pub source: LimitSource,
}

/// Assumed when no limit can be read (not Linux, no `/proc`).
const ASSUMED: u64 = 4 << 30;

/// The least of the memory cgroup's limit, `MemAvailable` and `RLIMIT_AS`. Read anew on
/// every call (each is a few small file reads).
pub fn memory_limit() -> MemoryLimit {
    let candidates = [
        (sys::cgroup_memory_limit(), LimitSource::Cgroup),
        (sys::mem_available(), LimitSource::MemAvailable),
        (sys::address_space_limit(), LimitSource::AddressSpace),
    ];
    candidates
        .into_iter()
        .filter_map(|(b, s)| {
            b.map(|b| MemoryLimit {
                bytes: b,
                source: s,
            })
        })
        .min_by_key(|l| l.bytes)
        .unwrap_or(MemoryLimit {
            bytes: ASSUMED,
            source: LimitSource::Assumed,
        })
}

/// The default memory budget of a bounded-memory operation (the external sort, quantile
/// candidates, tiled conversions): [`memory_limit`] less a headroom of a quarter of it, at
/// least 48 MiB, and never less than a quarter of the limit.
pub fn default_budget() -> usize {
    budget_for(memory_limit().bytes)
}

/// [`default_budget`] for a given limit.
pub(crate) fn budget_for(limit: u64) -> usize {
    let headroom = (limit / 4).max(48 << 20);
    let budget = limit.saturating_sub(headroom).max(limit / 4);
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// Checks an explicit budget against [`memory_limit`].
///
/// # Errors
/// [`Error::BudgetTooLarge`] if `bytes` exceeds the limit.
pub fn check_budget(bytes: usize) -> Result<()> {
    let limit = memory_limit();
    if bytes as u64 > limit.bytes {
        return Err(Error::BudgetTooLarge {
            asked: bytes as u64,
            limit: limit.bytes,
            limited_by: limit.source,
        });
    }
    Ok(())
}

/// The smallest of the memory limits of the cgroup-v2 `dir` and its ancestors up to `root`
/// (`memory.max` files; `max` means none).
pub(crate) fn cgroup_v2_limit(root: &Path, rel: &str) -> Option<u64> {
    hierarchy_min(root, rel, "memory.max")
}

/// As [`cgroup_v2_limit`] for cgroup v1 (`memory.limit_in_bytes`; a huge value means none).
pub(crate) fn cgroup_v1_limit(root: &Path, rel: &str) -> Option<u64> {
    hierarchy_min(root, rel, "memory.limit_in_bytes")
}

fn hierarchy_min(root: &Path, rel: &str, file: &str) -> Option<u64> {
    let mut dir = root.to_path_buf();
    let mut best = read_limit(&dir.join(file));
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
        best = match (best, read_limit(&dir.join(file))) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    best
}

/// A limit file's value; `None` for "max", unreadable files, and v1's "no limit" (a value
/// near `i64::MAX`, rounded down to the page size).
fn read_limit(path: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let v: u64 = s.trim().parse().ok()?;
    (v < (1 << 60)).then_some(v)
}

/// Reads a size as people write one: `4GiB`, `512M`, `1.5GB`, `1000000`. A number
/// (decimals allowed if the result is a whole number of bytes; every `_` in it ignored)
/// and an optional unit: `K M G T` and `KiB MiB GiB TiB` are powers of 1024, `KB MB GB TB`
/// powers of 1000, `B` or none is bytes; units in any case. The `outcore` command line and
/// the Python module read sizes and budgets with it.
///
/// ```
/// assert_eq!(outcore::parse_size("768MiB")?, 768 << 20);
/// assert_eq!(outcore::parse_size("1.5GB")?, 1_500_000_000);
/// assert!(outcore::parse_size("1.3B").is_err()); // not a whole number of bytes
/// # Ok::<(), outcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidSize`] when `s` is not a size, is not a whole number of bytes, or does
/// not fit in a `u64`; its message names `s`.
pub fn parse_size(s: &str) -> Result<u64> {
    let invalid = |message: String| Error::InvalidSize {
        input: s.to_owned(),
        message,
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num = num.replace('_', "");
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        u => {
            return Err(invalid(format!(
                "unknown unit {u:?} in {s:?}; use B, KiB, MiB, GiB, TiB (or K, M, G, T), KB, MB, GB, TB"
            )))
        }
    };
    let (int, frac) = num.split_once('.').unwrap_or((&num, ""));
    let bad = || {
        invalid(format!(
            "{s:?} is not a size; write e.g. 4GiB, 512MiB or 1000000"
        ))
    };
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let (frac_num, frac_den) = if frac.is_empty() {
        (0u128, 1u128)
    } else {
        let den = 10u128
            .checked_pow(frac.len() as u32)
            .filter(|_| frac.len() <= 18)
            .ok_or_else(bad)?;
        (frac.parse::<u128>().map_err(|_| bad())?, den)
    };
    let scaled_frac = frac_num * u128::from(mult);
    if scaled_frac % frac_den != 0 {
        return Err(invalid(format!("{s:?} is not a whole number of bytes")));
    }
    let bytes = int
        .checked_mul(u128::from(mult))
        .and_then(|b| b.checked_add(scaled_frac / frac_den))
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| invalid(format!("{s:?} is too large")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_keep_headroom() {
        assert_eq!(budget_for(256 << 20), 192 << 20);
        assert_eq!(budget_for(1 << 30), 768 << 20);
        assert_eq!(budget_for(128 << 20), 80 << 20);
        // Tiny limits: a quarter, never nothing.
        assert_eq!(budget_for(16 << 20), 4 << 20);
        for mib in [64u64, 100, 128, 512, 2048, 24 << 10] {
            let b = budget_for(mib << 20) as u64;
            assert!(b < mib << 20 && b >= (mib << 20) / 4, "{mib} MiB: {b}");
        }
    }

    #[test]
    fn the_least_limit_of_a_hierarchy_counts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::write(root.join("memory.max"), "max\n").unwrap();
        std::fs::write(root.join("a/memory.max"), "1073741824\n").unwrap();
        std::fs::write(root.join("a/b/memory.max"), "max\n").unwrap();
        std::fs::write(root.join("a/b/c/memory.max"), "2147483648\n").unwrap();
        assert_eq!(cgroup_v2_limit(root, "/a/b/c"), Some(1 << 30));
        assert_eq!(cgroup_v2_limit(root, "/"), None);
        std::fs::write(
            root.join("a/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        std::fs::write(root.join("a/b/memory.limit_in_bytes"), "268435456\n").unwrap();
        assert_eq!(cgroup_v1_limit(root, "/a/b/c"), Some(256 << 20));
        assert_eq!(cgroup_v1_limit(root, "/a"), None);
    }

    #[test]
    fn this_process_has_a_limit_and_a_budget_below_it() {
        let l = memory_limit();
        eprintln!("memory limit: {} bytes ({})", l.bytes, l.source);
        assert!(l.bytes > 0);
        assert!((default_budget() as u64) < l.bytes);
        assert!(check_budget(1 << 20).is_ok());
        assert!(matches!(
            check_budget(usize::MAX),
            Err(Error::BudgetTooLarge { .. })
        ));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512mib").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("0.5KiB").unwrap(), 512);
        assert_eq!(parse_size("1_000_000").unwrap(), 1_000_000);
        assert_eq!(parse_size("100 B").unwrap(), 100);
        assert!(parse_size("1.3B")
            .unwrap_err()
            .to_string()
            .contains("whole number of bytes"));
        assert!(parse_size("4QB")
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!(matches!(
            parse_size("GiB"),
            Err(Error::InvalidSize { input, .. }) if input == "GiB"
        ));
        assert!(parse_size("99999999999TiB")
            .unwrap_err()
            .to_string()
            .contains("too large"));
    }
}
