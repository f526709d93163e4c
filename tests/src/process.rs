//! Processes of the end-to-end tests: the daemons they start (`outfitter_test_support`) and
//! the processes test bundles leave behind.

pub use outfitter_test_support::Daemon;

/// Pids of every process whose command line contains `marker` (test bundles put the job id
/// into their long-running commands' `argv[0]`, so a test can see whether they still run).
pub fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}
