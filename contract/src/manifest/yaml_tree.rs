//! The manifest's fast path: the common YAML (plain mappings, lists and scalars) built into a
//! JSON value straight from the parser's events, without serde-saphyr's deserializer (most of
//! a cold catalog scan's CPU went there).
//!
//! It reads with the parser serde-saphyr uses, configured as serde-saphyr configures it, so a
//! scalar's text is the same. It declines (returns `None`) on anything it does not settle
//! exactly as serde-saphyr would: a parse error, anchors, aliases, tags, `%YAML` directives,
//! merge keys, duplicate or non-text keys, null, floats, signed or leading-zero numbers, more
//! than one document, a root that is not a mapping, or a document past half of any YAML
//! budget. The caller then parses with serde-saphyr, whose outcome and messages stand; so
//! every document it accepts yields the value serde-saphyr would give, and every hostile or
//! unusual one meets the full budget there.

use granit_parser::{Event, Parser, ScalarStyle, StrInput};
use serde_json::{Map, Number, Value};

use crate::limits;

/// A collection being built, with the key waiting for its value in a mapping.
enum Open {
    List(Vec<Value>),
    Mapping(Map<String, Value>, Option<String>),
}

/// The value of `text`, or `None` when serde-saphyr must decide.
pub(super) fn parse(text: &str) -> Option<Value> {
    let mut parser: Parser<'_, StrInput<'_>> =
        Parser::new_from_str_with_options(text, parser_options());
    let mut open: Vec<Open> = Vec::new();
    let mut root = None;
    let (mut events, mut nodes, mut scalar_bytes, mut documents) = (0usize, 0usize, 0usize, 0);
    while let Some(next) = parser.next_event() {
        let (event, _) = next.ok()?;
        events += 1;
        if events > limits::YAML_MAX_EVENTS / 2 {
            return None;
        }
        let value = match event {
            Event::StreamStart | Event::DocumentEnd | Event::Comment(..) => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_, version) => {
                documents += 1;
                if documents > 1 || version.is_some() {
                    return None;
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                nodes += 1;
                scalar_bytes += text.len();
                if nodes > limits::YAML_MAX_NODES / 2
                    || scalar_bytes > limits::YAML_MAX_SCALAR_BYTES / 2
                {
                    return None;
                }
                scalar(text.into_owned(), style)?
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                nodes += 1;
                if nodes > limits::YAML_MAX_NODES / 2 || open.len() >= limits::YAML_MAX_DEPTH / 2 {
                    return None;
                }
                open.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::List(Vec::new())
                } else {
                    Open::Mapping(Map::new(), None)
                });
                continue;
            }
            Event::SequenceEnd => match open.pop()? {
                Open::List(items) => Value::Array(items),
                Open::Mapping(..) => return None,
            },
            Event::MappingEnd => match open.pop()? {
                Open::Mapping(map, None) => Value::Object(map),
                _ => return None,
            },
            _ => return None,
        };
        match open.last_mut() {
            None if root.is_none() => root = Some(value),
            None => return None,
            Some(Open::List(items)) => items.push(value),
            Some(Open::Mapping(map, pending)) => match pending.take() {
                Some(key) => {
                    map.insert(key, value);
                }
                None => {
                    // Only text keys; `<<` is a merge and a repeated key an error there.
                    let Value::String(key) = value else {
                        return None;
                    };
                    if key == "<<" || map.contains_key(&key) {
                        return None;
                    }
                    *pending = Some(key);
                }
            },
        }
    }
    if documents != 1 || !open.is_empty() {
        return None;
    }
    root.filter(Value::is_object)
}

/// The parser options serde-saphyr derives from the manifest's budget (`yaml::options`), so
/// the fast path reads no document serde-saphyr's parser would refuse.
fn parser_options() -> granit_parser::Options {
    let mut options = granit_parser::Options::default();
    options.simple_key_max_lookahead = 1024;
    options.flow_nesting_limit = limits::YAML_MAX_FLOW_NESTING;
    options.block_nesting_limit = options
        .block_nesting_limit
        .max(limits::YAML_MAX_DEPTH.saturating_add(1));
    options.emit_comments = true;
    options.max_buffered_comment_events = 32;
    options
}

