//! Properties of the loader: any valid configuration written as TOML loads back as written, and
//! the example (its commented-out sections too) uses only keys the loader knows.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use toml::{Table, Value};

use super::*;

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1u64..100_000).prop_map(Duration::from_millis),
        (1u64..10_000_000).prop_map(Duration::from_secs),
    ]
}

/// Humantime text as people write it (`1h 2m 3s`), which is what the loader must read.
fn written(d: Duration) -> Value {
    Value::String(humantime::format_duration(d).to_string())
}

fn any_text() -> impl Strategy<Value = String> {
    // Quotes, backslashes, newlines, non-ASCII: TOML escaping must carry them.
    "[a-zA-Z0-9 \"\\\\\n\t'é€😀#=\\[\\]{}.-]{1,24}"
}

fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}(\\.[a-z][a-z0-9-]{0,8}){0,2}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,12}"
}

fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("#".to_string()),
        "[a-z0-9]{1,6}(/([a-z0-9 ]{1,6}|\\+)){0,3}(/#)?",
    ]
}

#[derive(Debug, Clone)]
struct GenKafka {
    bootstrap: Vec<HostPort>,
    scrape_interval: Duration,
    request_timeout: Duration,
    verdict_window: usize,
    groups_allow: Vec<String>,
    topics_deny: Vec<String>,
    granularity: MetricsGranularity,
    sasl: Option<(SaslMechanism, String, String)>,
}

fn kafka() -> impl Strategy<Value = GenKafka> {
    (
        prop::collection::vec((host(), 1u16..), 1..4),
        duration(),
        duration(),
        2usize..1_000,
        prop::collection::vec("\\^?[a-z0-9_-]{0,8}(\\.\\*)?", 0..3),
        prop::collection::vec("[a-z0-9_-]{1,8}", 0..3),
        prop_oneof![
            Just(MetricsGranularity::Partition),
            Just(MetricsGranularity::Topic)
        ],
        prop::option::of((
            prop_oneof![
                Just(SaslMechanism::Plain),
                Just(SaslMechanism::ScramSha256),
                Just(SaslMechanism::ScramSha512)
            ],
            any_text(),
            any_text(),
        )),
    )
        .prop_map(|(bootstrap, si, rt, vw, ga, td, g, sasl)| GenKafka {
            bootstrap: bootstrap
                .into_iter()
                .map(|(host, port)| HostPort { host, port })
                .collect(),
            scrape_interval: si,
            request_timeout: rt,
            verdict_window: vw,
            groups_allow: ga,
            topics_deny: td,
            granularity: g,
            sasl,
        })
}

#[derive(Debug, Clone)]
struct GenMqtt {
    url: MqttUrl,
    credentials: Option<(String, Option<String>)>,
    client_id: Option<String>,
    protocol: MqttProtocol,
    filters: Vec<String>,
    export_filters: Vec<String>,
    clean_session: bool,
    keep_alive: Duration,
    max_topics: usize,
    subscribe_qos: u8,
    max_packet_size: usize,
    reconnect: (Duration, Duration),
    subscribe_sys: bool,
    sys_wait: Duration,
    sample_interval: Duration,
}

fn mqtt() -> impl Strategy<Value = GenMqtt> {
    (
        (any::<bool>(), host(), 1u16..),
        prop::option::of((any_text(), prop::option::of(any_text()))),
        prop::option::of(any_text()),
        prop_oneof![Just(MqttProtocol::V311), Just(MqttProtocol::V5)],
        prop::collection::vec(filter(), 1..4),
        prop::collection::vec(filter(), 0..3),
        (any::<bool>(), 5u64..100_000, 1usize..10_000_000, 0u8..=2),
        1024usize..=268_435_455,
        (duration(), duration()),
        (any::<bool>(), duration(), duration()),
    )
        .prop_map(
            |(
                (tls, host, port),
                credentials,
                client_id,
                protocol,
                filters,
                export_filters,
                (clean_session, keep_alive, max_topics, subscribe_qos),
                max_packet_size,
                (a, b),
                (subscribe_sys, sys_wait, sample_interval),
            )| GenMqtt {
                url: MqttUrl { tls, host, port },
                credentials,
                client_id,
                protocol,
                filters,
                export_filters,
                clean_session,
                keep_alive: Duration::from_secs(keep_alive),
                max_topics,
                subscribe_qos,
                max_packet_size,
                reconnect: (a.min(b), a.max(b)),
                subscribe_sys,
                sys_wait,
                sample_interval,
            },
        )
}

