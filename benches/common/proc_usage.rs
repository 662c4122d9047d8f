//! CPU time and context switches of this process and its threads: shared by the benches
//! that measure the console loop (`streaming`, `attached`) and the agent supervisor
//! (`agent_overhead`).

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

/// User+system CPU seconds of the whole process, finished threads included, to the
/// microsecond (/proc's figure is in 10 ms ticks: a tenth of a point over 10 s).
pub fn process_cpu() -> f64 {
    // SAFETY: getrusage writes only the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// CPU milliseconds of each live thread of this process, by thread id and name, from the
/// scheduler's own count (/proc/self/task/*/schedstat, in nanoseconds).
#[allow(dead_code)] // read by agent_overhead alone
pub fn threads_cpu_ms() -> std::collections::HashMap<(String, String), f64> {
    let mut threads = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in tasks.flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        let name = read("comm").trim().to_string();
        let ns: f64 = read("schedstat")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let id = task.file_name().to_string_lossy().into_owned();
        threads.insert((id, name), ns / 1e6);
    }
    threads
}
