//! `cargo build --release -p pipescope -p bench-profile && target/release/bench-profile [RECORDS [SMALL]]`
//! (`bench-profile --generate FILE N` only writes the records.)
//!
//! `pipescope profile` against ydata-profiling (the report the issue 17 seed uses), in one run, on
//! the same generated JSON lines: visit events like `simulate visits` writes, with nested objects,
//! arrays, nulls, empty strings and absent fields (seeded, so every run profiles the same bytes).
//!
//! Two sizes: SMALL records (10,000 by default) where the figures are compared field by field
//! (counts, missing, distinct, min/max/mean/stddev, quantiles within the sketch's stated error,
//! string lengths, duplicates), and RECORDS records (1,000,000) where both are timed and the
//! figures compared again. Each tool runs as a child process: wall time, CPU (user + system of
//! every thread, from the children's times in /proc/self/stat) and peak RSS (VmHWM, polled).
//!
//! ydata-profiling runs from `PIPESCOPE_BENCH_PYTHON` (default
//! /opt/pipescope-bench/ydata/bin/python: a venv outside the repository) through
//! bench/profile/ydata_profile.py; `PIPESCOPE_BIN` names the pipescope binary (default: beside
//! this one, target/release/pipescope).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

const DEFAULT_PYTHON: &str = "/opt/pipescope-bench/ydata/bin/python";
const INSTALL: &str = "python3 -m venv /opt/pipescope-bench/ydata && /opt/pipescope-bench/ydata/bin/pip install ydata-profiling";
const SEED: u64 = 17;
/// ydata-profiling's quantiles (pandas, linear interpolation) that pipescope also reports.
const QUANTILES: [(&str, f64); 5] = [
    ("5%", 0.05),
    ("25%", 0.25),
    ("50%", 0.5),
    ("75%", 0.75),
    ("95%", 0.95),
];
/// Past its exact range, pipescope's distinct count is an estimate: accepted within this many
/// of its stated standard errors.
const DISTINCT_SIGMAS: f64 = 3.0;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    // `--generate FILE N`: only write the records (to profile pipescope on them with perf).
    if args.peek().is_some_and(|a| a == "--generate") {
        let file = PathBuf::from(args.nth(1).expect("--generate FILE N"));
        let n = args
            .next()
            .map_or(1_000_000, |a| a.parse().expect("N must be a whole number"));
        let (bytes, _) = generate(&file, n);
        eprintln!(
            "generated {n} records ({bytes} bytes) in {}",
            file.display()
        );
        return;
    }
    let records: u64 = args.next().map_or(1_000_000, |a| {
        a.parse().expect("RECORDS must be a whole number")
    });
    let small: u64 = args
        .next()
        .map_or(10_000, |a| a.parse().expect("SMALL must be a whole number"));
    let python = std::env::var("PIPESCOPE_BENCH_PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.into());
    let pipescope = pipescope_binary();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ydata_profile.py");
    let ydata_version = check_python(&python);

    let load_before = load_average();
    let mut mismatches = 0;
    let mut runs = Vec::new();
    for n in [small, records] {
        let dir = tempfile::tempdir().expect("create a temporary directory for the records");
        let file = dir.path().join("records.jsonl");
        let (bytes, truth) = generate(&file, n);
        eprintln!(
            "generated {n} records ({bytes} bytes) in {}",
            file.display()
        );

        let ours_json = dir.path().join("pipescope.json");
        let ours = run_timed(
            Command::new(&pipescope)
                .arg("profile")
                .arg("--file")
                .arg(&file)
                .arg("--json-out")
                .arg(&ours_json),
            "pipescope profile",
        );
        eprintln!("pipescope profile: {:.2} s", ours.wall.as_secs_f64());
        let ydata_dir = dir.path().join("ydata");
        std::fs::create_dir(&ydata_dir).expect("create the ydata output directory");
        let theirs = run_timed(
            Command::new(&python)
                .arg(&script)
                .arg(&file)
                .arg(&ydata_dir),
            "ydata-profiling",
        );
        eprintln!("ydata-profiling: {:.2} s", theirs.wall.as_secs_f64());
        let timing = read_json(&ydata_dir.join("timing.json"));

        let report = compare(&read_json(&ours_json), &ydata_dir, &timing, &truth);
        println!("\n### {n} records ({bytes} bytes)\n");
        print!("{}", report.table);
        println!(
            "\n{} checks, {} mismatches{}",
            report.checks,
            report.mismatches.len(),
            if report.mismatches.is_empty() {
                String::new()
            } else {
                format!(":\n- {}", report.mismatches.join("\n- "))
            }
        );
        for note in &report.notes {
            println!("- {note}");
        }
        mismatches += report.mismatches.len();
        runs.push((n, bytes, ours, theirs, timing));
    }
    let load_after = load_average();

    println!(
        "\n### Speed (ydata-profiling {ydata_version}; load average {load_before} before, {load_after} after)\n"
    );
    println!(
        "| records | tool | wall s | CPU s | peak RSS MB | records/s | load + profile s (in the script) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for (n, _, ours, theirs, timing) in &runs {
        let in_script = timing["load_wall_s"].as_f64().unwrap_or(f64::NAN)
            + timing["profile_wall_s"].as_f64().unwrap_or(f64::NAN);
        for (name, run, inner) in [
            ("pipescope profile", ours, None),
            ("ydata-profiling", theirs, Some(in_script)),
        ] {
            println!(
                "| {n} | {name} | {:.2} | {:.2} | {:.0} | {:.0} | {} |",
                run.wall.as_secs_f64(),
                run.cpu_s,
                run.peak_rss_kb as f64 / 1024.0,
                *n as f64 / run.wall.as_secs_f64(),
                inner.map_or("—".into(), |s| format!("{s:.2}")),
            );
        }
    }
    println!();
    for (n, _, ours, theirs, timing) in &runs {
        let in_script = timing["load_wall_s"].as_f64().unwrap_or(f64::NAN)
            + timing["profile_wall_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "- {n} records: pipescope {:.1}× faster by wall time (ydata-profiling {:.2} s, of which {:.2} s loading and profiling after the imports; pipescope {:.2} s), {:.1}× by CPU; {:.1}× against ydata-profiling's load + profile alone",
            theirs.wall.as_secs_f64() / ours.wall.as_secs_f64(),
            theirs.wall.as_secs_f64(),
            in_script,
            ours.wall.as_secs_f64(),
            theirs.cpu_s / ours.cpu_s,
            in_script / ours.wall.as_secs_f64(),
        );
    }
    if mismatches > 0 {
        eprintln!("{mismatches} figures differ (listed above)");
        std::process::exit(1);
    }
}

