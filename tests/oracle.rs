//! What the integration tests need from the machine, shared by the library's tests and the
//! command-line tool's (each includes this file): numpy as the oracle, through Python, and
//! the repository's memory-cap tool.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The Python interpreter that has numpy: `$OUTCORE_PYTHON`, else `python3`.
pub fn python_exe() -> String {
    std::env::var("OUTCORE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether `import {modules}` succeeds with [`python_exe`]. When it does not, the tests
/// that need those modules are skipped with a visible notice naming `hint` (how to get
/// them), except where the environment variable `require` is `1` (CI), where it fails the
/// test. Callers keep the answer (one probe per test binary).
pub fn python_imports(modules: &str, require: &str, hint: &str) -> bool {
    let ok = Command::new(python_exe())
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var(require).as_deref() == Ok("1") {
            panic!(
                "{require}=1 but `{} -c 'import {modules}'` failed",
                python_exe()
            );
        }
        eprintln!(
            "NOTICE: `import {modules}` fails with `{}`; the tests that need it are SKIPPED \
             ({hint})",
            python_exe()
        );
    }
    ok
}

/// Whether numpy is importable ([`python_imports`]; `OUTCORE_REQUIRE_NUMPY=1` makes a
/// missing numpy a failure). Tests that need it start with [`require_numpy!`].
pub fn have_numpy() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        python_imports(
            "numpy",
            "OUTCORE_REQUIRE_NUMPY",
            "set OUTCORE_PYTHON, or pip install numpy",
        )
    })
}

/// Skips the calling test (returns early) when numpy is missing.
#[macro_export]
macro_rules! require_numpy {
    () => {
        if !$crate::common::have_numpy() {
            eprintln!("skipped: {} needs numpy", module_path!());
            return;
        }
    };
}

/// Runs a Python script (`sys`, `json` and numpy as `np` imported) with `args` in
/// `sys.argv[1:]`; returns stdout. Panics with stderr if the script fails.
pub fn python(script: &str, args: &[&str]) -> String {
    let full = format!("import sys, json\nimport numpy as np\n{script}");
    let out = Command::new(python_exe())
        .arg("-c")
        .arg(&full)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}\nscript:\n{}",
        String::from_utf8_lossy(&out.stderr),
        full
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The memory-cap tool (`shared/tools/memcap` beside the repository), which runs a command
/// in a memory cgroup of a given size and reports its peak, when it is usable here (root
/// and a cgroup-v1 memory hierarchy). Otherwise `None`, with a visible notice, except under
/// `OUTCORE_REQUIRE_MEMCAP=1` (CI), where that fails the test.
pub fn memcap() -> Option<PathBuf> {
    // The package's folder is the repository or a folder in it.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tool = here
        .ancestors()
        .skip(1)
        .map(|d| d.join("shared/tools/memcap"))
        .find(|t| t.exists())
        .unwrap_or_else(|| here.join("../shared/tools/memcap"));
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let usable = tool.exists() && root && PathBuf::from("/sys/fs/cgroup/memory").is_dir();
    if !usable {
        assert!(
            std::env::var("OUTCORE_REQUIRE_MEMCAP").as_deref() != Ok("1"),
            "OUTCORE_REQUIRE_MEMCAP=1 but {} is not usable (root and cgroup v1 needed)",
            tool.display()
        );
        eprintln!(
            "NOTICE: memory-cap tests SKIPPED: {} needs root and cgroup v1",
            tool.display()
        );
        return None;
    }
    Some(tool)
}
