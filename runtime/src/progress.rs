//! Progress bars for long steps (a large dump written by the source, a
//! checkpoint): shown on stderr, if it is a terminal, once a step has taken
//! a second; short steps print nothing beyond their summary line.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

/// A hidden bar of `total` bytes for the step `what`.
fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template(
            "hcontainer: {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A file another process writes (the source's dump), watched from a
/// thread: its size drives a progress bar until the watch is dropped.
pub struct FileWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileWatch {
    pub fn start(path: PathBuf, total: u64, what: &str) -> FileWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let bar = bar(total, what);
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut shown = false;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if let Ok(m) = std::fs::metadata(&path) {
                    bar.set_position(m.len().min(total));
                }
                if !shown && started.elapsed() >= SHOW_AFTER {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                    shown = true;
                }
            }
            bar.finish_and_clear();
        });
        FileWatch {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<W: Write> Progress<W> {
    /// `total`: the bytes expected; `what`: the step, e.g. "writing the checkpoint".
    pub fn new(inner: W, total: u64, what: &str) -> Progress<W> {
        let bar = bar(total, what);
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

    #[test]
    fn a_watched_file_moves_its_bar_and_the_watch_ends_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("dump");
        std::fs::write(&f, [0u8; 300]).unwrap();
        let w = FileWatch::start(f, 1000, "test");
        std::thread::sleep(Duration::from_millis(250));
        drop(w); // joins the thread: a watch never outlives its step
    }
}
