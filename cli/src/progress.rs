//! Progress bars on stderr, drawn only when stderr is a terminal and `--quiet` is not given,
//! so that pipes, logs and tests see only the results.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use outcore::sort::{Phase, SortOptions};

/// Whether progress is shown: the tool's `--quiet` and whether stderr is a terminal.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    show: bool,
}

impl Ui {
    /// Progress is drawn unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Ui {
        Ui {
            show: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// Whether bars are drawn.
    pub fn shows_progress(&self) -> bool {
        self.show
    }

    /// A byte-counting bar of `total` bytes labelled `what` (hidden when progress is off).
    pub fn bytes_bar(&self, what: &str, total: u64) -> ProgressBar {
        if !self.show {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>16} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar
    }

    /// One bar per phase of an external sort, replaced when the phase changes.
    pub fn sort_bars(&self, opts: &mut SortOptions) {
        if !self.show {
            return;
        }
        let ui = *self;
        let state: Arc<Mutex<Option<(Phase, ProgressBar)>>> = Arc::default();
        opts.progress(move |phase, done, total| {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            if s.as_ref().map(|(p, _)| *p) != Some(phase) {
                if let Some((_, bar)) = s.take() {
                    bar.finish();
                }
                *s = Some((phase, ui.bytes_bar(&phase.to_string(), total)));
            }
            if let Some((_, bar)) = s.as_ref() {
                bar.set_position(done);
                if done >= total {
                    bar.finish();
                }
            }
        });
    }
}
