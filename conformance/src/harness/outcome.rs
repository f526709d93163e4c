//! What an install's output and exit say, in one line for the report.

use crate::container::ExecOutput;

pub(super) fn describe(out: &ExecOutput, expected: i32) -> String {
    match (out.timed_out, out.code) {
        (true, _) => format!("timed out after {:.0} s", out.duration.as_secs_f64()),
        (false, Some(code)) if code == expected => format!("exit {code} as expected"),
        (false, Some(code)) => format!(
            "exit {code}, expected {expected}: {}",
            last_error_line(&out.output)
        ),
        (false, None) => "killed by a signal".to_owned(),
    }
}

/// The most telling line of a failed install: its last `error:` line, else its last line.
fn last_error_line(output: &str) -> String {
    output
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or_else(|| output.lines().last())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_prefers_the_last_error() {
        assert_eq!(
            last_error_line("a\nerror: first\nb\nerror: second\nc"),
            "error: second"
        );
        assert_eq!(last_error_line("a\nb"), "b");
    }
}
