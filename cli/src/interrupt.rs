//! Ctrl-C: the first SIGINT (or SIGTERM) sets a flag that long operations check between
//! steps, so they stop promptly, remove their temporary files and exit with status 130; a
//! second SIGINT exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{CliError, Result};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The flag SIGINT and SIGTERM set, with the handlers installed on first use. Hand it to
/// the library (`SortOptions::cancel_flag`) or poll it with [`check`].
pub fn flag() -> Arc<AtomicBool> {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registered first, so it sees the flag as it was before this signal: the
            // second signal finds it set and exits at once.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone());
            let _ = signal_hook::flag::register(sig, flag.clone());
        }
        flag
    })
    .clone()
}

/// `Err(Cancelled)` once SIGINT or SIGTERM arrived.
pub fn check() -> Result<()> {
    if flag().load(Ordering::Relaxed) {
        Err(CliError::Cancelled)
    } else {
        Ok(())
    }
}
