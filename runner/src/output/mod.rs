//! Script output: pipes read concurrently in bounded chunks, split into masked lines, with a
//! per-line cap and a per-attempt total cap.

mod join;
mod reader;
mod splitter;

use std::time::Duration;

pub use join::{HOLD_MIN, LineJoin};
pub use reader::{OutputShared, pump};
pub use splitter::LineSplitter;

use outfitter_contract::event::OutputStream;

/// One masked line of output (or a note from the runner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: OutputStream,
    pub text: String,
}

impl OutputLine {
    pub fn runner(text: impl Into<String>) -> Self {
        OutputLine {
            stream: OutputStream::Runner,
            text: text.into(),
        }
    }
}

/// Lines waiting between the pipe readers and whoever consumes them. With the line cap this
/// bounds the memory held in flight (256 × 16 KiB = 4 MiB at the default cap).
pub const LINE_CHANNEL_CAPACITY: usize = 256;

/// Bytes read from a pipe at once.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// How long a line that may be the first part of a split secret waits for the next line before
/// it is sent as it is. Tools that wrap (`base64`, `xxd`, `fold`) write their lines at once.
pub const HOLD_BACK: Duration = Duration::from_millis(50);
