//! Faults and concurrency: several processes on the same or different files, a file that
//! shrinks under a mapping. (Full disks, killed runs and open-file limits for the programs
//! are exercised by `tests/faults.sh`.)

use std::time::Duration;

use outcore::{Error, MappedArray, MappedArrayMut};

use crate::common::{spawn_child, tmpdir};

const N: usize = 2_000_000;

fn expected_sum() -> u64 {
    (0..N as u64).map(|i| i * 3 + 1).sum()
}

/// The child side of the tests below.
#[test]
#[ignore = "run by the concurrency tests as a child process"]
fn child_entry() {
    let Ok(args) = std::env::var("OUTCORE_TEST_CHILD") else {
        return;
    };
    let (cmd, path) = args.split_once(' ').unwrap();
    match cmd {
        "read-sum" => {
            let mut total = 0u64;
            for _ in 0..5 {
                let a = MappedArray::<u64>::open(path).unwrap();
                total = a.iter().sum();
                a.release(0..a.len()).unwrap();
            }
            println!("CHILD: sum {total}");
        }
        "write-new" => {
            let mut a = MappedArrayMut::<u64>::create(path, &[N]).unwrap();
            for (i, x) in a.iter_mut().enumerate() {
                *x = i as u64 * 3 + 1;
            }
            a.persist().unwrap();
            println!("CHILD: written");
        }
        _ => panic!("unknown child command {cmd}"),
    }
}

fn make_input(path: &std::path::Path) {
    let mut a = MappedArrayMut::<u64>::create(path, &[N]).unwrap();
    for (i, x) in a.iter_mut().enumerate() {
        *x = i as u64 * 3 + 1;
    }
    a.persist().unwrap();
}

fn child_says(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn two_processes_read_the_same_array_at_once() {
    let dir = tmpdir();
    let p = dir.path().join("shared.npy");
    make_input(&p);
    let entry = "faults::child_entry";
    let a = spawn_child(entry, &format!("read-sum {}", p.display()));
    let b = spawn_child(entry, &format!("read-sum {}", p.display()));
    // And this process reads it too, while they run.
    let mine = MappedArray::<u64>::open(&p).unwrap();
    assert_eq!(mine.iter().sum::<u64>(), expected_sum());
    let want = format!("CHILD: sum {}", expected_sum());
    assert!(child_says(a).contains(&want));
    assert!(child_says(b).contains(&want));
}

#[test]
fn a_reader_and_a_writer_of_different_files_in_parallel() {
    let dir = tmpdir();
    let input = dir.path().join("in.npy");
    let output = dir.path().join("out.npy");
    make_input(&input);
    let entry = "faults::child_entry";
    let r = spawn_child(entry, &format!("read-sum {}", input.display()));
    let w = spawn_child(entry, &format!("write-new {}", output.display()));
    assert!(child_says(r).contains(&format!("CHILD: sum {}", expected_sum())));
    assert!(child_says(w).contains("CHILD: written"));
    let out = MappedArray::<u64>::open(&output).unwrap();
    assert_eq!(out.iter().sum::<u64>(), expected_sum());
    let inp = MappedArray::<u64>::open(&input).unwrap();
    assert_eq!(&inp[..], &out[..], "no data lost on either side");
}

#[test]
fn a_writer_refuses_a_second_writer_without_data_loss() {
    let dir = tmpdir();
    let p = dir.path().join("x.npy");
    make_input(&p);
    let mut w = MappedArrayMut::<u64>::open(&p).unwrap();
    w[0] = 99;
    let start = std::time::Instant::now();
    assert!(matches!(
        MappedArrayMut::<u64>::open(&p),
        Err(Error::Locked { .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(5));
    w.flush().unwrap();
    drop(w);
    let a = MappedArray::<u64>::open(&p).unwrap();
    assert_eq!(a[0], 99);
    assert_eq!(a[1..].iter().sum::<u64>(), expected_sum() - 1);
}

#[test]
fn a_file_truncated_under_a_mapping_is_detected() {
    let dir = tmpdir();
    let p = dir.path().join("t.npy");
    make_input(&p);
    let a = MappedArray::<u64>::open(&p).unwrap();
    a.check_size().unwrap();
    // Another program, ignoring the advisory lock, cuts the file in half.
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(4096).unwrap();
    let e = a.check_size().unwrap_err();
    assert!(matches!(e, Error::Truncated { actual: 4096, .. }), "{e}");
    assert!(e.to_string().contains("t.npy"));
    // The first page still exists and is readable; the rest would be SIGBUS.
    assert_eq!(a[0], 1);
}

#[test]
fn a_streaming_pass_over_a_truncated_file_errs_instead_of_faulting() {
    let dir = tmpdir();
    let p = dir.path().join("s.npy");
    make_input(&p);
    let a = MappedArray::<u64>::open(&p).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(8192)
        .unwrap();
    let r = outcore::stream::fold_chunks(
        &a,
        &outcore::ParOptions::new(),
        &outcore::stream::Stream::new(),
        |c| c.iter().sum::<u64>(),
        |x, y| x + y,
    );
    assert!(matches!(r, Err(Error::Truncated { .. })), "{r:?}");
}

#[test]
fn map_into_a_file_on_a_full_disk_fails_cleanly() {
    let Some(disk) = crate::common::SmallDisk::mount("1m") else {
        return;
    };
    let src: Vec<f64> = (0..1_000_000).map(|i| i as f64).collect();
    let dest = disk.path.join("mapped.npy");
    std::fs::write(&dest, b"previous").unwrap();
    let r = outcore::kernels::map_to_file(&src, &[src.len()], &dest, |x| x * 2.0);
    let listing = disk.listing();
    let kept = std::fs::read(&dest).unwrap();
    assert!(matches!(r, Err(Error::DiskFull { .. })), "{r:?}");
    assert_eq!(listing, ["mapped.npy"], "no temporary file left");
    assert_eq!(kept, b"previous", "destination untouched");
}