/// Every number written, per field path (pipescope's naming), to check figures against.
type Numbers = BTreeMap<String, Vec<f64>>;

/// Writes `n` seeded visit records, one JSON object a line; returns the file's size and the
/// numbers written.
fn generate(path: &Path, n: u64) -> (u64, Numbers) {
    let mut numbers = Numbers::new();
    const PAGES: usize = 40;
    const USERS: u64 = 5_000;
    const REFERRERS: [&str; 5] = ["search", "social", "email", "direct", "partner"];
    const DEVICES: [&str; 4] = ["mobile", "desktop", "tablet", "tv"];
    const COUNTRIES: [&str; 8] = ["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL"];
    const CITIES: [&str; 6] = ["Berlin", "Paris", "Austin", "Leeds", "Gouda", "Łódź"];
    const TAGS: [&str; 6] = ["new", "promo", "cart", "repeat", "vip", "bot?"];
    let mut rng = fastrand::Rng::with_seed(SEED);
    let file =
        std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut out = BufWriter::new(file);
    let start_ms: u64 = 1_764_806_400_000;
    let mut ts = start_ms;
    for i in 0..n {
        ts += rng.u64(1..40);
        let mut r = Map::new();
        r.insert("visit_id".into(), json!(format!("v-{i:09}")));
        // Zipf-like: a few users make most visits.
        let user = (USERS as f64 * rng.f64().powi(3)) as u64;
        r.insert("user_id".into(), json!(format!("u-{user}")));
        let page = (PAGES as f64 * rng.f64().powi(2)) as usize;
        r.insert("page".into(), json!(format!("/p/{page}")));
        let referrer = if rng.f64() < 0.03 {
            ""
        } else {
            REFERRERS[rng.usize(..REFERRERS.len())]
        };
        r.insert("referrer".into(), json!(referrer));
        r.insert("device".into(), json!(DEVICES[rng.usize(..DEVICES.len())]));
        let country = (rng.f64() >= 0.02).then(|| COUNTRIES[rng.usize(..COUNTRIES.len())]);
        r.insert("country".into(), json!(country));
        // Exponential, mean 30 s; 1 % null.
        let duration = (rng.f64() >= 0.01).then(|| (-30_000.0 * (1.0 - rng.f64()).ln()) as u64);
        r.insert("duration_ms".into(), json!(duration));
        r.insert("ts".into(), json!(ts));
        // Roughly normal (Irwin–Hall), two decimals; absent from 5 % of the records.
        if rng.f64() >= 0.05 {
            let sum: f64 = (0..12).map(|_| rng.f64()).sum();
            r.insert(
                "score".into(),
                json!((((sum - 6.0) * 15.0 + 50.0) * 100.0).round() / 100.0),
            );
        }
        r.insert("returning".into(), json!(rng.bool()));
        let geo = rng.f64();
        if geo < 0.02 {
            r.insert("geo".into(), Value::Null);
        } else if geo >= 0.05 {
            r.insert(
                "geo".into(),
                json!({
                    "lat": ((rng.f64() * 180.0 - 90.0) * 1e4).round() / 1e4,
                    "lon": ((rng.f64() * 360.0 - 180.0) * 1e4).round() / 1e4,
                    "city": CITIES[rng.usize(..CITIES.len())],
                }),
            );
        }
        let items = rng.u64(0..8);
        r.insert(
            "cart".into(),
            json!({"items": items, "total": (items * rng.u64(100..10_000)) as f64 / 100.0}),
        );
        let tags: Vec<&str> = (0..rng.usize(0..4))
            .map(|_| TAGS[rng.usize(..TAGS.len())])
            .collect();
        r.insert("tags".into(), json!(tags));
        let prices: Vec<f64> = (0..rng.usize(0..3))
            .map(|_| rng.u64(1..50_000) as f64 / 100.0)
            .collect();
        r.insert("item_prices".into(), json!(prices));
        let record = Value::Object(r);
        collect_numbers(&record, "", &mut numbers);
        serde_json::to_writer(&mut out, &record).expect("write a record");
        out.write_all(b"\n").expect("write a record");
    }
    out.flush().expect("write the records");
    for values in numbers.values_mut() {
        values.sort_by(f64::total_cmp);
    }
    (std::fs::metadata(path).map_or(0, |m| m.len()), numbers)
}