/// A scalar as serde-saphyr types it for a JSON value with YAML 1.2 core booleans, or `None`
/// for the spellings left to it (null, floats, signs, radixes, leading zeros, non-finite,
/// dates).
fn scalar(text: String, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return Some(Value::String(text));
    }
    match text.as_str() {
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let first = *text.as_bytes().first()?;
    if first.is_ascii_digit() {
        let plain_decimal =
            text.bytes().all(|b| b.is_ascii_digit()) && (first != b'0' || text.len() == 1);
        if plain_decimal {
            return text
                .parse::<u64>()
                .ok()
                .map(|n| Value::Number(Number::from(n)));
        }
        // `1.0.0`, `127.0.0.1`: with two dots neither a number nor a float, so text.
        let dotted = text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && text.bytes().filter(|&b| b == b'.').count() >= 2;
        return dotted.then_some(Value::String(text));
    }
    let null_or_special = matches!(first, b'+' | b'-' | b'.' | b'~')
        || ["null", "inf", "infinity", "nan"]
            .iter()
            .any(|word| text.eq_ignore_ascii_case(word));
    if null_or_special {
        return None;
    }
    Some(Value::String(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde-saphyr makes of `text`, as `yaml::parse` calls it.
    fn slow(text: &str) -> Option<Value> {
        super::super::yaml::parse_with_serde_saphyr(text).ok()
    }

    fn agrees(text: &str) {
        if let Some(fast) = parse(text) {
            assert_eq!(
                Some(&fast),
                slow(text).as_ref(),
                "fast path differs on {text:?}"
            );
        }
    }

    #[test]
    fn common_manifests_take_the_fast_path_with_serde_saphyrs_value() {
        let text = "id: web\nname: 'Web: \"server\"'\nversion: \"1.0\"\nport: 80\nzero: 0\n\
                    ok: true\nno_: no\nlist: [a, 'b', \"c\\t\"]\nmap: { a: 1, b: [x] }\n\
                    text: |\n  two\n  lines\nfolded: >\n  one\n  line\n# a comment\n\
                    inputs:\n  - name: a\n    label: A b\n    visible_if: { tls: TRUE }\n";
        assert!(parse(text).is_some());
        agrees(text);
    }

    #[test]
    fn everything_unusual_is_left_to_serde_saphyr() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "%YAML 1.1\n---\na: yes\n",
            "a: 1\n---\nb: 2\n",
            "base: &b {x: 1}\nc:\n  <<: *b\n",
            "a: 1\na: 2\n",
            "a: 1\n'a': 2\n",
            "1: a\n",
            "true: a\n",
            "? [a]\n: b\n",
            "a: ~\n",
            "a:\n",
            "a: null\n",
            "a: 1.5\n",
            "a: -1\n",
            "a: +1\n",
            "a: 0x1f\n",
            "a: 017\n",
            "a: 1_000\n",
            "a: .inf\n",
            "a: inf\n",
            "a: NaN\n",
            "a: 2026-12-07\n",
            "a: 99999999999999999999\n",
            "- a\n",
            "just text\n",
            "a: [1, 2\n",
            "a:\n  b:\n    c:\n      d:\n        e:\n          f:\n            g:\n              h:\n                i: 1\n",
        ] {
            assert_eq!(parse(text), None, "{text:?} took the fast path");
        }
    }

    #[test]
    fn scalar_spellings_agree_with_serde_saphyr() {
        for word in [
            "true",
            "True",
            "TRUE",
            "false",
            "FALSE",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "0",
            "7",
            "80",
            "65535",
            "1.0.0",
            "127.0.0.1",
            "0.0.0.0",
            "1..2",
            "1.2.",
            "10.5",
            "1e5",
            "18446744073709551615",
            "abc",
            "e5",
            "x1",
            "Inf",
            "infinite",
            "nil",
            "None",
            "a b",
            "a: b",
            "\"q\"",
            "'s'",
            "@x",
            "`x`",
            "%x",
            "!x",
            "&x",
            "*x",
            "<<",
            "=",
            "é",
            "日本",
            "a#b",
            "a #b",
            "[]",
            "{}",
            "[a, b]",
            "{a: b}",
            "|\n  x\n",
            ">-\n  x\n",
        ] {
            agrees(&format!("key: {word}\n"));
            agrees(&format!("list:\n  - {word}\n"));
            agrees(&format!("{word}: v\n"));
        }
        for text in [
            "? |\n  k\n: v\n",
            "? 'k'\n: v\n",
            "\u{feff}a: 1\n",
            "a: 1 # c\n...\n",
        ] {
            agrees(text);
        }
    }

    /// A differential search: thousands of small edits of a real manifest (YAML's
    /// punctuation, digits, signs, quotes, spaces and line breaks inserted, removed or
    /// swapped), each parsed both ways; whatever the fast path accepts must be what
    /// serde-saphyr gives. Seeded, so a failure repeats.
    #[test]
    fn edited_manifests_agree_with_serde_saphyr() {
        let base = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../installers/nginx/manifest.yml"),
        )
        .unwrap();
        const PIECES: &[&str] = &[
            ":",
            ": ",
            "-",
            "- ",
            " ",
            "  ",
            "\n",
            "\n  ",
            "'",
            "\"",
            "#",
            "&a ",
            "*a",
            "!",
            "[",
            "]",
            "{",
            "}",
            ",",
            "0",
            "1",
            "07",
            "0x1",
            "1.5",
            "-1",
            "+1",
            "1e3",
            ".inf",
            "~",
            "null",
            "yes",
            "True",
            "1_0",
            "2026-12-07",
            "? ",
            "|",
            ">",
            "<<: ",
            "\t",
            "%",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |bound: usize| {
            // xorshift64*: enough spread for picking places and pieces.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound
        };
        let (mut accepted, mut tried) = (0, 0);
        for _ in 0..3_000 {
            let mut text = base.clone();
            for _ in 0..1 + next(3) {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match next(3) {
                    0 => text.insert_str(at, PIECES[next(PIECES.len())]),
                    1 => {
                        let mut end = (at + 1 + next(4)).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text.replace_range(at..end, "");
                    }
                    _ => {
                        let mut end = (at + 1 + next(4)).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text.replace_range(at..end, PIECES[next(PIECES.len())]);
                    }
                }
            }
            tried += 1;
            if parse(&text).is_some() {
                accepted += 1;
            }
            agrees(&text);
        }
        // Both sides are exercised: edits the fast path takes, and edits it leaves.
        assert!(
            accepted > tried / 10 && accepted < tried,
            "{accepted} of {tried}"
        );
    }

    #[test]
    fn the_bundled_manifests_agree_with_serde_saphyr() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut seen = 0;
        let mut dirs = vec![
            root.join("installers"),
            root.join("templates"),
            root.join("tests"),
        ];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml")
                    && let Ok(text) = std::fs::read_to_string(&path)
                {
                    agrees(&text);
                    seen += 1;
                }
            }
        }
        assert!(seen > 0, "no manifests found under {}", root.display());
    }
}
