//! Masking of sensitive input values in output: the plain value, its hex, URL-encoded and
//! base64 spellings (base64 at all three byte alignments, standard and URL-safe, padded or
//! not), and every run of [`WINDOW`] characters of any of these.
//!
//! Each spelling longer than [`WINDOW`] is looked for as its windows of [`WINDOW`] bytes, so a
//! fragment of a secret (`${PW:7}`, the hex of half of it) is found like the whole, and every
//! needle is at most [`WINDOW`] bytes long: a secret split across lines is found by looking at
//! the last `WINDOW - 1` bytes of one line joined to the next (see `output::join`).
//!
//! Every match, overlapping ones included, is replaced by [`REDACTED`]; overlapping matches
//! are merged first, so no fragment of one secret survives next to another.

use std::collections::HashSet;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use outfitter_contract::job::REDACTED;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// A derived form (URL, hex or base64) shorter than this is not masked: it would hide
/// ordinary text. Plain values are masked whatever their length.
pub const MIN_DERIVED_LEN: usize = 4;

/// Any run of this many bytes of a secret or of one of its spellings is masked: long enough
/// that ordinary text does not hit it by chance, short enough to catch `${PW:7}`.
pub const WINDOW: usize = 8;

/// A secret that begins a piece of an over-long line is kept whole in it up to this many bytes
/// beyond the line cap.
const WHOLE_LIMIT: usize = 256;

/// RFC 3986 unreserved characters stay as they are in most URL encoders.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Finds and hides the sensitive values of one job.
#[derive(Debug, Clone)]
pub struct Masker {
    matcher: Option<AhoCorasick>,
    /// Every proper prefix of a needle: text ending in one may go on into a secret.
    prefixes: Arc<HashSet<Vec<u8>>>,
    longest: usize,
}

impl Masker {
    /// A masker that hides nothing.
    pub fn none() -> Self {
        Masker {
            matcher: None,
            prefixes: Arc::default(),
            longest: 0,
        }
    }

    /// A masker for these values (empty values are ignored).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for value in values.into_iter().filter(|v| !v.is_empty()) {
            for form in forms_of(value) {
                if form.len() <= WINDOW {
                    needles.push(form);
                } else {
                    needles.extend(form.windows(WINDOW).map(<[u8]>::to_vec));
                }
            }
        }
        needles.sort();
        needles.dedup();
        if needles.is_empty() {
            return Self::none();
        }
        let longest = needles.iter().map(Vec::len).max().unwrap_or(0);
        let prefixes = needles
            .iter()
            .flat_map(|n| (1..n.len()).map(|l| n[..l].to_vec()))
            .collect();
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&needles)
            .expect("literal patterns of bounded size always build");
        Masker {
            matcher: Some(matcher),
            prefixes: Arc::new(prefixes),
            longest,
        }
    }

    /// Whether this masker hides anything at all.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// The longest byte string this masker looks for (0 when it hides nothing; at most
    /// [`WINDOW`]).
    pub fn longest_form(&self) -> usize {
        self.longest
    }

    /// Whether `tail` is the beginning of something this masker looks for (so the text that
    /// follows it decides whether it is masked).
    pub fn continues(&self, tail: &[u8]) -> bool {
        self.prefixes.contains(tail)
    }

    /// Byte ranges to hide in `text`, merged and sorted.
    pub fn ranges(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let Some(m) = &self.matcher else {
            return Vec::new();
        };
        merge(
            m.find_overlapping_iter(text)
                .map(|x| (x.start(), x.end()))
                .collect(),
        )
    }

    /// `text` with every sensitive form replaced.
    pub fn mask_bytes(&self, text: &[u8]) -> Vec<u8> {
        redact(text, &self.ranges(text))
    }

    /// `text` as UTF-8 (invalid bytes replaced) with every sensitive form replaced.
    pub fn mask_line(&self, text: &[u8]) -> String {
        String::from_utf8_lossy(&self.mask_bytes(text)).into_owned()
    }

    /// Masks a string (for texts that did not come from a pipe, such as error messages).
    pub fn mask_str(&self, text: &str) -> String {
        self.mask_line(text.as_bytes())
    }

    /// Where to split `buf` so that the piece before the cut is at most `cap` bytes long when
    /// possible, no sensitive form is cut in two, and no UTF-8 character is split. Only the
    /// first `cap + WHOLE_LIMIT` bytes are looked at. The result is > 0.
    ///
    /// Keeping a secret whole in one piece is for readability only: a cut through one is still
    /// masked on both sides, like a secret split across lines.
    pub fn safe_cut(&self, buf: &[u8], cap: usize) -> usize {
        let seen = &buf[..buf.len().min(cap.saturating_add(WHOLE_LIMIT))];
        let mut cut = char_start(buf, cap.min(buf.len()).max(1));
        for (s, e) in self.ranges(seen) {
            if s < cut && cut < e {
                // Cut before the form; if it starts the buffer, after it (a piece grows by at
                // most `WHOLE_LIMIT` beyond the cap).
                cut = if s > 0 {
                    char_start(buf, s)
                } else {
                    char_end(buf, e)
                };
                break;
            }
        }
        cut
    }
}

