//! Progress bars for long steps (a large snapshot written by a migration or
//! a checkpoint): shown on stderr, if it is a terminal, once a step has
//! taken a second; short steps print nothing beyond their summary line.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::time::{Duration, Instant};

/// How long a step runs before its progress bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A writer that counts what passes through into a progress bar.
pub struct Progress<W: Write> {
    inner: W,
    bar: ProgressBar,
    started: Instant,
    shown: bool,
}

impl<W: Write> Progress<W> {
    /// `total`: the bytes expected; `what`: the step, e.g. "writing the snapshot".
    pub fn new(inner: W, total: u64, what: &str) -> Progress<W> {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "hcontainer: {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        Progress {
            inner,
            bar,
            started: Instant::now(),
            shown: false,
        }
    }

    /// The writer back, the bar cleared.
    pub fn finish(self) -> W {
        self.bar.finish_and_clear();
        self.inner
    }
}

impl<W: Write> Write for Progress<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        if !self.shown && self.started.elapsed() >= SHOW_AFTER {
            // indicatif draws nothing when stderr is not a terminal.
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_every_byte_through_and_counts_it() {
        let mut p = Progress::new(Vec::new(), 10, "test");
        p.write_all(b"hello").unwrap();
        p.write_all(b"world").unwrap();
        assert_eq!(p.bar.position(), 10);
        assert_eq!(p.finish(), b"helloworld");
    }
}
