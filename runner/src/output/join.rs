//! Masking across line ends: the lines of one pipe are also read as one stream joined without
//! their newlines, so a secret that `base64 -w 8`, `xxd -p` or `fold` wrapped over several
//! lines is masked on every line it touches.
//!
//! Every needle is at most [`Masker::longest_form`] bytes, so a match that crosses a line end
//! lies within the last `longest - 1` bytes before it and the first `longest - 1` after it.
//! A line already sent cannot be unsent: a line whose end may begin a needle (its tail is a
//! proper prefix of one, of at least [`HOLD_MIN`] bytes unless the line already masked
//! something) is held back until the following lines decide, or until
//! [`flush`](LineJoin::flush) — which the pipe reader calls when no more output comes within
//! [`HOLD_BACK`](super::HOLD_BACK), at a limit and at EOF.

use std::collections::VecDeque;

use crate::mask::{self, Masker};

/// A line that masked nothing is held only when this many bytes or more of its end may begin
/// a secret. Almost every single character, and many pairs, begin some window of a secret's
/// hex or base64: holding for those would delay most lines of a job by the next line's gap.
/// The price: the first one to three characters of a secret that begins at a line's end, after
/// ordinary text, go out unmasked (the rest of it is masked on the next lines).
pub const HOLD_MIN: usize = 4;

/// Lines held at most; more is only possible with many empty lines after a held one (an empty
/// line adds nothing to the joined stream), and then the oldest is sent as far as it is known.
const MAX_HELD: usize = 64;

/// One pipe's lines on their way out.
#[derive(Debug, Default)]
pub struct LineJoin {
    held: VecDeque<Held>,
    /// The last `longest - 1` bytes of the joined stream, sent or held.
    tail: Vec<u8>,
    /// Position in the joined stream just after `tail`.
    end: u64,
}

#[derive(Debug)]
struct Held {
    /// Position of the line's first byte in the joined stream.
    start: u64,
    bytes: Vec<u8>,
    /// Ranges to mask, within `bytes`, not yet merged.
    ranges: Vec<(usize, usize)>,
}

impl LineJoin {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether some line waits for what follows it.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes one line (without its newline); calls `emit` with every line whose masking is now
    /// final, in order.
    pub fn push(&mut self, line: &[u8], masker: &Masker, mut emit: impl FnMut(String)) {
        if masker.is_empty() {
            emit(String::from_utf8_lossy(line).into_owned());
            return;
        }
        let keep = masker.longest_form().saturating_sub(1);
        let mut own = masker.ranges(line);
        // Needles across the line end: the stream's tail joined to the line's head.
        let head = &line[..line.len().min(keep)];
        let mut junction = self.tail.clone();
        junction.extend_from_slice(head);
        let junction_start = self.end - self.tail.len() as u64;
        for (s, e) in masker.ranges(&junction) {
            if s >= self.tail.len() || e <= self.tail.len() {
                continue; // within one side: found there already
            }
            let (abs_s, abs_e) = (junction_start + s as u64, junction_start + e as u64);
            for h in &mut self.held {
                let h_end = h.start + h.bytes.len() as u64;
                if abs_s < h_end && abs_e > h.start {
                    let from = abs_s.saturating_sub(h.start) as usize;
                    let to = (abs_e.min(h_end) - h.start) as usize;
                    h.ranges.push((from, to));
                }
            }
            own.push((0, e - self.tail.len()));
        }
        let had_match = !own.is_empty();
        self.held.push_back(Held {
            start: self.end,
            bytes: line.to_vec(),
            ranges: own,
        });
        self.end += line.len() as u64;
        self.tail
            .extend_from_slice(&line[line.len().saturating_sub(keep)..]);
        let excess = self.tail.len().saturating_sub(keep);
        self.tail.drain(..excess);

        // The earliest position from which the stream may still go on into a needle. Nearly
        // any short ending can, so a line that masked nothing waits only for a long one.
        let continuing = (1..=self.tail.len())
            .rev()
            .find(|&n| masker.continues(&self.tail[self.tail.len() - n..]))
            .unwrap_or(0);
        let open_from = if continuing >= HOLD_MIN || had_match {
            self.end - continuing as u64
        } else {
            self.end
        };
        while let Some(h) = self.held.front() {
            let h_end = h.start + h.bytes.len() as u64;
            if h_end > open_from && self.held.len() <= MAX_HELD {
                break;
            }
            let h = self.held.pop_front().expect("front exists");
            emit(finish(h));
        }
    }

    /// Sends every held line as far as it is known. What follows is still checked against the
    /// stream's tail, so the part of a split secret on the next line is masked all the same.
    pub fn flush(&mut self, mut emit: impl FnMut(String)) {
        while let Some(h) = self.held.pop_front() {
            emit(finish(h));
        }
    }
}

fn finish(h: Held) -> String {
    let ranges = mask::merge(h.ranges);
    String::from_utf8_lossy(&mask::redact(&h.bytes, &ranges)).into_owned()
}
