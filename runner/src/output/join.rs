//! Masking across line ends: the lines of one pipe are also read as one stream joined without
//! their newlines, so a secret that `base64 -w 8`, `xxd -p` or `fold` wrapped over several
//! lines is masked on every line it touches.
//!
//! Every needle is at most [`Masker::longest_form`] bytes, so a match that crosses a line end
//! lies within the last `longest - 1` bytes before it and the first `longest - 1` after it.
//! A line already sent cannot be unsent: a line whose end may begin a needle (its tail is a
//! proper prefix of one, of at least [`HOLD_MIN`] bytes unless the line or that prefix already
//! masked something) is held back until the following lines decide, or until
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
    /// Position in the joined stream just after the last byte masked so far.
    masked_end: u64,
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
        if let Some(e) = own.iter().map(|&(_, e)| e).max() {
            self.masked_end = self.masked_end.max(self.end + e as u64);
        }
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
        // any short ending can, so a line that masked nothing waits only for a long one — or
        // for a short one that covers masked bytes: that one is inside a spelling, and the
        // lines it spans would otherwise go out between masked parts of it (`UQ==` of the
        // secret `Q`, one character per line, leaked its `=`).
        let continuing = (1..=self.tail.len())
            .rev()
            .find(|&n| masker.continues(&self.tail[self.tail.len() - n..]))
            .unwrap_or(0);
        let open_from = self.end - continuing as u64;
        let open_from = if continuing >= HOLD_MIN || had_match || self.masked_end > open_from {
            open_from
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

#[cfg(test)]
mod tests {
    use outfitter_contract::job::REDACTED;

    use super::*;

    fn pushed(join: &mut LineJoin, masker: &Masker, line: &str) -> Vec<String> {
        let mut out = Vec::new();
        join.push(line.as_bytes(), masker, |t| out.push(t));
        out
    }

    #[test]
    fn one_byte_secret_in_base64_one_char_per_line_is_masked_after_its_first_char() {
        // `Q` is masked on its own and `UQ==` across the lines; the `=` between them must
        // wait for the second `=` instead of going out while the spelling is incomplete.
        let m = Masker::new(["Q"]);
        let mut join = LineJoin::new();
        assert_eq!(pushed(&mut join, &m, "##U"), ["##U"], "the HOLD_MIN price");
        assert!(pushed(&mut join, &m, "Q").is_empty());
        assert!(pushed(&mut join, &m, "=").is_empty(), "held inside `UQ==`");
        assert_eq!(
            pushed(&mut join, &m, "=##"),
            [
                REDACTED.to_owned(),
                REDACTED.to_owned(),
                format!("{REDACTED}##")
            ]
        );
        assert!(!join.holding());
    }

    #[test]
    fn masked_bytes_outside_the_unfinished_prefix_do_not_hold_a_short_tail() {
        // Only a prefix that covers masked bytes holds; an ordinary line after a masked one
        // whose short ending merely may begin a spelling goes out at once.
        let m = Masker::new(["Q"]);
        let mut join = LineJoin::new();
        assert_eq!(
            pushed(&mut join, &m, "Q done"),
            [format!("{REDACTED} done")]
        );
        assert_eq!(pushed(&mut join, &m, "next U"), ["next U"]);
        assert!(!join.holding());
    }
}
