//! Every spelling of a 24-character secret is masked wherever the output is cut: at every
//! column across two lines, wrapped at several widths, cut by the line cap, fed in chunks of
//! any size. The lines go through the runner's own splitter and cross-line masker.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use outfitter_contract::job::REDACTED;
use outfitter_runner::mask::{Masker, WINDOW};
use outfitter_runner::output::{HOLD_MIN, LineJoin, LineSplitter};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// 24 characters; no `#`, which frames it in the tests and belongs to no spelling.
const SECRET: &str = "Sup3r s3cret/pa$$+word!?";

/// Each spelling a script may print, named.
fn spellings() -> Vec<(&'static str, String)> {
    let uri = utf8_percent_encode(SECRET, NON_ALPHANUMERIC).to_string();
    let every_byte: String = SECRET.bytes().map(|b| format!("%{b:02x}")).collect();
    vec![
        ("plain", SECRET.to_owned()),
        ("hex", hex::encode(SECRET)),
        ("HEX", hex::encode_upper(SECRET)),
        ("base64", STANDARD.encode(SECRET)),
        ("base64 no padding", STANDARD_NO_PAD.encode(SECRET)),
        ("base64url", URL_SAFE.encode(SECRET)),
        ("base64url no padding", URL_SAFE_NO_PAD.encode(SECRET)),
        // 23 bytes: the encodings end in a partial group.
        ("base64 of 23 bytes", STANDARD.encode(&SECRET[1..])),
        ("base64url of 22 bytes", URL_SAFE.encode(&SECRET[2..])),
        ("url-encoded", uri.clone()),
        ("url-encoded, lower-case escapes", lower_escapes(&uri)),
        ("url-encoded, + for space", uri.replace("%20", "+")),
        ("every byte escaped", every_byte),
        ("second half (${PW:7})", SECRET[7..].to_owned()),
        ("8 characters from the middle", SECRET[9..17].to_owned()),
        ("hex of ${PW:7}", hex::encode(&SECRET[7..])),
        ("base64 of ${PW:5}", STANDARD.encode(&SECRET[5..])),
    ]
}

fn lower_escapes(uri: &str) -> String {
    let mut out = String::new();
    let mut after_percent = 0u8;
    for c in uri.chars() {
        out.push(if after_percent > 0 {
            c.to_ascii_lowercase()
        } else {
            c
        });
        after_percent = if c == '%' {
            2
        } else {
            after_percent.saturating_sub(1)
        };
    }
    out
}

fn masker() -> Masker {
    Masker::new([SECRET])
}

/// The lines the runner would send for `input`, fed in chunks of `chunk` bytes.
fn lines(masker: &Masker, input: &[u8], chunk: usize, cap: usize) -> Vec<String> {
    let mut splitter = LineSplitter::new(cap);
    let mut join = LineJoin::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        splitter.push(piece, masker, |l| join.push(l, masker, |t| out.push(t)));
    }
    splitter.finish(masker, |l| join.push(l, masker, |t| out.push(t)));
    join.flush(|t| out.push(t));
    out
}

/// Nothing of the spelling survives but, possibly, its first characters, fewer than
/// [`HOLD_MIN`], where it begins at a line's end: the lines joined, with the masks taken out,
/// are the `#` frame around at most that.
fn assert_hidden(what: &str, out: &[String], frame: usize, enc: &str) {
    let rest = out.concat().replace(REDACTED, "");
    let half = "#".repeat(frame / 2);
    let left = rest
        .strip_prefix(&half)
        .and_then(|r| r.strip_suffix(&half))
        .unwrap_or(&rest);
    assert!(
        left.len() < HOLD_MIN && enc.starts_with(left),
        "{what}: {left:?} left in {out:?}"
    );
    assert_leaves(what, out, frame, left);
}

/// Only `left` survives of the spelling, between the two halves of the `#` frame.
fn assert_leaves(what: &str, out: &[String], frame: usize, left: &str) {
    let joined: String = out.concat();
    assert!(
        joined.contains(REDACTED),
        "{what}: nothing masked in {out:?}"
    );
    let rest = joined.replace(REDACTED, "");
    let half = "#".repeat(frame / 2);
    assert_eq!(rest, format!("{half}{left}{half}"), "{what}: {out:?}");
}

