//! The runner's output path (line splitter, cap, cross-line masker) with a secret printed in
//! one of its spellings, cut into lines at columns the fuzzer picks, under a line cap and in
//! read chunks it picks. Property: nothing of the spelling passes — the lines joined, with the
//! masks taken out, are the `#` frame printed around it and at most the spelling's first
//! `HOLD_MIN - 1` characters (where it begins at a line's end after ordinary text).
//!
//! Input: `[spelling, cap, chunk, secret_len, secret…, cuts…]`; each cut byte is a column of
//! the spelling where a newline goes (`\r\n` when odd).
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use outfitter_contract::job::REDACTED;
use outfitter_runner::mask::{MIN_DERIVED_LEN, Masker, WINDOW};
use outfitter_runner::output::{HOLD_MIN, LineJoin, LineSplitter};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

const FRAME: &str = "##";

fn spelling(which: u8, secret: &str) -> Option<String> {
    let s = match which % 12 {
        0 => secret.to_owned(),
        1 => hex::encode(secret),
        2 => hex::encode_upper(secret),
        3 => STANDARD.encode(secret),
        4 => STANDARD_NO_PAD.encode(secret),
        5 => URL_SAFE.encode(secret),
        6 => URL_SAFE_NO_PAD.encode(secret),
        7 => utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        8 => utf8_percent_encode(secret, NON_ALPHANUMERIC)
            .to_string()
            .replace("%20", "+"),
        // A fragment of WINDOW or more characters (`${PW:7}`), plain or in hex or base64.
        n => {
            let chars: Vec<char> = secret.chars().collect();
            if chars.len() <= WINDOW {
                return None;
            }
            let part: String = chars[chars.len() - WINDOW - (chars.len() - WINDOW) / 2..]
                .iter()
                .collect();
            match n {
                9 => part,
                10 => hex::encode(&part),
                _ => STANDARD.encode(&part),
            }
        }
    };
    // Short derived forms are deliberately not masked (they would hide ordinary text).
    (which % 12 == 0 || which % 12 == 9 || s.len() >= MIN_DERIVED_LEN).then_some(s)
}

fuzz_target!(|data: &[u8]| {
    let [which, cap, chunk, len, rest @ ..] = data else {
        return;
    };
    let len = (*len as usize).min(rest.len());
    let (secret, cuts) = rest.split_at(len);
    let Ok(secret) = std::str::from_utf8(secret) else {
        return;
    };
    // `#` frames the spelling; a secret with line breaks is a different case (docs/runner.md).
    if secret.is_empty() || secret.contains(['#', '\n', '\r']) {
        return;
    }
    let Some(spelled) = spelling(*which, secret) else {
        return;
    };
    let mut cut_at: Vec<(usize, bool)> = cuts
        .iter()
        .map(|&c| ((c as usize >> 1) % spelled.len(), c & 1 == 1))
        .filter(|&(c, _)| c > 0 && spelled.is_char_boundary(c))
        .collect();
    cut_at.sort();
    cut_at.dedup_by_key(|c| c.0);
    let mut input = FRAME.to_owned();
    let mut at = 0;
    for (c, crlf) in cut_at {
        input.push_str(&spelled[at..c]);
        input.push_str(if crlf { "\r\n" } else { "\n" });
        at = c;
    }
    input.push_str(&spelled[at..]);
    input.push_str(FRAME);
    input.push('\n');

    let masker = Masker::new([secret]);
    let cap = 1 + *cap as usize * 4;
    let chunk = 1 + *chunk as usize % 64;
    let mut splitter = LineSplitter::new(cap);
    let mut join = LineJoin::new();
    let mut out = Vec::new();
    for piece in input.as_bytes().chunks(chunk) {
        splitter.push(piece, &masker, |l| join.push(l, &masker, |t| out.push(t)));
    }
    splitter.finish(&masker, |l| join.push(l, &masker, |t| out.push(t)));
    join.flush(|t| out.push(t));
    let rest = out.concat().replace(REDACTED, "");
    // At most the first HOLD_MIN - 1 characters, where the spelling begins at a line's end
    // after ordinary text (runner/src/output/join.rs).
    let left = rest
        .strip_prefix(FRAME)
        .and_then(|r| r.strip_suffix(FRAME))
        .unwrap_or(&rest);
    assert!(
        left.len() < HOLD_MIN && spelled.starts_with(left),
        "secret {secret:?} spelled {spelled:?} printed as {input:?} came out as {out:?}"
    );
});