fn collect_numbers(value: &Value, path: &str, into: &mut Numbers) {
    match value {
        Value::Number(x) => into
            .entry(path.to_string())
            .or_default()
            .push(x.as_f64().expect("a finite number")),
        Value::Object(fields) => {
            for (key, field) in fields {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect_numbers(field, &child, into);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_numbers(item, &format!("{path}[]"), into);
            }
        }
        _ => {}
    }
}

/// Mean, sample standard deviation and adjusted skewness, from deviations to the first value
/// (so a large offset such as epoch milliseconds costs no precision), in two passes.
fn exact_moments(sorted: &[f64]) -> (f64, f64, f64) {
    let n = sorted.len() as f64;
    let origin = sorted[0];
    let shift = sorted.iter().map(|x| x - origin).sum::<f64>() / n;
    let (m2, m3) = sorted.iter().fold((0.0, 0.0), |(m2, m3), x| {
        let d = x - origin - shift;
        (m2 + d * d, m3 + d * d * d)
    });
    let stddev = (m2 / (n - 1.0)).sqrt();
    let (m2n, m3n) = (m2 / n, m3 / n);
    let skewness = (n * (n - 1.0)).sqrt() / (n - 2.0) * m3n / m2n.powf(1.5);
    (origin + shift, stddev, skewness)
}

