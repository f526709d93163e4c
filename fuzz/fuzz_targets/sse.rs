//! What a browser or a script sends or gets on the event stream: the `Last-Event-ID` header,
//! event JSON as read back from Redis, and `::progress` lines. Properties: no panic; an id the
//! panel accepts means the same in both spellings (`<seq>` and `0-<seq>`); an event that
//! parses survives a round trip through its JSON; a progress percent is at most 100.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outfitter_contract::event::{Event, parse_progress};
use outfitter_panel::sse::{is_terminal_event, parse_last_event_id};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(seq) = parse_last_event_id(text) {
        assert_eq!(parse_last_event_id(&seq.to_string()), Some(seq));
        assert_eq!(parse_last_event_id(&format!("0-{seq}")), Some(seq));
    }
    let terminal = is_terminal_event(text);
    if let Ok(event) = serde_json::from_str::<Event>(text) {
        let json = serde_json::to_string(&event).expect("events serialize");
        let back: Event = serde_json::from_str(&json).expect("own JSON parses");
        assert_eq!(back, event);
        assert_eq!(is_terminal_event(&json), terminal);
    } else {
        assert!(!terminal, "a terminal event that does not parse: {text:?}");
    }
    if let Some((percent, _)) = parse_progress(text) {
        assert!(percent <= 100);
    }
});
