//! Medians over the rounds of `results.tsv` (written by `scripts/bench.sh`), as Markdown.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::Outcome;
use crate::workloads::ALL;

/// The servers in report order; the first is the one every ratio is taken against.
const SERVERS: &[&str] = &[
    "rust-sdk",
    "bare-axum",
    "go-sdk",
    "ts-sdk",
    "ts-sdk-checkpointing",
];

/// One measurement: a line of `results.tsv`.
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us: f64,
    rss_kib: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Prints the table: per workload and server, the medians and the ratios to `rust-sdk`.
pub fn print(results: &Path) -> Outcome {
    let text = fs::read_to_string(results)?;
    let mut samples: BTreeMap<(String, String), Vec<Sample>> = BTreeMap::new();
    let mut rounds = 0;
    for line in text.lines().filter(|line| !line.starts_with("round")) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [round, workload, server, rps, p50, p99, cpu, rss] = fields.as_slice() else {
            return Err(format!("a results line without 8 fields: {line:?}").into());
        };
        rounds = rounds.max(round.parse::<u32>()?);
        samples
            .entry(((*workload).to_owned(), (*server).to_owned()))
            .or_default()
            .push(Sample {
                rps: rps.parse()?,
                p50_us: p50.parse()?,
                p99_us: p99.parse()?,
                cpu_us: cpu.parse()?,
                rss_kib: rss.parse()?,
            });
    }
    let medians: BTreeMap<_, _> = samples
        .into_iter()
        .map(|(key, list)| {
            let pick = |field: fn(&Sample) -> f64| median(list.iter().map(field).collect());
            let values = [
                pick(|s| s.rps),
                pick(|s| s.p50_us),
                pick(|s| s.p99_us),
                pick(|s| s.cpu_us),
                pick(|s| s.rss_kib),
            ];
            (key, values)
        })
        .collect();

    println!(
        "Medians of {rounds} round(s). Ratios are this server's figure divided by rust-sdk's.\n"
    );
    println!(
        "| workload | server | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | CPU ÷ rust-sdk | RSS ÷ rust-sdk |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|");
    for workload in ALL.iter().map(|workload| workload.name) {
        let ours = medians.get(&(workload.to_owned(), SERVERS[0].to_owned()));
        let mut servers: Vec<&str> = SERVERS.to_vec();
        for (name, server) in medians.keys() {
            if name == workload && !servers.contains(&server.as_str()) {
                servers.push(server);
            }
        }
        for server in servers {
            let Some([rps, p50, p99, cpu, rss]) =
                medians.get(&(workload.to_owned(), server.to_owned()))
            else {
                continue;
            };
            let ratio = |value: f64, index: usize| match ours {
                Some(ours) if ours[index] > 0.0 => format!("{:.2}x", value / ours[index]),
                _ => "-".to_owned(),
            };
            println!(
                "| {workload} | {server} | {rps:.0} | {:.2} | {:.2} | {cpu:.1} | {:.1} | {} | {} |",
                p50 / 1000.0,
                p99 / 1000.0,
                rss / 1024.0,
                ratio(*cpu, 3),
                ratio(*rss, 4),
            );
        }
    }
    Ok(())
}
