//! Reads one pipe to its end: chunks → lines → masked → channel, within the output budget.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use outfitter_contract::event::OutputStream;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::{HOLD_BACK, LineJoin, LineSplitter, OutputLine, READ_CHUNK_BYTES};
use crate::mask::Masker;

/// State both pipe readers of one attempt share.
#[derive(Debug)]
pub struct OutputShared {
    masker: Masker,
    line_cap: usize,
    max_bytes: u64,
    /// Bytes read from both pipes, stored or not.
    total: AtomicU64,
    /// Bytes admitted into lines.
    admitted: AtomicU64,
    marker_sent: AtomicBool,
    /// Per pipe (stdout, stderr): since when its reader waits for data, in ms after `base`;
    /// [`BUSY`] while it hands lines on, [`DONE`] after EOF.
    waiting_since: [AtomicU64; 2],
    base: Instant,
    /// The consumer; `None` once the attempt is over and late output is discarded.
    gate: Mutex<Option<mpsc::Sender<OutputLine>>>,
}

impl OutputShared {
    pub fn new(
        masker: Masker,
        line_cap: usize,
        max_bytes: u64,
        tx: mpsc::Sender<OutputLine>,
    ) -> Self {
        OutputShared {
            masker,
            line_cap,
            max_bytes,
            total: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            marker_sent: AtomicBool::new(false),
            waiting_since: [AtomicU64::new(BUSY), AtomicU64::new(BUSY)],
            base: Instant::now(),
            gate: Mutex::new(Some(tx)),
        }
    }

    /// From now on output is read and thrown away (processes left running after the attempt
    /// must not block on a full pipe nor die of SIGPIPE); the consumer's channel closes once
    /// in-flight sends are done.
    pub fn detach(&self) {
        self.gate.lock().expect("gate lock").take();
    }

    /// How long every pipe still open has been waiting for data: `None` while a reader is
    /// handing lines on (the consumer is slow, not the pipe), `Duration::MAX` when all are at
    /// EOF. The drain grace is measured with this, so slow delivery never loses lines.
    pub fn idle_for(&self) -> Option<Duration> {
        let now = self.base.elapsed().as_millis() as u64;
        let mut idle = Duration::MAX;
        for slot in &self.waiting_since {
            match slot.load(Ordering::Relaxed) {
                BUSY => return None,
                DONE => {}
                since => idle = idle.min(Duration::from_millis(now.saturating_sub(since))),
            }
        }
        Some(idle)
    }

    fn set_waiting(&self, stream: OutputStream, value: u64) {
        let slot = if stream == OutputStream::Stderr { 1 } else { 0 };
        self.waiting_since[slot].store(value, Ordering::Relaxed);
    }

    /// Masks a text that did not come through the pipes (a survivor's command line).
    pub fn mask(&self, text: &str) -> String {
        self.masker.mask_str(text)
    }

    /// Bytes read from both pipes so far.
    pub fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Bytes read but not stored because the cap was reached.
    pub fn discarded_bytes(&self) -> u64 {
        self.total_bytes()
            .saturating_sub(self.admitted.load(Ordering::Relaxed))
    }

    /// How many of `n` new bytes still fit under the cap.
    fn admit(&self, n: usize) -> usize {
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        let mut granted = 0;
        let _ = self
            .admitted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                granted = self.max_bytes.saturating_sub(used).min(n as u64);
                Some(used + granted)
            });
        granted as usize
    }

    async fn send(&self, line: OutputLine) {
        let tx = self.gate.lock().expect("gate lock").clone();
        if let Some(tx) = tx {
            // A closed channel means nobody listens any more: the line is dropped.
            let _ = tx.send(line).await;
        }
    }

    async fn send_all(&self, stream: OutputStream, texts: Vec<String>) {
        for text in texts {
            self.send(OutputLine { stream, text }).await;
        }
    }
}

const BUSY: u64 = u64::MAX;
const DONE: u64 = u64::MAX - 1;

