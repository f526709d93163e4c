//! Lua scripts whose behaviour both programs rely on. Each file's header names its KEYS and ARGV.

/// Numbers an event, appends it to the job's stream and publishes it (see the file header).
pub const APPEND_EVENT: &str = include_str!("../lua/append_event.lua");
