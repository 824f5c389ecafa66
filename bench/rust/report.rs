//! Medians over the rounds of `results.tsv` (written by `scripts/bench.sh`), as Markdown.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::Outcome;
use crate::workloads::{ALL, body};

/// The servers in report order; the first is the one every ratio is taken against.
const SERVERS: &[&str] = &[
    "rust-sdk",
    "bare-axum",
    "go-sdk",
    "ts-sdk",
    "ts-sdk-checkpointing",
];

/// A workload, a server, and whether it was measured with one connection where the rest had
/// more: a peer too slow to answer enough (the harness then measures ours and the bare
/// handler with one connection too, so that each ratio compares like with like).
type Key = (String, String, bool);

/// Per key: the medians of req/s, p50 µs, p99 µs, CPU µs per request, peak RSS KiB and peak
/// private memory KiB.
type Medians = BTreeMap<Key, [f64; 6]>;
const CPU: usize = 3;
const RSS: usize = 4;
const PRIVATE: usize = 5;

/// One measurement: a line of `results.tsv`.
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us: f64,
    rss_kib: f64,
    /// Not in results written before the harness sampled it.
    private_kib: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Ours on `workload`, measured as `one` says if it was, else as the rest.
fn ours_in<'m>(medians: &'m Medians, workload: &str, one: bool) -> Option<&'m [f64; 6]> {
    let key = |one| (workload.to_owned(), SERVERS[0].to_owned(), one);
    medians.get(&key(one)).or_else(|| medians.get(&key(false)))
}

/// Prints the table: per workload and server, the medians and the ratios to `rust-sdk`.
pub fn print(results: &Path) -> Outcome {
    let text = fs::read_to_string(results)?;
    let mut rows: Vec<(String, String, u32, Sample)> = Vec::new();
    let mut rounds = 0;
    for line in text.lines().filter(|line| !line.starts_with("round")) {
        let fields: Vec<&str> = line.split('\t').collect();
        // Results written before the harness sampled private memory have nine fields.
        let (fields, private) = match fields.split_at_checked(9) {
            Some((first, [private])) => (first, private.parse()?),
            Some((first, [])) => (first, f64::NAN),
            _ => return Err(format!("a results line without 9 or 10 fields: {line:?}").into()),
        };
        let [
            round,
            workload,
            server,
            rps,
            p50,
            p99,
            cpu,
            rss,
            connections,
        ] = fields
        else {
            return Err(format!("a results line without 9 or 10 fields: {line:?}").into());
        };
        rounds = rounds.max(round.parse::<u32>()?);
        let sample = Sample {
            rps: rps.parse()?,
            p50_us: p50.parse()?,
            p99_us: p99.parse()?,
            cpu_us: cpu.parse()?,
            rss_kib: rss.parse()?,
            private_kib: private,
        };
        rows.push((
            (*workload).to_owned(),
            (*server).to_owned(),
            connections.parse()?,
            sample,
        ));
    }
    let most_connections = rows.iter().map(|row| row.2).max().unwrap_or(0);
    let mut samples: BTreeMap<Key, Vec<Sample>> = BTreeMap::new();
    for (workload, server, connections, sample) in rows {
        let one = connections < most_connections;
        samples
            .entry((workload, server, one))
            .or_default()
            .push(sample);
    }
    let medians: Medians = samples
        .into_iter()
        .map(|(key, list)| {
            let pick = |field: fn(&Sample) -> f64| median(list.iter().map(field).collect());
            let values = [
                pick(|s| s.rps),
                pick(|s| s.p50_us),
                pick(|s| s.p99_us),
                pick(|s| s.cpu_us),
                pick(|s| s.rss_kib),
                pick(|s| s.private_kib),
            ];
            (key, values)
        })
        .collect();

    println!(
        "Medians of {rounds} round(s). Ratios are this server's figure divided by rust-sdk's.\n"
    );
    println!(
        "| workload | server | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | peak private MiB | CPU ÷ rust-sdk | RSS ÷ rust-sdk | private ÷ rust-sdk |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for workload in ALL.iter().map(|workload| workload.name) {
        // Known servers first, in their order; the rest after; those with one connection last.
        let rank = |server: &str| {
            SERVERS
                .iter()
                .position(|s| *s == server)
                .unwrap_or(SERVERS.len())
        };
        let mut keys: Vec<&Key> = medians.keys().filter(|key| key.0 == workload).collect();
        keys.sort_by_key(|(_, server, one)| (*one, rank(server)));
        for key @ (_, server, one) in keys {
            let Some([rps, p50, p99, cpu, rss, private]) = medians.get(key) else {
                continue;
            };
            let ours = ours_in(&medians, workload, *one);
            let ratio = |value: f64, index: usize| match ours {
                Some(ours) if ours[index] > 0.0 && !value.is_nan() => {
                    format!("{:.2}x", value / ours[index])
                }
                _ => "-".to_owned(),
            };
            let mark = if *one { " ¹" } else { "" };
            println!(
                "| {workload} | {server}{mark} | {rps:.0} | {:.2} | {:.2} | {cpu:.1} | {:.1} | {} | {} | {} | {} |",
                p50 / 1000.0,
                p99 / 1000.0,
                rss / 1024.0,
                // Not sampled by the harness that wrote older results.
                if private.is_nan() {
                    "-".to_owned()
                } else {
                    format!("{:.1}", private / 1024.0)
                },
                ratio(*cpu, CPU),
                ratio(*rss, RSS),
                ratio(*private, PRIVATE),
            );
        }
    }
    if medians.keys().any(|(_, _, one)| *one) {
        println!(
            "\n¹ With 1 connection: a peer too slow to answer 4 requests per connection at \
             {most_connections} connections, and ours and the bare handler measured so beside \
             it. Ratios in these rows are to rust-sdk with 1 connection (to rust-sdk with \
             {most_connections} in results written before the harness measured it so). Req/s \
             and latency are one connection's."
        );
    }
    print_targets(&medians);
    Ok(())
}

