//! A file growing at a steady rate, for time-to-full trends: 128 KiB every
//! 200 ms (~640 KiB/s), synced, on its own thread, until stopped or
//! `max_chunks` are written.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Grows `file` until [`Filler::stop`] (or drop).
pub struct Filler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Filler {
    /// Starts writing to a new `file`; at most `max_chunks` × 128 KiB.
    pub fn start(file: PathBuf, max_chunks: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut f = std::fs::File::create(&file).expect("create");
                let chunk = vec![b'x'; 128 * 1024];
                for _ in 0..max_chunks {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    f.write_all(&chunk).expect("write");
                    f.sync_data().expect("sync");
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops writing and waits for the writer.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("writer");
        }
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        self.halt();
    }
}