/// The order statistics a quantile at `q` lies between (pandas interpolates between them).
fn rank_neighbours(sorted: &[f64], q: f64) -> (f64, f64) {
    let h = q * (sorted.len() - 1) as f64;
    (sorted[h.floor() as usize], sorted[h.ceil() as usize])
}

/// Each bin's count against the numbers written in it, give or take those within the sketch's
/// relative error of its edges (documented: such a value may be counted in the bin beside).
fn check_histogram(report: &mut Report, column: &str, bins: &Value, sorted: &[f64], alpha: f64) {
    let count_in = |lo: f64, hi: f64, last: bool| {
        let from = sorted.partition_point(|x| *x < lo);
        let to = if last {
            sorted.partition_point(|x| *x <= hi)
        } else {
            sorted.partition_point(|x| *x < hi)
        };
        to.saturating_sub(from) as u64
    };
    let near = |edge: f64| {
        let (a, b) = (edge * (1.0 - alpha), edge * (1.0 + alpha));
        count_in(a.min(b), a.max(b), true)
    };
    let bins = bins.as_array().map(Vec::as_slice).unwrap_or_default();
    for (i, bin) in bins.iter().enumerate() {
        let (from, to) = (
            bin["from"].as_f64().unwrap_or(f64::NAN),
            bin["to"].as_f64().unwrap_or(f64::NAN),
        );
        let ours = bin["count"].as_u64().unwrap_or(0);
        let exact = count_in(from, to, i + 1 == bins.len());
        let slack = near(from) + near(to);
        report.check(
            column,
            &format!("histogram bin {i} [{from}, {to})"),
            ours.abs_diff(exact) <= slack,
            ours,
            format!("{exact} written there (± {slack} near its edges)"),
        );
    }
}

/// Relative distance of `x` from the interval [lo, hi] (0 inside it).
fn relative_distance(x: f64, lo: f64, hi: f64) -> f64 {
    if x < lo {
        (lo - x) / lo.abs()
    } else if x > hi {
        (x - hi) / hi.abs()
    } else {
        0.0
    }
}

#[derive(Debug, Default)]
struct Report {
    table: String,
    checks: usize,
    mismatches: Vec<String>,
    /// What the checks let pass but a reader should know.
    notes: Vec<String>,
}

impl Report {
    fn check(
        &mut self,
        field: &str,
        what: &str,
        ok: bool,
        ours: impl ToString,
        theirs: impl ToString,
    ) -> bool {
        self.checks += 1;
        if !ok {
            self.mismatches.push(format!(
                "{field} {what}: pipescope {} against ydata-profiling {}",
                ours.to_string(),
                theirs.to_string()
            ));
        }
        ok
    }
}