/// Issue 12's targets beside what this run measured (a target whose workloads or servers were
/// not measured is left out).
fn print_targets(medians: &Medians) {
    // Ours and the bare handler as measured with the rest of the workload's servers.
    let get = |workload: &str, server: &str, field: usize| {
        medians
            .get(&(workload.to_owned(), server.to_owned(), false))
            .map(|values| values[field])
    };
    let ours = |workload: &str| get(workload, "rust-sdk", CPU);
    // A peer beside ours measured the same way: with one connection if the peer was.
    let matched = |workload: &str, peer: &str, field: usize| {
        [false, true].into_iter().find_map(|one| {
            let theirs = medians.get(&(workload.to_owned(), peer.to_owned(), one))?;
            Some((theirs[field], ours_in(medians, workload, one)?[field]))
        })
    };
    let body_kb = |name: &str| crate::workloads::find(name).map(|w| body(w).len() as f64 / 1000.0);
    let mut rows: Vec<(String, String, bool)> = Vec::new();
    if let (Some(ours), Some(bare)) = (ours("first-step"), get("first-step", "bare-axum", CPU)) {
        let ratio = ours / bare;
        rows.push((
            "first step: CPU at most 1.3x the bare axum ceiling".into(),
            format!("{ratio:.2}x"),
            ratio <= 1.3,
        ));
    }
    if let (Some(many), Some(one)) = (ours("memoized-1000"), ours("memoized-1")) {
        let per_step = (many - one) / 999.0;
        rows.push((
            "at most 0.4 µs per memoized step at 1000 steps".into(),
            format!("{per_step:.2} µs"),
            per_step <= 0.4,
        ));
    }
    if let Some(cpu) = ours("100-steps-of-1kb") {
        rows.push((
            "100 steps of 1 KB: at most 120 µs per request".into(),
            format!("{cpu:.1} µs"),
            cpu <= 120.0,
        ));
    }
    if let (Some(small), Some(large), Ok(small_kb), Ok(large_kb)) = (
        ours("100-steps-of-1kb"),
        ours("4mb-state"),
        body_kb("100-steps-of-1kb"),
        body_kb("4mb-state"),
    ) {
        let (small, large) = (small / small_kb, large / large_kb);
        rows.push((
            "linear to 4 MB: CPU per KB of body at 4 MB within 1.25x of that at 100 KB".into(),
            format!("{large:.3} vs {small:.3} µs/KB"),
            large <= small * 1.25,
        ));
    }
    for (peer, floor) in [("go-sdk", 4.0), ("ts-sdk", 50.0)] {
        let ratios: Vec<(f64, &str)> = ALL
            .iter()
            .filter_map(|w| {
                let (theirs, ours) = matched(w.name, peer, CPU)?;
                Some((theirs / ours, w.name))
            })
            .collect();
        if let Some((lowest, workload)) = ratios.into_iter().min_by(|a, b| a.0.total_cmp(&b.0)) {
            rows.push((
                format!("CPU per request at least {floor}x lower than {peer} on every workload"),
                format!("lowest {lowest:.2}x ({workload})"),
                lowest >= floor,
            ));
        }
    }
    for (field, what) in [(RSS, "peak RSS"), (PRIVATE, "peak private memory")] {
        let memory: Vec<(f64, &str)> = ALL
            .iter()
            .filter_map(|w| {
                let (go, ours) = matched(w.name, "go-sdk", field)?;
                let ratio = ours / go;
                ratio.is_finite().then_some((ratio, w.name))
            })
            .collect();
        if let Some((highest, workload)) = memory.into_iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
            rows.push((
                format!("{what} under a quarter of go-sdk's"),
                format!("highest {highest:.2}x ({workload})"),
                highest < 0.25,
            ));
        }
    }
    if rows.is_empty() {
        return;
    }
    println!("\n| issue 12 target | measured | met |\n|---|---|---|");
    for (target, measured, met) in rows {
        println!(
            "| {target} | {measured} | {} |",
            if met { "yes" } else { "no" }
        );
    }
}