#[derive(Debug, Clone)]
struct Generated {
    listen_port: u16,
    auth: WebAuthGen,
    allowed_hosts: Vec<String>,
    store_path: String,
    retentions: [Duration; 3],
    kafka: BTreeMap<String, GenKafka>,
    mqtt: BTreeMap<String, GenMqtt>,
    influx: Option<GenInflux>,
}

#[derive(Debug, Clone)]
struct GenInflux {
    url: String,
    /// Version 2's org, bucket and token; version 1 when absent.
    v2: Option<(String, String, String)>,
    database: String,
    interval: Duration,
    buffer_lines: usize,
}

#[derive(Debug, Clone)]
enum WebAuthGen {
    None,
    Bearer(String),
    Basic(String, String),
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        any::<u16>(),
        prop_oneof![
            Just(WebAuthGen::None),
            any_text().prop_map(WebAuthGen::Bearer),
            ("[a-zA-Z0-9é_-]{1,12}", any_text()).prop_map(|(u, p)| WebAuthGen::Basic(u, p)),
        ],
        prop::collection::vec(host(), 0..3),
        any_text(),
        prop::collection::vec(duration(), 3),
        prop::collection::btree_map(name(), kafka(), 0..3),
        prop::collection::btree_map(name(), mqtt(), 0..3),
        prop::option::of((
            (host(), 1u16..),
            prop::option::of((any_text(), any_text(), any_text())),
            any_text(),
            duration(),
            1usize..10_000_000,
        )),
    )
        .prop_map(
            |(listen_port, auth, allowed_hosts, store_path, mut ret, kafka, mqtt, influx)| {
                ret.sort();
                Generated {
                    listen_port,
                    auth,
                    allowed_hosts,
                    store_path,
                    retentions: [ret[0], ret[1], ret[2]],
                    kafka,
                    mqtt,
                    influx: influx.map(|((h, p), v2, database, interval, buffer_lines)| {
                        GenInflux {
                            url: format!("http://{h}:{p}"),
                            v2,
                            database,
                            interval,
                            buffer_lines,
                        }
                    }),
                }
            },
        )
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().cloned().map(Value::String).collect())
}

