//! CPU time and context switches of this process and thread, from /proc: shared by the
//! benches that measure the console loop (`streaming`, `attached`).

/// User+system CPU seconds and voluntary context switches of a /proc stat/status pair.
fn usage(stat: &str, status: &str) -> (f64, u64) {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let switches = std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    ((ticks(11) + ticks(12)) / 100.0, switches)
}

pub fn thread_usage() -> (f64, u64) {
    usage("/proc/thread-self/stat", "/proc/thread-self/status")
}

pub fn process_cpu() -> f64 {
    usage("/proc/self/stat", "/proc/self/status").0
}
