//! Splits a byte stream into lines of bounded length without ever holding more than one cap
//! (plus a masking look-ahead and one chunk) in memory.

use crate::mask::Masker;

/// Turns chunks into lines; a line longer than the cap is split into pieces.
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    cap: usize,
}

impl LineSplitter {
    pub fn new(cap: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            scanned: 0,
            cap,
        }
    }

    /// Feeds a chunk; calls `emit` with every complete line (without its newline, and without
    /// a trailing `\r`) and every piece of an over-long line.
    pub fn push(&mut self, chunk: &[u8], masker: &Masker, mut emit: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(chunk);
        let window = self.cap + masker.longest_form();
        let mut start = 0;
        loop {
            let from = self.scanned.max(start);
            match self.buf[from..].iter().position(|&b| b == b'\n') {
                Some(i) if from + i - start <= window => {
                    let end = from + i;
                    let line = &self.buf[start..end];
                    emit_line(line, self.cap, masker, &mut emit);
                    start = end + 1;
                    self.scanned = start;
                }
                found => {
                    if found.is_none() {
                        self.scanned = self.buf.len();
                    }
                    // No newline close enough: cut pieces while a full window is buffered.
                    if self.buf.len() - start >= window || found.is_some() {
                        let cut = masker.safe_cut(&self.buf[start..], self.cap);
                        emit(&self.buf[start..start + cut]);
                        start += cut;
                        self.scanned = self.scanned.max(start);
                        continue;
                    }
                    break;
                }
            }
        }
        self.buf.drain(..start);
        self.scanned -= start;
    }

    /// Emits what is left (a last line without newline).
    pub fn finish(&mut self, masker: &Masker, mut emit: impl FnMut(&[u8])) {
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        if !rest.is_empty() {
            emit_line(&rest, self.cap, masker, &mut emit);
        }
    }

    /// Bytes held right now (for tests of the memory bound).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Emits one complete line, split into pieces of at most `cap` (secrets kept whole).
fn emit_line(line: &[u8], cap: usize, masker: &Masker, emit: &mut impl FnMut(&[u8])) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut rest = line;
    while rest.len() > cap {
        let cut = masker.safe_cut(rest, cap);
        emit(&rest[..cut]);
        rest = &rest[cut..];
    }
    emit(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], cap: usize, masker: &Masker) -> Vec<String> {
        let mut s = LineSplitter::new(cap);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, masker, |l| {
                out.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        s.finish(masker, |l| {
            out.push(String::from_utf8_lossy(l).into_owned())
        });
        out
    }

    #[test]
    fn lines_are_split_on_newlines_across_chunks() {
        let out = split(&[b"ab", b"c\nde", b"f\r\n\ng"], 100, &Masker::none());
        assert_eq!(out, ["abc", "def", "", "g"]);
    }

    #[test]
    fn long_line_is_cut_into_pieces_of_the_cap() {
        let line = "x".repeat(25);
        let out = split(&[line.as_bytes(), b"\nend"], 10, &Masker::none());
        assert_eq!(
            out,
            ["x".repeat(10), "x".repeat(10), "x".repeat(5), "end".into()]
        );
    }

    #[test]
    fn endless_line_keeps_the_buffer_bounded() {
        let mut s = LineSplitter::new(1024);
        let chunk = vec![b'a'; 64 * 1024];
        let mut pieces = 0usize;
        for _ in 0..100 {
            s.push(&chunk, &Masker::none(), |l| {
                assert!(l.len() <= 1024);
                pieces += 1;
            });
            assert!(s.buffered() < 1024, "held {}", s.buffered());
        }
        assert_eq!(pieces, 100 * 64);
    }

    #[test]
    fn a_secret_on_a_cut_is_still_masked_whole() {
        let m = Masker::new(["topsecret"]);
        let line = format!("{}topsecret{}\n", "a".repeat(6), "b".repeat(20));
        let out = split(&[line.as_bytes()], 10, &m);
        assert!(
            out.iter()
                .all(|l| !l.contains("top") || l.contains("topsecret")),
            "{out:?}"
        );
        assert!(out.iter().any(|l| l.starts_with("topsecret")), "{out:?}");
    }
}