/// Compares pipescope's profile with ydata-profiling's report(s), field by field.
fn compare(ours: &Value, ydata_dir: &Path, timing: &Value, truth: &Numbers) -> Report {
    let profile = &ours["profile"];
    let fields: BTreeMap<&str, &Value> = profile["field_profiles"]
        .as_array()
        .expect("pipescope's JSON has profile.field_profiles")
        .iter()
        .map(|f| (f["path"].as_str().unwrap_or_default(), f))
        .collect();
    let sigma = profile["distinct_standard_error"].as_f64().unwrap_or(0.0);
    let alpha = profile["quantile_relative_error"].as_f64().unwrap_or(0.0);
    let arrays: Vec<&str> = timing["array_columns"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    let mut report = Report::default();
    let main = read_json(&ydata_dir.join("main.json"));
    let table = &main["table"];
    let valid = profile["valid"].as_u64().unwrap_or(0);
    report.check(
        "(records)",
        "count",
        Some(valid) == table["n"].as_u64(),
        valid,
        &table["n"],
    );
    let duplicates = profile["duplicates"].as_u64().unwrap_or(0);
    let their_duplicates = table["n_duplicates"].as_u64().unwrap_or(0);
    if profile["duplicates_exact"] == true {
        report.check(
            "(records)",
            "duplicates (exact)",
            duplicates == their_duplicates,
            duplicates,
            their_duplicates,
        );
    } else {
        // Past its exact range pipescope counts records − distinct records (HyperLogLog++): the
        // stated error is the distinct count's, relative to all the records.
        let bound = DISTINCT_SIGMAS * sigma * valid as f64;
        report.check(
            "(records)",
            &format!("duplicates (estimate, > {DISTINCT_SIGMAS} σ of {valid} records)"),
            (duplicates as f64 - their_duplicates as f64).abs() <= bound,
            duplicates,
            their_duplicates,
        );
        report.notes.push(format!(
            "duplicate records: pipescope {duplicates} (an estimate, ±{bound:.0} at {DISTINCT_SIGMAS} σ), ydata-profiling {their_duplicates}"
        ));
    }

    let mut frames = vec![(main.clone(), false)];
    for column in &arrays {
        frames.push((read_json(&ydata_dir.join(format!("{column}[].json"))), true));
    }
    let mut rows = String::from(
        "| field | ydata type | values | missing + null | distinct (pipescope / ydata) | min · max · mean | quantiles 5–95 %: largest relative difference to ydata / beyond the rank's values | string lengths | result |\n|---|---|---:|---:|---|---|---:|---|---|\n",
    );
    for (frame, elements) in &frames {
        let Some(variables) = frame["variables"].as_object() else {
            continue;
        };
        for (column, theirs) in variables {
            let before = report.mismatches.len();
            let Some(field) = fields.get(column.as_str()) else {
                report.check(column, "present", false, "no such path", "a column");
                continue;
            };
            let kind = theirs["type"].as_str().unwrap_or("?");
            if field["dominant_type"] == "object" {
                // json_normalize leaves a column for an object that is sometimes null, holding
                // only the nulls: not a field of its own in pipescope's sense.
                let _ = writeln!(
                    rows,
                    "| `{column}` | {kind} | | | | | | | object, not compared |"
                );
                continue;
            }
            let nulls = field["nulls"].as_u64().unwrap_or(0);
            let values = field["values"].as_u64().unwrap_or(0) - nulls;
            report.check(
                column,
                "values",
                Some(values) == theirs["count"].as_u64(),
                values,
                &theirs["count"],
            );
            let missing = field["missing"].as_u64().unwrap_or(0) + nulls;
            let missing_cell = if *elements {
                "—".to_string()
            } else {
                report.check(
                    column,
                    "missing + null",
                    Some(missing) == theirs["n_missing"].as_u64(),
                    missing,
                    &theirs["n_missing"],
                );
                missing.to_string()
            };

            // An array is profiled by ydata-profiling as its JSON text; pipescope counts only
            // scalars as distinct values (the elements are the `[]` path).
            let is_array = arrays.contains(&column.as_str());
            let distinct = field["distinct"].as_u64().unwrap_or(0);
            let their_distinct = theirs["n_distinct"].as_u64().unwrap_or(0);
            let distinct_cell = if is_array {
                "— (array)".to_string()
            } else if field["distinct_exact"] == true {
                report.check(
                    column,
                    "distinct (exact)",
                    distinct == their_distinct,
                    distinct,
                    their_distinct,
                );
                format!("{distinct} / {their_distinct} exact")
            } else {
                let error = (distinct as f64 - their_distinct as f64).abs() / their_distinct as f64;
                report.check(
                    column,
                    &format!("distinct (estimate, > {DISTINCT_SIGMAS} σ)"),
                    error <= DISTINCT_SIGMAS * sigma,
                    distinct,
                    their_distinct,
                );
                format!(
                    "{distinct} / {their_distinct} ({:+.2} %)",
                    100.0 * (distinct as f64 / their_distinct as f64 - 1.0)
                )
            };

            let mut numbers_cell = String::new();
            let mut quantile_cell = String::new();
            if kind == "Numeric" {
                let numbers = &field["numbers"];
                let get = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
                let written = truth
                    .get(column.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for (key, theirs_key) in [("min", "min"), ("max", "max"), ("zeros", "n_zeros")] {
                    let (a, b) = (get(numbers, key), get(theirs, theirs_key));
                    report.check(column, key, a == b, a, b);
                }
                // Rounding differs between Welford's update and pandas' passes: equal within
                // the tolerance to ydata-profiling, or else to the exact value of the numbers
                // written (computed here from their deviations to the first one).
                let exact = (written.len() > 2).then(|| exact_moments(written));
                for (i, (key, theirs_key, tolerance)) in [
                    ("mean", "mean", 1e-9),
                    ("stddev", "std", 1e-9),
                    ("skewness", "skewness", 1e-6),
                ]
                .into_iter()
                .enumerate()
                {
                    let (a, b) = (get(numbers, key), get(theirs, theirs_key));
                    let x = exact.map_or(f64::NAN, |e| [e.0, e.1, e.2][i]);
                    report.check(
                        column,
                        key,
                        close(a, b, tolerance) || close(a, x, tolerance),
                        a,
                        format!("{b} (exact {x})"),
                    );
                    if !close(b, x, tolerance) {
                        report.notes.push(format!(
                            "ydata-profiling off the exact value: {column} {key}: ydata-profiling {b}, pipescope {a}, exact {x}"
                        ));
                    }
                }
                numbers_cell = format!(
                    "{} · {} · {:.6}",
                    get(numbers, "min"),
                    get(numbers, "max"),
                    get(numbers, "mean")
                );
                let quantiles: Vec<(f64, f64)> = numbers["quantiles"]
                    .as_array()
                    .map(|q| {
                        q.iter()
                            .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
                            .collect()
                    })
                    .unwrap_or_default();
                let (mut worst, mut worst_bound): (f64, f64) = (0.0, 0.0);
                let unresolved = numbers["quantiles_unresolved"] == true;
                if unresolved {
                    // pipescope leaves out what its sketch cannot resolve: check that it is so.
                    let (min, max) = (get(numbers, "min"), get(numbers, "max"));
                    let bound = alpha * min.abs().max(max.abs());
                    report.check(
                        column,
                        "quantiles left out: the sketch's error is at least half the range",
                        quantiles.is_empty() && bound >= (max - min) / 2.0,
                        format!("±{bound} against a range of {}", max - min),
                        "none shown",
                    );
                    report.notes.push(format!(
                        "`{column}`: quantiles and histogram left out (±{:.0} is wider than half its range of {:.0})",
                        bound,
                        max - min
                    ));
                }
                for (name, q) in QUANTILES.into_iter().filter(|_| !unresolved) {
                    let ours_q = quantiles.iter().find(|(p, _)| *p == q).map(|(_, v)| *v);
                    let theirs_q = get(theirs, name);
                    let Some(ours_q) = ours_q else {
                        report.check(column, name, false, "none", theirs_q);
                        continue;
                    };
                    worst = worst.max(relative_error(ours_q, theirs_q));
                    // The sketch's bound holds for the value at the rank; pandas interpolates
                    // between the two order statistics around it, so the bound is checked
                    // against both (taken from the numbers written).
                    let (lo, hi) = if written.is_empty() {
                        (theirs_q, theirs_q)
                    } else {
                        rank_neighbours(written, q)
                    };
                    let beyond = relative_distance(ours_q, lo.min(theirs_q), hi.max(theirs_q));
                    worst_bound = worst_bound.max(beyond);
                    report.check(
                        column,
                        &format!("quantile {name} (±{} %)", alpha * 100.0),
                        beyond <= alpha + 1e-12,
                        ours_q,
                        format!("{theirs_q} (order statistics {lo} and {hi})"),
                    );
                }
                quantile_cell = if unresolved {
                    "left out (unresolved)".to_string()
                } else {
                    format!("{:.3} % / {:.3} %", worst * 100.0, worst_bound * 100.0)
                };
                let (min, max) = (get(numbers, "min"), get(numbers, "max"));
                for (q, value) in &quantiles {
                    report.check(
                        column,
                        &format!("quantile p{} within [min, max]", q * 100.0),
                        (min..=max).contains(value),
                        value,
                        format!("[{min}, {max}]"),
                    );
                }
                if !written.is_empty() && !unresolved {
                    check_histogram(&mut report, column, &numbers["histogram"], written, alpha);
                }
            }

            let mut lengths_cell = String::new();
            if let Some(their_min) = theirs["min_length"].as_u64()
                && !is_array
            {
                let lengths = &field["string_lengths"];
                let (min, max) = (
                    lengths["min"].as_u64().unwrap_or(0),
                    lengths["max"].as_u64().unwrap_or(0),
                );
                let mean = lengths["mean"].as_f64().unwrap_or(f64::NAN);
                let their_max = theirs["max_length"].as_u64().unwrap_or(0);
                let their_mean = theirs["mean_length"].as_f64().unwrap_or(f64::NAN);
                report.check(column, "shortest string", min == their_min, min, their_min);
                report.check(column, "longest string", max == their_max, max, their_max);
                report.check(
                    column,
                    "mean length",
                    close(mean, their_mean, 1e-9),
                    mean,
                    their_mean,
                );
                lengths_cell = format!("{min}–{max}, mean {mean:.4}");
            }
            let result = if report.mismatches.len() == before {
                "equal".to_string()
            } else {
                format!("**{} differ**", report.mismatches.len() - before)
            };
            let _ = writeln!(
                rows,
                "| `{column}` | {kind} | {values} | {missing_cell} | {distinct_cell} | {numbers_cell} | {quantile_cell} | {lengths_cell} | {result} |"
            );
        }
    }
    report.table = rows;
    report
}

fn close(a: f64, b: f64, relative: f64) -> bool {
    a == b || (a - b).abs() <= relative * a.abs().max(b.abs())
}

fn relative_error(ours: f64, theirs: f64) -> f64 {
    if ours == theirs {
        0.0
    } else {
        (ours - theirs).abs() / theirs.abs()
    }
}

#[derive(Debug)]
struct Run {
    wall: Duration,
    cpu_s: f64,
    peak_rss_kb: u64,
}

/// Runs `command` to its end: its wall time, CPU time and peak RSS. Panics, with its standard
/// error, when it fails.
fn run_timed(command: &mut Command, name: &str) -> Run {
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let status_path = format!("/proc/{}/status", child.id());
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let drain = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut peak_rss_kb = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        // VmHWM only grows: the last reading before the exit is the peak (to 50 ms).
        if let Some(kb) = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|s| vm_hwm_kb(&s))
        {
            peak_rss_kb = kb;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let wall = started.elapsed();
    let stderr = drain.join().unwrap_or_default();
    assert!(status.success(), "{name} failed ({status}):\n{stderr}");
    Run {
        wall,
        cpu_s: children_cpu_seconds() - cpu_before,
        peak_rss_kb,
    }
}

fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU seconds (user + system) of this process's children that have been waited for, from
/// /proc/self/stat (cutime, cstime).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The command name may hold spaces: the fields after it start past the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    // Fields 16 and 17 of stat(5); fields[0] is field 3.
    let ticks: f64 =
        fields[13].parse::<f64>().unwrap_or(0.0) + fields[14].parse::<f64>().unwrap_or(0.0);
    ticks / clock_ticks()
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn pipescope_binary() -> PathBuf {
    let path = std::env::var_os("PIPESCOPE_BIN").map_or_else(
        || {
            std::env::current_exe()
                .expect("this program's path")
                .with_file_name("pipescope")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no pipescope binary at {}: build it with `cargo build --release -p pipescope` or set PIPESCOPE_BIN",
        path.display()
    );
    path
}

/// ydata-profiling's version, or a panic that says how to install it.
fn check_python(python: &str) -> String {
    let output = Command::new(python)
        .args([
            "-W",
            "ignore",
            "-c",
            "import ydata_profiling; print(ydata_profiling.__version__)",
        ])
        .output();
    match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => panic!(
            "{python} cannot import ydata_profiling ({}): install it with `{INSTALL}` or set PIPESCOPE_BENCH_PYTHON to a python that has it",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run {python} ({e}): install ydata-profiling with `{INSTALL}` or set PIPESCOPE_BENCH_PYTHON"
        ),
    }
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}