/// `at`, moved back to the start of the UTF-8 character it is in (never to 0).
fn char_start(buf: &[u8], at: usize) -> usize {
    let mut back = 0;
    while at - back > 1 && back < 3 && buf.get(at - back).is_some_and(|b| b & 0xC0 == 0x80) {
        back += 1;
    }
    if buf.get(at - back).is_some_and(|b| b & 0xC0 != 0x80) {
        at - back
    } else {
        at
    }
}

/// `at`, moved on to the end of the UTF-8 character it is in.
fn char_end(buf: &[u8], mut at: usize) -> usize {
    let limit = (at + 3).min(buf.len());
    while at < limit && buf[at] & 0xC0 == 0x80 {
        at += 1;
    }
    at
}

/// Sorts `found` and merges overlapping or touching ranges.
pub fn merge(mut found: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    found.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
    for (s, e) in found {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// `text` with each of the merged, sorted `ranges` replaced by [`REDACTED`].
pub fn redact(text: &[u8], ranges: &[(usize, usize)]) -> Vec<u8> {
    if ranges.is_empty() {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for &(s, e) in ranges {
        out.extend_from_slice(&text[at..s]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = e;
    }
    out.extend_from_slice(&text[at..]);
    out
}

/// Every spelling of one value that the masker looks for.
fn forms_of(value: &str) -> Vec<Vec<u8>> {
    let mut forms = vec![value.as_bytes().to_vec()];
    // A multi-line value printed line by line is seen joined (see `output::join`).
    if value.contains(['\r', '\n']) {
        forms.push(value.replace(['\r', '\n'], "").into_bytes());
    }
    let mut derived: Vec<String> = Vec::new();
    for set in [NON_ALPHANUMERIC, COMPONENT] {
        let upper = utf8_percent_encode(value, set).to_string();
        derived.push(upper.replace("%20", "+"));
        derived.push(lower_hex_escapes(&upper));
        derived.push(lower_hex_escapes(&upper).replace("%20", "+"));
        derived.push(upper);
    }
    // Some encoders escape every byte.
    let every_byte: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
    derived.push(every_byte.to_ascii_lowercase());
    derived.push(every_byte);
    derived.push(hex::encode(value));
    derived.push(hex::encode_upper(value));
    derived.extend(base64_forms(value.as_bytes()));
    for d in derived {
        if d.len() >= MIN_DERIVED_LEN && d != value {
            forms.push(d.into_bytes());
        }
    }
    forms
}

fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&esc.to_ascii_lowercase());
        rest = &rest[i + esc.len()..];
    }
    out.push_str(rest);
    out
}

/// The base64 encodings of `value` on its own (padded and not) and the ends of those of its
/// prefixes and suffixes, and the part of its encoding
/// that does not depend on its neighbours for each of the three offsets (mod 3) at which it
/// can start inside a larger encoded blob.
fn base64_forms(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(value));
        // A fragment's own encoding ends in a character that also carries filler bits, which
        // no alignment of the whole has: the last window of each prefix's and suffix's.
        for n in 1..value.len() {
            for part in [&value[..n], &value[n..]] {
                let enc = engine.encode(part);
                if enc.len() >= WINDOW {
                    out.push(enc[enc.len() - WINDOW..].to_owned());
                }
            }
        }
    }
    for shift in 0..3usize {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(value);
        let total_bits = padded.len() * 8;
        // Skip characters that carry bits of the leading filler, and the last character if it
        // carries bits of whatever follows.
        let first = (shift * 8).div_ceil(6);
        let last = total_bits / 6;
        if last <= first {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let enc = engine.encode(&padded);
            out.push(enc[first..last].to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    const SECRET: &str = "s3cr3t pa$$/word";

    #[test]
    fn plain_value_is_masked() {
        let m = Masker::new([SECRET]);
        assert_eq!(
            m.mask_str(&format!("pw={SECRET}!")),
            format!("pw={REDACTED}!")
        );
    }

    #[test]
    fn url_encoded_values_are_masked() {
        let m = Masker::new([SECRET]);
        for enc in [
            "s3cr3t%20pa%24%24%2Fword",
            "s3cr3t+pa%24%24%2Fword",
            "s3cr3t%20pa%24%24%2fword",
            "%73%33%63%72%33%74%20%70%61%24%24%2f%77%6f%72%64",
        ] {
            assert_eq!(
                m.mask_str(&format!("u={enc}")),
                format!("u={REDACTED}"),
                "{enc}"
            );
        }
    }

    #[test]
    fn base64_at_every_offset_is_masked() {
        let m = Masker::new([SECRET]);
        for prefix in ["", "a", "ab", "abc", "user:"] {
            let blob = STANDARD.encode(format!("{prefix}{SECRET}tail"));
            let masked = m.mask_str(&blob);
            assert!(
                masked.contains(REDACTED),
                "prefix {prefix:?}: {blob} -> {masked}"
            );
            // What is left cannot spell the secret's encoding any more.
            let aligned = &STANDARD_NO_PAD.encode(SECRET)[..8];
            assert!(!masked.contains(aligned), "{masked}");
        }
    }

    #[test]
    fn overlapping_secrets_are_merged() {
        let m = Masker::new(["abcd", "cdef"]);
        assert_eq!(m.mask_str("xabcdefx"), format!("x{REDACTED}x"));
    }

    #[test]
    fn nothing_to_mask_leaves_text_alone() {
        let m = Masker::new(Vec::<&str>::new());
        assert_eq!(m.mask_str("hello"), "hello");
        assert_eq!(m.longest_form(), 0);
    }

    #[test]
    fn cut_never_splits_a_secret() {
        let m = Masker::new([SECRET]);
        let line = format!("{}{SECRET}{}", "x".repeat(10), "y".repeat(40));
        let cut = m.safe_cut(line.as_bytes(), 14);
        assert_eq!(cut, 10, "cut moves before the secret");
        let line = format!("{SECRET}{}", "y".repeat(40));
        assert_eq!(
            m.safe_cut(line.as_bytes(), 4),
            SECRET.len(),
            "a secret at the start is kept whole"
        );
    }

    #[test]
    fn cut_never_splits_a_utf8_character() {
        let m = Masker::none();
        let line = "aé€x".as_bytes(); // a(1) é(2) €(3) x(1)
        assert_eq!(m.safe_cut(line, 2), 1);
        assert_eq!(m.safe_cut(line, 4), 3);
        assert_eq!(m.safe_cut(line, 6), 6);
        assert_eq!(m.safe_cut(b"abc", 10), 3);
    }
}
