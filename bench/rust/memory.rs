//! The server's private memory while it is measured, sampled from outside (`peak-private`).

use std::fs;

use crate::Outcome;

/// Samples `RssAnon` of process `pid` every 10 ms until it exits, then prints the highest (KiB).
/// Private memory is what the server itself allocated (heap, stacks); peak RSS also counts the
/// pages of its binary and shared libraries, which are shared and backed by their files.
pub fn sample_private_memory(pid: &str) -> Outcome {
    let status = format!("/proc/{pid}/status");
    let mut peak: u64 = 0;
    while let Ok(text) = fs::read_to_string(&status) {
        let anon = text
            .lines()
            .find_map(|line| line.strip_prefix("RssAnon:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok());
        peak = peak.max(anon.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    println!("{peak}");
    Ok(())
}
