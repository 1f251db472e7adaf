//! The operating system, seen from one place: what outcore reads from `/proc` and `/sys`
//! and the system calls it makes beyond memmap2's.
//!
//! Every `unsafe` block calling libc sits here with a `// SAFETY:` comment that says why it
//! holds; the rest of the crate calls these safe wrappers.

use std::path::Path;

/// The memory limit of this process's memory cgroup: the least `memory.max` (cgroup v2) or
/// `memory.limit_in_bytes` (v1) of its cgroup and every cgroup above it. `None` when there
/// is no limit or no cgroup file system.
pub(crate) fn cgroup_memory_limit() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut best: Option<u64> = None;
    for line in cgroups.lines() {
        // "hierarchy-id:controllers:path"; v2 is "0::/path".
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let limit = if controllers.is_empty() {
            crate::limits::cgroup_v2_limit(Path::new("/sys/fs/cgroup"), path)
        } else if controllers.split(',').any(|c| c == "memory") {
            crate::limits::cgroup_v1_limit(Path::new("/sys/fs/cgroup/memory"), path)
        } else {
            None
        };
        best = match (best, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    best
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub(crate) fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The soft address-space limit `RLIMIT_AS` (`ulimit -v`), `None` when unlimited.
pub(crate) fn address_space_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through the pointer, which points to a live,
    // properly aligned `rlimit` on our stack.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) };
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur as u64)
}