#[test]
fn every_spelling_split_at_every_column_is_masked_on_both_lines() {
    let m = masker();
    for (name, enc) in spellings() {
        assert!(enc.len() >= WINDOW, "{name}");
        for col in 1..enc.len() {
            let input = format!("##{}\n{}##\n", &enc[..col], &enc[col..]);
            let out = lines(&m, input.as_bytes(), input.len(), 1024);
            assert_eq!(out.len(), 2, "{name} at {col}: {out:?}");
            // Both halves are masked where they are, except one of fewer than HOLD_MIN
            // characters after ordinary text (see HOLD_MIN).
            let left = if col < HOLD_MIN { &enc[..col] } else { "" };
            assert_leaves(&format!("{name} split at {col}"), &out, 4, left);
            assert!(out[1].starts_with(REDACTED), "{name} at {col}: {out:?}");
        }
    }
}

#[test]
fn every_spelling_wrapped_at_any_width_and_fed_in_any_chunks_is_masked() {
    let m = masker();
    for (name, enc) in spellings() {
        for width in [1, 2, 3, 7, 8, 60, 76] {
            let framed = format!("###{enc}###");
            let wrapped: Vec<&str> = framed
                .as_bytes()
                .chunks(width)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let input = format!("{}\n", wrapped.join("\n"));
            for chunk in [1, 5, input.len()] {
                let out = lines(&m, input.as_bytes(), chunk, 1024);
                assert_eq!(out.len(), wrapped.len(), "{name} at width {width}");
                assert_hidden(
                    &format!("{name} wrapped at {width}, chunks of {chunk}"),
                    &out,
                    6,
                    &enc,
                );
            }
        }
    }
}

#[test]
fn a_spelling_cut_by_the_line_cap_is_masked_in_every_piece() {
    let m = masker();
    for (name, enc) in spellings() {
        for cap in [4, 9, 16, 33] {
            let input = format!("#{enc}#\n");
            let out = lines(&m, input.as_bytes(), 7, cap);
            assert!(out.len() > 1 || input.len() <= cap + 1, "{name}: {out:?}");
            assert_hidden(&format!("{name} under a cap of {cap}"), &out, 2, &enc);
        }
    }
}

#[test]
fn base64_inside_a_larger_blob_is_masked_at_every_alignment_and_wrap() {
    let m = masker();
    for lead in 0..3usize {
        let mut raw = b"\x01\x02\x03"[..lead].to_vec();
        raw.extend_from_slice(SECRET.as_bytes());
        raw.extend_from_slice(b"\x04\x05");
        for engine in [&STANDARD, &URL_SAFE] {
            let blob = engine.encode(&raw);
            // Characters that carry bits of the neighbours may stay; all others are masked.
            let first = (lead * 8).div_ceil(6);
            let last = (lead + SECRET.len()) * 8 / 6;
            let mixed = first + blob.len() - last;
            for width in [8, 76] {
                let wrapped: Vec<String> = blob
                    .as_bytes()
                    .chunks(width)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                let out = lines(&m, format!("{}\n", wrapped.join("\n")).as_bytes(), 64, 1024);
                let rest = out.concat().replace(REDACTED, "");
                assert!(
                    rest.len() < mixed + HOLD_MIN,
                    "lead {lead}, width {width}: {blob} -> {out:?}"
                );
            }
        }
    }
}

#[test]
fn ordinary_output_is_left_alone_and_only_a_possible_start_waits() {
    let m = masker();
    let text = "Setting up nginx (1.24.0-2) ...\nCreated symlink /etc/systemd/system/x.\n";
    let mut join = LineJoin::new();
    let mut splitter = LineSplitter::new(1024);
    let mut out = Vec::new();
    splitter.push(text.as_bytes(), &m, |l| join.push(l, &m, |t| out.push(t)));
    assert_eq!(
        out,
        text.lines().collect::<Vec<_>>(),
        "sent at once, unchanged"
    );
    assert!(!join.holding(), "no spelling of the secret has a `.`");
    // `e` and `1` begin windows of the secret's base64 and hex, but short endings alone do not
    // make a line wait; four characters that begin the secret do.
    splitter.push(b"3b1f0c9e2a7d4f81 done\nuser Sup3\n", &m, |l| {
        join.push(l, &m, |t| out.push(t))
    });
    assert_eq!(out.last().unwrap(), "3b1f0c9e2a7d4f81 done");
    assert!(join.holding());
    join.flush(|t| out.push(t));
    assert_eq!(out.last().unwrap(), "user Sup3");
}