/// Reads `pipe` until EOF. Memory held: one chunk, one line window, one chunk's worth of lines.
pub async fn pump<R: AsyncRead + Unpin>(mut pipe: R, stream: OutputStream, shared: &OutputShared) {
    let masker = &shared.masker;
    let mut splitter = LineSplitter::new(shared.line_cap);
    let mut join = LineJoin::new();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    let mut capped = false;
    loop {
        let since = shared.base.elapsed().as_millis() as u64;
        shared.set_waiting(stream, since);
        let read = if join.holding() {
            match tokio::time::timeout(HOLD_BACK, pipe.read(&mut chunk)).await {
                Ok(read) => read,
                Err(_) => {
                    // Nothing followed in time: the held lines go out as far as they are known.
                    shared.set_waiting(stream, BUSY);
                    let mut texts = Vec::new();
                    join.flush(|t| texts.push(t));
                    shared.send_all(stream, texts).await;
                    shared.set_waiting(stream, since);
                    pipe.read(&mut chunk).await
                }
            }
        } else {
            pipe.read(&mut chunk).await
        };
        shared.set_waiting(stream, BUSY);
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let granted = shared.admit(n);
        let mut texts = Vec::new();
        if granted > 0 {
            splitter.push(&chunk[..granted], masker, |l| {
                join.push(l, masker, |t| texts.push(t))
            });
        }
        if granted < n && !capped {
            capped = true;
            splitter.finish(masker, |l| join.push(l, masker, |t| texts.push(t)));
            join.flush(|t| texts.push(t));
            shared.send_all(stream, std::mem::take(&mut texts)).await;
            if !shared.marker_sent.swap(true, Ordering::Relaxed) {
                let note = format!(
                    "[outfitter] output limit of {} bytes reached; further output of this attempt is discarded",
                    shared.max_bytes
                );
                shared.send(OutputLine::runner(note)).await;
            }
        }
        shared.send_all(stream, texts).await;
    }
    let mut texts = Vec::new();
    splitter.finish(masker, |l| join.push(l, masker, |t| texts.push(t)));
    join.flush(|t| texts.push(t));
    shared.send_all(stream, texts).await;
    shared.set_waiting(stream, DONE);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(input: Vec<u8>, max: u64) -> (Vec<OutputLine>, u64) {
        let (tx, mut rx) = mpsc::channel(16);
        let shared = OutputShared::new(Masker::new(["pw123456"]), 64, max, tx);
        let reader = async {
            pump(&input[..], OutputStream::Stdout, &shared).await;
            shared.detach();
        };
        let consumer = async {
            let mut out = Vec::new();
            while let Some(l) = rx.recv().await {
                out.push(l);
            }
            out
        };
        let ((), out) = tokio::join!(reader, consumer);
        (out, shared.discarded_bytes())
    }

    #[tokio::test]
    async fn lines_are_masked_and_the_last_one_needs_no_newline() {
        let (out, discarded) = collect(b"a pw123456 b\nlast".to_vec(), 1000).await;
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a ******** b", "last"]);
        assert_eq!(discarded, 0);
    }

    #[tokio::test]
    async fn an_open_silent_pipe_is_idle_but_a_blocked_consumer_is_not() {
        // stdout stays open and silent; stderr has more lines than the channel holds.
        let (_writer, silent) = tokio::io::duplex(64);
        let (tx, mut rx) = mpsc::channel(1);
        let shared = std::sync::Arc::new(OutputShared::new(Masker::none(), 64, 1 << 20, tx));
        let (a, b) = (shared.clone(), shared.clone());
        let out = tokio::spawn(async move { pump(silent, OutputStream::Stdout, &a).await });
        let err =
            tokio::spawn(async move { pump(&b"1\n2\n3\n4\n"[..], OutputStream::Stderr, &b).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            shared.idle_for(),
            None,
            "stderr's reader is handing lines on"
        );
        while rx.try_recv().is_ok() || !err.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let idle = shared.idle_for().expect("only a silent open pipe is left");
        assert!(
            idle >= Duration::from_millis(40) && idle < Duration::MAX,
            "{idle:?}"
        );
        out.abort();
    }

    #[tokio::test]
    async fn a_split_secret_is_masked_on_both_lines_and_a_held_line_waits_only_briefly() {
        use tokio::io::AsyncWriteExt;
        let (mut script, pipe) = tokio::io::duplex(1024);
        let (tx, mut rx) = mpsc::channel(16);
        let shared = std::sync::Arc::new(OutputShared::new(
            Masker::new(["pw123456"]),
            64,
            1 << 20,
            tx,
        ));
        let s = shared.clone();
        let reader = tokio::spawn(async move { pump(pipe, OutputStream::Stdout, &s).await });
        script.write_all(b"first pw12\n").await.unwrap();
        script.write_all(b"3456 second.\n").await.unwrap();
        let a = rx.recv().await.unwrap().text;
        let b = rx.recv().await.unwrap().text;
        assert_eq!([a, b], ["first ********", "******** second."]);
        // `pw12` may begin the secret: the line waits for the next, but not longer than
        // HOLD_BACK while the pipe stays open and silent.
        let written = Instant::now();
        script.write_all(b"waiting pw12\n").await.unwrap();
        let held = rx.recv().await.unwrap();
        assert_eq!(held.text, "waiting pw12");
        let waited = written.elapsed();
        assert!(
            waited >= HOLD_BACK - Duration::from_millis(5) && waited < HOLD_BACK * 20,
            "{waited:?}"
        );
        drop(script);
        reader.await.unwrap();
    }

    #[tokio::test]
    async fn output_past_the_cap_is_discarded_behind_one_marker() {
        let input = "0123456789\n".repeat(100).into_bytes();
        let (out, discarded) = collect(input, 55).await;
        assert_eq!(
            out.iter()
                .filter(|l| l.stream == OutputStream::Stdout)
                .count(),
            5
        );
        let markers: Vec<_> = out
            .iter()
            .filter(|l| l.stream == OutputStream::Runner)
            .collect();
        assert_eq!(markers.len(), 1);
        assert!(markers[0].text.contains("55 bytes"));
        assert_eq!(discarded, 1100 - 55);
    }
}