fn table(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Table(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// The configuration file for `g`, built as a TOML tree and written by the toml crate.
fn toml_text(g: &Generated) -> String {
    let mut root = Table::new();
    let auth = match &g.auth {
        WebAuthGen::None => table([("type", Value::from("none"))]),
        WebAuthGen::Bearer(t) => table([("type", "bearer".into()), ("token", t.as_str().into())]),
        WebAuthGen::Basic(u, p) => table([
            ("type", "basic".into()),
            ("user", u.as_str().into()),
            ("password", p.as_str().into()),
        ]),
    };
    root.insert(
        "web".into(),
        table([
            ("listen", format!("127.0.0.1:{}", g.listen_port).into()),
            ("auth", auth),
            ("allowed_hosts", strings(&g.allowed_hosts)),
        ]),
    );
    root.insert(
        "store".into(),
        table([
            ("path", g.store_path.as_str().into()),
            ("retention_raw", written(g.retentions[0])),
            ("retention_1m", written(g.retentions[1])),
            ("retention_1h", written(g.retentions[2])),
        ]),
    );
    let mut kafka = Table::new();
    for (name, k) in &g.kafka {
        let Value::Table(mut t) = table([
            (
                "bootstrap",
                strings(
                    &k.bootstrap
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                ),
            ),
            ("scrape_interval", written(k.scrape_interval)),
            ("request_timeout", written(k.request_timeout)),
            ("verdict_window", Value::Integer(k.verdict_window as i64)),
            ("groups_allow", strings(&k.groups_allow)),
            ("topics_deny", strings(&k.topics_deny)),
            (
                "metrics_granularity",
                match k.granularity {
                    MetricsGranularity::Partition => "partition",
                    MetricsGranularity::Topic => "topic",
                }
                .into(),
            ),
        ]) else {
            unreachable!()
        };
        if let Some((mechanism, user, password)) = &k.sasl {
            let mechanism = match mechanism {
                SaslMechanism::Plain => "PLAIN",
                SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
                SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            };
            t.insert(
                "sasl".into(),
                table([
                    ("mechanism", mechanism.into()),
                    ("username", user.as_str().into()),
                    ("password", password.as_str().into()),
                ]),
            );
        }
        kafka.insert(name.clone(), Value::Table(t));
    }
    root.insert("kafka".into(), Value::Table(kafka));
    let mut mqtt = Table::new();
    for (name, m) in &g.mqtt {
        let Value::Table(mut t) = table([
            ("url", m.url.to_string().into()),
            (
                "protocol",
                match m.protocol {
                    MqttProtocol::V311 => "3.1.1",
                    MqttProtocol::V5 => "5",
                }
                .into(),
            ),
            ("filters", strings(&m.filters)),
            ("export_filters", strings(&m.export_filters)),
            ("clean_session", m.clean_session.into()),
            ("keep_alive", written(m.keep_alive)),
            ("max_topics", Value::Integer(m.max_topics as i64)),
            ("subscribe_qos", Value::Integer(m.subscribe_qos.into())),
            ("max_packet_size", Value::Integer(m.max_packet_size as i64)),
            ("reconnect_min", written(m.reconnect.0)),
            ("reconnect_max", written(m.reconnect.1)),
            ("subscribe_sys", m.subscribe_sys.into()),
            ("sys_wait", written(m.sys_wait)),
            ("sample_interval", written(m.sample_interval)),
        ]) else {
            unreachable!()
        };
        if let Some((user, password)) = &m.credentials {
            t.insert("username".into(), user.as_str().into());
            if let Some(p) = password {
                t.insert("password".into(), p.as_str().into());
            }
        }
        if let Some(id) = &m.client_id {
            t.insert("client_id".into(), id.as_str().into());
        }
        mqtt.insert(name.clone(), Value::Table(t));
    }
    root.insert("mqtt".into(), Value::Table(mqtt));
    if let Some(i) = &g.influx {
        let Value::Table(mut t) = table([
            ("url", i.url.as_str().into()),
            (
                "version",
                Value::Integer(if i.v2.is_some() { 2 } else { 1 }),
            ),
            ("database", i.database.as_str().into()),
            ("interval", written(i.interval)),
            ("buffer_lines", Value::Integer(i.buffer_lines as i64)),
        ]) else {
            unreachable!()
        };
        if let Some((org, bucket, token)) = &i.v2 {
            t.insert("org".into(), org.as_str().into());
            t.insert("bucket".into(), bucket.as_str().into());
            t.insert("token".into(), token.as_str().into());
        }
        root.insert("export".into(), table([("influx", Value::Table(t))]));
    }
    toml::to_string(&root).expect("a TOML tree writes")
}

/// What `g` must load as; secrets are compared by value separately (their Debug hides them).
fn expected(g: &Generated) -> Config {
    Config {
        web: Web {
            listen: format!("127.0.0.1:{}", g.listen_port).parse().unwrap(),
            auth: match &g.auth {
                WebAuthGen::None => WebAuth::None,
                WebAuthGen::Bearer(t) => WebAuth::Bearer {
                    token: Secret::new(t),
                },
                WebAuthGen::Basic(u, p) => WebAuth::Basic {
                    user: u.clone(),
                    password: Secret::new(p),
                },
            },
            allowed_hosts: g.allowed_hosts.clone(),
            allowed_origins: Vec::new(),
        },
        store: StoreConfig {
            path: g.store_path.clone().into(),
            retention_raw: g.retentions[0],
            retention_1m: g.retentions[1],
            retention_1h: g.retentions[2],
            max_disk_size: None,
            move_corrupt_aside: false,
            reports_dir: None,
        },
        kafka: g
            .kafka
            .iter()
            .map(|(name, k)| {
                let cluster = KafkaCluster {
                    bootstrap: k.bootstrap.clone(),
                    scrape_interval: k.scrape_interval,
                    request_timeout: k.request_timeout,
                    tls: None,
                    sasl: k.sasl.as_ref().map(|(mechanism, username, password)| Sasl {
                        mechanism: *mechanism,
                        username: username.clone(),
                        password: Secret::new(password),
                    }),
                    groups_allow: k.groups_allow.clone(),
                    groups_deny: Vec::new(),
                    topics_allow: Vec::new(),
                    topics_deny: k.topics_deny.clone(),
                    metrics_granularity: k.granularity,
                    verdict_window: k.verdict_window,
                    partition_series: Default::default(),
                    partition_series_allow: Vec::new(),
                    partition_series_groups_allow: Vec::new(),
                    partition_top_k: pipescope_core::series_budget::DEFAULT_PARTITION_TOP_K,
                    committed_offsets: Default::default(),
                };
                (name.clone(), cluster)
            })
            .collect(),
        mqtt: g
            .mqtt
            .iter()
            .map(|(name, m)| {
                let broker = MqttBroker {
                    url: m.url.clone(),
                    username: m.credentials.as_ref().map(|c| c.0.clone()),
                    password: m
                        .credentials
                        .as_ref()
                        .and_then(|c| c.1.as_ref().map(Secret::new)),
                    client_id: m.client_id.clone(),
                    protocol: m.protocol,
                    filters: m.filters.clone(),
                    clean_session: m.clean_session,
                    keep_alive: m.keep_alive,
                    tls: None,
                    max_topics: m.max_topics,
                    export_filters: m.export_filters.clone(),
                    subscribe_qos: m.subscribe_qos,
                    max_packet_size: m.max_packet_size,
                    reconnect_min: m.reconnect.0,
                    reconnect_max: m.reconnect.1,
                    subscribe_sys: m.subscribe_sys,
                    sys_wait: m.sys_wait,
                    sample_interval: m.sample_interval,
                };
                (name.clone(), broker)
            })
            .collect(),
        export: Export {
            influx: g.influx.as_ref().map(|i| InfluxExport {
                url: i.url.clone(),
                version: if i.v2.is_some() { 2 } else { 1 },
                database: i.database.clone(),
                username: None,
                password: None,
                org: i.v2.as_ref().map(|v| v.0.clone()),
                bucket: i.v2.as_ref().map(|v| v.1.clone()),
                token: i.v2.as_ref().map(|v| Secret::new(&v.2)),
                interval: i.interval,
                buffer_lines: i.buffer_lines,
            }),
        },
        // Flows are checked by their own tests (config::validate, completeness).
        flows: Default::default(),
        probes: Default::default(),
        quality: Default::default(),
        watched_parts: Default::default(),
        alerts: Default::default(),
        series: Default::default(),
    }
}

/// Every secret of a configuration, by where it is, exposed.
fn secrets(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match &c.web.auth {
        WebAuth::None => {}
        WebAuth::Bearer { token } => out.push(("web".into(), token.expose().into())),
        WebAuth::Basic { password, .. } => out.push(("web".into(), password.expose().into())),
    }
    for (name, k) in &c.kafka {
        if let Some(s) = &k.sasl {
            out.push((format!("kafka.{name}"), s.password.expose().into()));
        }
    }
    for (name, m) in &c.mqtt {
        if let Some(p) = &m.password {
            out.push((format!("mqtt.{name}"), p.expose().into()));
        }
    }
    if let Some(t) = c.export.influx.as_ref().and_then(|i| i.token.as_ref()) {
        out.push(("influx".into(), t.expose().into()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_valid_config_written_as_toml_loads_back_as_written(g in generated()) {
        let text = toml_text(&g);
        let loaded = match parse("generated.toml", &text, []) {
            Ok(config) => config,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        let want = expected(&g);
        prop_assert_eq!(format!("{loaded:#?}"), format!("{want:#?}"), "{}", text);
        prop_assert_eq!(secrets(&loaded), secrets(&want), "{}", text);
    }
}

/// The example with its commented-out sections and keys switched on (`# [table]`, `# key = v`).
fn example_uncommented() -> String {
    let key_or_table = regex::Regex::new(r"^# (\[[a-z._]+\]|[a-z_]+ = )").unwrap();
    EXAMPLE
        .lines()
        .map(|line| match key_or_table.is_match(line) {
            true => &line[2..],
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_key_in_the_example_is_one_the_loader_knows() {
    parse("example", EXAMPLE, []).expect("the example loads");
    let text = example_uncommented();
    assert!(
        text.contains("\n[kafka.prod.sasl]\nmechanism = ") && text.contains("\n[export.influx]\n"),
        "the commented-out sections were switched on:\n{text}"
    );
    // Its files do not exist here, so validation may object; no key may be unknown.
    let errors = match parse("example, uncommented", &text, []) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors,
    };
    let unknown: Vec<String> = errors
        .iter()
        .filter(|e| e.message.contains("unknown"))
        .map(ToString::to_string)
        .collect();
    assert!(unknown.is_empty(), "{unknown:?}\n{text}");
}
