//! Running work with the GIL released: thread pools for `threads=`, Ctrl-C while a long
//! call runs, and panics caught before they reach Python.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outcore::ParOptions;
use pyo3::prelude::*;

use crate::errors::{panic_to_py, to_py, value_error};

/// How often a long call looks for Ctrl-C (Python's pending signals).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Inputs above this many bytes run as long calls (a worker thread, Ctrl-C polled); below
/// it a call runs on the calling thread, which keeps the overhead of small calls low.
pub const LONG_CALL_BYTES: usize = 16 << 20;

/// The parallel options for `threads=`: rayon's global pool for `None`/0, else a pool of
/// that many threads, built once per count and kept for later calls.
pub fn par(threads: Option<usize>) -> PyResult<ParOptions> {
    static POOLS: Mutex<Option<HashMap<usize, ParOptions>>> = Mutex::new(None);
    match threads {
        None | Some(0) => Ok(ParOptions::new()),
        Some(n) if n > 4096 => Err(value_error(format!("threads={n} is too many"))),
        Some(n) => {
            let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
            Ok(pools
                .get_or_insert_with(HashMap::new)
                .entry(n)
                .or_insert_with(|| {
                    let mut p = ParOptions::new();
                    p.threads(n);
                    p
                })
                .clone())
        }
    }
}

/// Runs `f` inside `par`'s pool (for the global pool: on one of its workers, so that the
/// kernels `f` calls do not each pay for a hand-over from a foreign thread).
fn in_pool<R: Send>(
    par: &ParOptions,
    f: impl FnOnce() -> outcore::Result<R> + Send,
) -> outcore::Result<R> {
    if par.get_threads() == rayon::current_num_threads() {
        // The global pool (or a dedicated one of the same size: equivalent here).
        rayon::join(f, || ()).0
    } else {
        par.install(f)?
    }
}

/// Runs `f` with the GIL released and returns its result as a Python result: inside `par`'s
/// thread pool if given (kernels), else directly (file operations that manage their own
/// threads).
///
/// A `long` call runs `f` on a worker thread while this thread checks for Ctrl-C every
/// 50 ms; on `KeyboardInterrupt` it sets `cancel` (which `f` is expected to watch), waits for
/// `f` to stop, and raises the `KeyboardInterrupt`. A short call runs `f` here. Either way a
/// panic in `f` becomes a `RuntimeError`.
pub fn run<R: Send>(
    py: Python<'_>,
    long: bool,
    par: Option<&ParOptions>,
    cancel: &Arc<AtomicBool>,
    f: impl FnOnce() -> outcore::Result<R> + Send,
) -> PyResult<R> {
    let work = move || {
        catch_unwind(AssertUnwindSafe(|| match par {
            Some(par) => in_pool(par, f),
            None => f(),
        }))
    };
    if !long {
        return finish(py.detach(work), None);
    }
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel(1);
        s.spawn(move || {
            let _ = tx.send(work());
        });
        let mut interrupt: Option<PyErr> = None;
        let mut rx = rx;
        loop {
            let (back, got) = py.detach(move || {
                let got = rx.recv_timeout(SIGNAL_POLL);
                (rx, got)
            });
            rx = back;
            match got {
                Ok(result) => return finish(result, interrupt),
                Err(RecvTimeoutError::Timeout) => {
                    if interrupt.is_none() {
                        if let Err(e) = py.check_signals() {
                            cancel.store(true, Ordering::Relaxed);
                            interrupt = Some(e);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // The worker died without sending: only a panic while sending.
                    return Err(interrupt.unwrap_or_else(|| {
                        pyo3::exceptions::PyRuntimeError::new_err(
                            "outcore: internal error: the worker thread stopped",
                        )
                    }));
                }
            }
        }
    })
}

fn finish<R>(
    result: std::thread::Result<outcore::Result<R>>,
    interrupt: Option<PyErr>,
) -> PyResult<R> {
    if let Some(e) = interrupt {
        // Ctrl-C was pressed: whatever the work did, the interrupt is what Python sees
        // (a cancelled sort has removed its temporary files by now).
        return Err(e);
    }
    match result {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(to_py(e)),
        Err(payload) => Err(panic_to_py(payload)),
    }
}

/// `Err(Cancelled)` once `flag` is set: the check long loops make between steps.
pub fn check(flag: &AtomicBool) -> outcore::Result<()> {
    if flag.load(Ordering::Relaxed) {
        Err(outcore::Error::Cancelled)
    } else {
        Ok(())
    }
}