#[test]
fn a_line_that_may_begin_a_secret_waits_for_the_next() {
    let m = masker();
    let mut join = LineJoin::new();
    let mut out = Vec::new();
    join.push(b"password: Sup3", &m, |t| out.push(t));
    assert!(out.is_empty() && join.holding(), "held: {out:?}");
    join.push(b"r s3cret/pa$$+word!? ok.", &m, |t| out.push(t));
    assert_eq!(
        out,
        [format!("password: {REDACTED}"), format!("{REDACTED} ok.")]
    );
    // The same start followed by something else is sent unchanged.
    let mut out = Vec::new();
    join.push(b"Sup3", &m, |t| out.push(t));
    join.push(b"rman", &m, |t| out.push(t));
    join.push(b"", &m, |t| out.push(t));
    join.flush(|t| out.push(t));
    assert_eq!(out, ["Sup3", "rman", ""]);
}

#[test]
fn after_a_flush_the_rest_of_a_split_secret_is_still_masked() {
    let m = masker();
    let mut join = LineJoin::new();
    let mut out = Vec::new();
    join.push(b"pw=Sup3r", &m, |t| out.push(t));
    join.flush(|t| out.push(t));
    assert_eq!(out, ["pw=Sup3r"], "sent as it was known");
    join.push(b" s3", &m, |t| out.push(t));
    join.push(b"##", &m, |t| out.push(t));
    assert_eq!(out[1], REDACTED, "{out:?}");
}

#[test]
fn a_multi_line_secret_printed_as_it_is_is_masked() {
    let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASC\n-----END KEY-----";
    let m = Masker::new([key]);
    let out = lines(&m, format!("{key}\n").as_bytes(), 1000, 1024);
    assert_eq!(out.len(), 4);
    assert!(
        out.iter().all(|l| l.replace(REDACTED, "").is_empty()),
        "{out:?}"
    );
}

/// A `mask` fuzz input, decoded as `fuzz/fuzz_targets/mask.rs` decodes it:
/// `[spelling, cap, chunk, secret_len, secret…, cuts…]`. Returns the secret, its spelling, the
/// `##`-framed output the script prints, the line cap and the read chunk.
fn fuzz_case(data: &[u8]) -> (String, String, String, usize, usize) {
    let [which, cap, chunk, len, rest @ ..] = data else {
        panic!("a fuzz input has at least 4 bytes");
    };
    let (secret, cuts) = rest.split_at((*len as usize).min(rest.len()));
    let secret = std::str::from_utf8(secret).expect("the secret is UTF-8");
    let spelled = match which % 12 {
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
        n => panic!("spelling {n} (a fragment) is not needed by any reproducer yet"),
    };
    let mut cut_at: Vec<(usize, bool)> = cuts
        .iter()
        .map(|&c| ((c as usize >> 1) % spelled.len(), c & 1 == 1))
        .filter(|&(c, _)| c > 0 && spelled.is_char_boundary(c))
        .collect();
    cut_at.sort();
    cut_at.dedup_by_key(|c| c.0);
    let mut input = "##".to_owned();
    let mut at = 0;
    for (c, crlf) in cut_at {
        input.push_str(&spelled[at..c]);
        input.push_str(if crlf { "\r\n" } else { "\n" });
        at = c;
    }
    input.push_str(&spelled[at..]);
    input.push_str("##\n");
    let cap = 1 + *cap as usize * 4;
    let chunk = 1 + *chunk as usize % 64;
    (secret.to_owned(), spelled, input, cap, chunk)
}

#[test]
fn fuzz_finding_padding_between_masked_parts_of_a_one_byte_secret_is_masked() {
    // Found by the `mask` target (docs/fuzzing.md): `Q` in base64, `UQ==`, one character per
    // line; the `=` between the masked `Q` and the masked end went out.
    let data = STANDARD
        .decode("A/8FAVFrQUFBQUFBa0FBQUFBQSws////LFFrQUFBQUFBcHMzcHIAKA==")
        .unwrap();
    let (secret, spelled, input, cap, chunk) = fuzz_case(&data);
    assert_eq!((secret.as_str(), spelled.as_str()), ("Q", "UQ=="));
    assert_eq!(input, "##U\nQ\n=\r\n=##\n");
    let m = Masker::new([secret.as_str()]);
    let out = lines(&m, input.as_bytes(), chunk, cap);
    assert_eq!(out.len(), 4, "{out:?}");
    // `U` is the HOLD_MIN price: it begins the spelling at a line's end after ordinary text.
    assert_leaves("UQ== one character per line", &out, 4, "U");
}
