//! The default memory budget under memory cgroups: `outcore sort` with no `--memory`, run
//! inside caps from 128 MiB to 2 GiB (the repository's `../shared/tools/memcap`), picks a
//! budget that holds: it completes, verified, without the OOM killer, on data larger than
//! the budget. Needs root and a cgroup-v1 memory hierarchy; skipped with a notice otherwise
//! (`OUTCORE_REQUIRE_MEMCAP=1` makes that a failure, as in CI).

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

/// Runs `outcore ARGS` under a memory cap of `mib`; returns the run and memcap's report.
fn capped(tool: &PathBuf, mib: u64, args: &[&str]) -> (Run, String) {
    // Through bash: the tool's copy may have lost its execute bit.
    let out = Command::new("bash")
        .arg(tool)
        .arg(mib.to_string())
        .arg("--")
        .arg(OUTCORE)
        .args(args)
        .output()
        .expect("run memcap");
    let run: Run = out.into();
    let report = run
        .stderr
        .lines()
        .find(|l| l.starts_with("memcap:"))
        .unwrap_or_default()
        .to_string();
    (run, report)
}

fn field(report: &str, key: &str) -> u64 {
    report
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {report:?}"))
}

#[test]
fn the_default_budget_holds_under_every_cap() {
    let Some(tool) = memcap() else { return };
    let dir = tmpdir();
    let input = p(dir.path(), "in.npy");
    let output = p(dir.path(), "out.npy");
    // 1 GiB of u64: several times the default budget under the small caps.
    outcore(&[
        "gen",
        "--dtype",
        "u64",
        "--dist",
        "uniform",
        "--size",
        "1GiB",
        "--out",
        s(&input),
        "--quiet",
    ])
    .ok();
    for cap in [128u64, 256, 512, 1024, 2048] {
        let (run, report) = capped(
            &tool,
            cap,
            &[
                "sort",
                s(&input),
                s(&output),
                "--verify",
                "--force",
                "--quiet",
            ],
        );
        assert_eq!(
            run.code,
            Some(0),
            "cap {cap} MiB: {}\n{}",
            run.stderr,
            run.stdout
        );
        assert_eq!(field(&report, "oom_kill"), 0, "cap {cap} MiB: {report}");
        let peak = field(&report, "max_usage_bytes");
        assert!(peak <= cap << 20, "cap {cap} MiB: peak {peak}");
        assert!(
            run.stdout
                .contains("sorted: yes, permutation of the input (checksum): yes"),
            "cap {cap} MiB:\n{}",
            run.stdout
        );
        // The data did not fit the budget chosen under the small caps: the external sort
        // ran.
        let first = run.stdout.lines().next().unwrap_or_default();
        if cap <= 512 {
            assert!(first.contains("external"), "cap {cap} MiB: {first}");
        }
        // The process itself (page cache aside) stays near its budget: freed buffers are
        // handed back (a sort that kept them held 513 MiB under a 384 MiB budget). Beyond
        // the budget: the program's own pages (a debug build maps about 30 MiB of itself),
        // stacks, and the extras `sort_file` documents.
        let budget = mib_before(first, "budget");
        let rss = mib_before(&run.stdout, "(page cache not included");
        assert!(
            rss <= budget + budget / 8.0 + 48.0,
            "cap {cap} MiB: peak RSS {rss} MiB over a {budget} MiB budget\n{}",
            run.stdout
        );
        eprintln!("cap {cap} MiB: {first} | peak RSS {rss} MiB | {report}");
    }
}

/// The size in MiB written just before `word` in `text` ("80 MiB budget", "1.5 GiB budget").
fn mib_before(text: &str, word: &str) -> f64 {
    let head = &text[..text
        .find(word)
        .unwrap_or_else(|| panic!("no {word:?} in {text:?}"))];
    let mut words = head.split_whitespace().rev();
    let (unit, num) = (words.next(), words.next());
    let num: f64 = num
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size before {word:?} in {text:?}"));
    match unit {
        Some("KiB") => num / 1024.0,
        Some("MiB") => num,
        Some("GiB") => num * 1024.0,
        _ => panic!("no unit before {word:?} in {text:?}"),
    }
}

#[test]
fn a_budget_above_the_cap_is_refused() {
    let Some(tool) = memcap() else { return };
    let dir = tmpdir();
    let input = p(dir.path(), "in.npy");
    let output = p(dir.path(), "out.npy");
    outcore(&[
        "gen",
        "--dtype",
        "u8",
        "--dist",
        "uniform",
        "--count",
        "1000",
        "--out",
        s(&input),
    ])
    .ok();
    let (run, _) = capped(
        &tool,
        128,
        &["sort", s(&input), s(&output), "--memory", "1GiB"],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("outcore:"))
        .unwrap_or_default();
    assert!(
        line.contains("more than this process can use") && line.contains("cgroup"),
        "{line}"
    );
    assert!(!output.exists());
}
