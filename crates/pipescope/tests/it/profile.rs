//! `pipescope profile`: exact figures of a generated file, a hostile file's report, and a
//! Kafka topic read by --last and --all.

use std::fmt::Write as _;
use std::process::{Command, Output};

use serde_json::Value;

use crate::kafka::create_topic;

fn pipescope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .arg("profile")
        .args(args)
        .output()
        .expect("run pipescope profile")
}

fn profile_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = pipescope(&all);
    assert!(
        out.status.success(),
        "pipescope profile {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the JSON profile")
}

fn field<'a>(profile: &'a Value, path: &str) -> &'a Value {
    profile["profile"]["field_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no field {path} in {profile:#}"))
}

fn u(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

#[test]
fn a_json_lines_file_is_profiled_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.jsonl");
    let line = |i: u64| {
        let mut fields = vec![format!("\"id\":{i}")];
        fields.push(if i.is_multiple_of(10) {
            "\"user\":null".to_string()
        } else {
            format!("\"user\":{{\"name\":\"u{}\"}}", i % 7)
        });
        if !i.is_multiple_of(5) {
            fields.push(format!("\"score\":{i}.5"));
        }
        fields.push(if i.is_multiple_of(3) {
            "\"tags\":[]".into()
        } else {
            "\"tags\":[\"a\",\"b\"]".into()
        });
        fields.push(if i.is_multiple_of(4) {
            "\"email\":\"\"".into()
        } else {
            format!("\"email\":\"e{i}@x\"")
        });
        format!("{{{}}}", fields.join(","))
    };
    let mut text = String::new();
    let mut valid: Vec<u64> = Vec::new();
    for i in 0..1000 {
        let _ = writeln!(text, "{}", line(i));
        valid.push(i);
        if i % 100 == 99 {
            let _ = writeln!(text, "garbage {i}");
        }
    }
    // Five copies of record 1, and a blank line (skipped).
    for _ in 0..5 {
        let _ = writeln!(text, "{}", line(1));
    }
    valid.extend([1; 5]);
    text.push('\n');
    std::fs::write(&path, text).unwrap();

    let report = dir.path().join("report.html");
    let json = profile_json(&[
        "--file",
        path.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
    ]);
    let p = &json["profile"];
    assert_eq!(u(&p["records"]), 1015);
    assert_eq!(u(&p["invalid"]), 10);
    assert_eq!(u(&p["valid"]), 1005);
    assert_eq!(u(&p["duplicates"]), 5);
    assert_eq!(p["duplicates_exact"], true);
    assert_eq!(u(&p["fields"]), 7);

    let count = |f: &dyn Fn(u64) -> bool| valid.iter().filter(|i| f(**i)).count() as u64;
    let user = field(&json, "user");
    assert_eq!(u(&user["present"]), 1005);
    assert_eq!(u(&user["nulls"]), count(&|i| i % 10 == 0));
    let name = field(&json, "user.name");
    let named = count(&|i| i % 10 != 0);
    assert_eq!(
        (u(&name["present"]), u(&name["missing"])),
        (named, 1005 - named)
    );
    assert_eq!(u(&name["distinct"]), 7);
    let u1 = name["top_values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["value"] == "\"u1\"")
        .unwrap();
    assert_eq!(u(&u1["count"]), count(&|i| i % 10 != 0 && i % 7 == 1));
    assert_eq!(u(&u1["error"]), 0);

    let score = field(&json, "score");
    let scores: Vec<f64> = valid
        .iter()
        .filter(|i| *i % 5 != 0)
        .map(|i| *i as f64 + 0.5)
        .collect();
    assert_eq!(u(&score["missing"]), 1005 - scores.len() as u64);
    let numbers = &score["numbers"];
    assert_eq!(u(&numbers["count"]), scores.len() as u64);
    assert_eq!(numbers["min"].as_f64(), Some(1.5));
    assert_eq!(numbers["max"].as_f64(), Some(999.5));
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    assert!((numbers["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    let mut sorted = scores.clone();
    sorted.sort_by(f64::total_cmp);
    for pair in numbers["quantiles"].as_array().unwrap() {
        let (q, value) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
        let truth = sorted[(q * (sorted.len() - 1) as f64) as usize];
        assert!(
            (value - truth).abs() <= truth * 0.01,
            "q{q}: {value} vs {truth}"
        );
    }
    assert_eq!(field(&json, "score")["types"][0]["type"], "float");

    let tags = field(&json, "tags");
    assert_eq!(u(&tags["empties"]), count(&|i| i % 3 == 0));
    let elements = field(&json, "tags[]");
    assert_eq!(u(&elements["present"]), count(&|i| i % 3 != 0));
    assert_eq!(u(&elements["values"]), 2 * count(&|i| i % 3 != 0));
    let email = field(&json, "email");
    assert_eq!(u(&email["empties"]), count(&|i| i % 4 == 0));
    assert_eq!(u(&email["string_lengths"]["min"]), 0);
    // 1000 distinct in 1005: past the exact range, within the sketch's error of unique.
    let id = field(&json, "id");
    assert_eq!(id["alerts"], serde_json::json!(["UNIQUE"]));
    assert!(u(&id["distinct"]).abs_diff(1000) <= 50, "{id}");
    // 100 nulls in 1005 records: over 5 %.
    assert_eq!(user["alerts"], serde_json::json!(["MISSING"]));

    let missing_cells: u64 = p["field_profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| u(&f["missing"]) + u(&f["nulls"]))
        .sum();
    assert_eq!(u(&p["missing_cells"]), missing_cells);

    let html = std::fs::read_to_string(&report).unwrap();
    assert_well_formed(&html);
    assert!(html.contains("user.name"));
}

/// Every tag closed in order (void elements aside); a `<` is always markup.
fn assert_well_formed(html: &str) {
    const VOID: [&str; 2] = ["meta", "br"];
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("a tag left open") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with("!DOCTYPE") {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        assert!(!name.is_empty(), "a stray < before {tag:?}");
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(open.pop().as_deref(), Some(closing), "tags out of order");
        } else if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "tags left open: {open:?}");
}

#[test]
fn a_hostile_file_makes_a_report_with_nothing_unescaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.jsonl");
    let mut bytes: Vec<u8> = Vec::new();
    bytes.extend_from_slice(
        br#"{"<script>alert(1)</script>":"<script>x</script>","a\"b'</pre>":"</pre><img src=x onerror=alert(1)>","\u0000<b>":1}"#,
    );
    bytes.push(b'\n');
    bytes.extend_from_slice(b"{\"k\":\"\xff\xfe<script>\"}\n");
    bytes.extend_from_slice(b"<script>alert(2)</script>\n");
    // 3 MB: over the 1 MiB record cap.
    bytes.extend_from_slice(b"{\"big\":\"");
    bytes.extend(std::iter::repeat_n(b'<', 3 << 20));
    bytes.extend_from_slice(b"\"}\n");
    // Past serde_json's recursion limit (invalid), then past the profile's depth cap (32).
    for depth in [200, 50] {
        bytes.extend(std::iter::repeat_n(b"{\"<i>\":".as_slice(), depth).flatten());
        bytes.extend_from_slice(b"1");
        bytes.extend(std::iter::repeat_n(b'}', depth));
        bytes.push(b'\n');
    }
    std::fs::write(&path, &bytes).unwrap();

    let report = dir.path().join("report.html");
    let json_out = dir.path().join("profile.json");
    let started = std::time::Instant::now();
    let out = pipescope(&[
        "--file",
        path.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
        "--json-out",
        json_out.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    let p = &json["profile"];
    assert_eq!(u(&p["records"]), 6);
    assert_eq!(u(&p["invalid"]), 4);
    assert_eq!(u(&p["depth_capped"]), 1);
    let reasons: Vec<&str> = p["invalid_examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons[2].contains("over --max-record-bytes"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("recursion limit"), "{reasons:?}");
    assert_eq!(
        p["invalid_examples"][0]["preview"],
        r#"{\"k\":\"\xff\xfe<script>\"}"#
    );
    // Paths are bounded by the depth cap.
    assert!(
        p["field_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["path"].as_str().unwrap().matches("<i>").count() <= 32)
    );

    let html = std::fs::read_to_string(&report).unwrap();
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "an unescaped <script");
    assert!(!lower.contains("<img"), "an unescaped <img");
    assert!(!html.contains('\u{0}'));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_well_formed(&html);
    assert!(
        html.len() < 1 << 20,
        "the report holds no huge record: {}",
        html.len()
    );
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

fn produce_json(bootstrap: &str, topic: &str, records: &[(i32, String)]) {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (partition, payload) in records {
        producer
            .send(
                BaseRecord::<(), str>::to(topic)
                    .partition(*partition)
                    .payload(payload.as_str()),
            )
            .unwrap();
    }
    producer
        .flush(std::time::Duration::from_secs(20))
        .expect("records delivered");
}

#[test]
fn a_kafka_topic_is_profiled_by_last_n_and_whole() {
    let tansu = pipescope_testkit::tansu::Tansu::start();
    let bootstrap = tansu.bootstrap();
    create_topic(&bootstrap, "visits", 2);
    // 20 records on partition 0, 10 on 1; every third has no page.
    let records: Vec<(i32, String)> = (0..30)
        .map(|i| {
            let page = if i % 3 == 0 {
                String::new()
            } else {
                format!(",\"page\":\"p{}\"", i % 4)
            };
            (i32::from(i >= 20), format!("{{\"visit\":{i}{page}}}"))
        })
        .collect();
    produce_json(&bootstrap, "visits", &records);

    let all = profile_json(&["--kafka", &bootstrap, "--topic", "visits", "--all"]);
    assert_eq!(u(&all["profile"]["records"]), 30);
    assert_eq!(u(&field(&all, "visit")["distinct"]), 30);
    assert_eq!(u(&field(&all, "page")["missing"]), 10);
    assert!(all["source"].as_str().unwrap().contains("all records"));

    // The last 10: 5 from each partition (visits 15..20 and 25..30).
    let last = profile_json(&["--kafka", &bootstrap, "--topic", "visits", "--last", "10"]);
    assert_eq!(u(&last["profile"]["records"]), 10);
    let visit = field(&last, "visit");
    assert_eq!(visit["numbers"]["min"].as_f64(), Some(15.0));
    assert_eq!(visit["numbers"]["max"].as_f64(), Some(29.0));
    let expected_missing = [15, 16, 17, 18, 19, 25, 26, 27, 28, 29]
        .iter()
        .filter(|i| *i % 3 == 0)
        .count() as u64;
    assert_eq!(u(&field(&last, "page")["missing"]), expected_missing);

    let out = pipescope(&["--kafka", &bootstrap, "--topic", "nope", "--all", "--json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn an_mqtt_filter_is_profiled_for_a_duration_retained_messages_included() {
    let mosquitto = pipescope_testkit::mosquitto::Mosquitto::start();
    let port = mosquitto.url().rsplit(':').next().unwrap().to_string();
    for (topic, payload) in [
        ("plant/a", r#"{"t":20.5}"#),
        ("plant/b", r#"{"t":null}"#),
        ("plant/c", "not json"),
    ] {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port, "-r", "-q", "1"])
            .args(["-t", topic, "-m", payload])
            .status()
            .expect("run mosquitto_pub");
        assert!(status.success());
    }
    let json = profile_json(&[
        "--mqtt",
        &mosquitto.url(),
        "--filter",
        "plant/#",
        "--duration",
        "1s",
    ]);
    assert_eq!(u(&json["profile"]["records"]), 3);
    assert_eq!(u(&json["profile"]["invalid"]), 1);
    let t = field(&json, "t");
    assert_eq!((u(&t["present"]), u(&t["nulls"])), (2, 1));
}
