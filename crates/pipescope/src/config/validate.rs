//! What types cannot say: required lists not empty, files readable, settings that go together.

use std::time::Duration;

use super::{Config, ConfigError, ENV_PREFIX, FlowHop, Tls, WebAuth};

/// What types cannot say: required lists not empty, files readable, settings that go together.
pub(super) fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    match &config.web.auth {
        WebAuth::None => {}
        WebAuth::Bearer { token } if token.expose().is_empty() => errors.push(
            ConfigError::new("web.auth.token", "the bearer token is empty").hint(
                "set a long random token, e.g. PIPESCOPE__WEB__AUTH__TOKEN=$(openssl rand -hex 32)",
            ),
        ),
        WebAuth::Bearer { .. } => {}
        WebAuth::Basic { user, password } => {
            if user.is_empty() || user.contains(':') {
                errors.push(
                    ConfigError::new("web.auth.user", "the user name is empty or holds a ':'")
                        .hint("HTTP basic auth cannot carry such a name: pick another"),
                );
            }
            if password.expose().is_empty() {
                errors.push(
                    ConfigError::new("web.auth.password", "the password is empty")
                        .hint("set one, e.g. PIPESCOPE__WEB__AUTH__PASSWORD=..."),
                );
            }
        }
    }
    for (i, host) in config.web.allowed_hosts.iter().enumerate() {
        let bad = host.trim().is_empty() || host.contains("://") || host.contains(['/', ' ', ',']);
        if bad {
            errors.push(
                ConfigError::new(
                    format!("web.allowed_hosts[{i}]"),
                    format!("{host:?} is not a host name"),
                )
                .hint("list names as \"pipescope.example.com\" or \"pipescope.example.com:7575\", no scheme or path; \"*\" allows any"),
            );
        }
    }
    for (i, origin) in config.web.allowed_origins.iter().enumerate() {
        let trimmed = origin.trim().trim_end_matches('/');
        let well_formed = trimmed == "*"
            || trimmed
                .split_once("://")
                .is_some_and(|(scheme, authority)| {
                    matches!(scheme, "http" | "https")
                        && !authority.is_empty()
                        && !authority.contains(['/', ' '])
                });
        if !well_formed {
            errors.push(
                ConfigError::new(
                    format!("web.allowed_origins[{i}]"),
                    format!("{origin:?} is not a web origin"),
                )
                .hint("write it as a browser sends it: \"https://grafana.example.com\" (scheme, host, port if not the default, no path); \"*\" allows any"),
            );
        }
    }
    let store = &config.store;
    for (key, value) in [
        ("retention_raw", store.retention_raw),
        ("retention_1m", store.retention_1m),
        ("retention_1h", store.retention_1h),
    ] {
        check_positive(&format!("store.{key}"), value, &mut errors);
    }
    if store.retention_1m < store.retention_raw || store.retention_1h < store.retention_1m {
        errors.push(
            ConfigError::new("store", "a coarser resolution is kept for less time than a finer one")
                .hint("keep retention_raw <= retention_1m <= retention_1h (defaults 24h, 30days, 365days)"),
        );
    }
    if config.series.max_per_source == 0 {
        errors.push(
            ConfigError::new("series.max_per_source", "0 lets no series into the store")
                .hint("use a cap above the series you expect (default 200000; `pipescope check --cluster-size` estimates them)"),
        );
    }
    check_positive(
        "series.retire_after",
        config.series.retire_after,
        &mut errors,
    );
    if let Some(size) = store.max_disk_size
        && size.0 < MIN_STORE_DISK_SIZE
    {
        errors.push(
            ConfigError::new("store.max_disk_size", format!("{} bytes is too small for the store", size.0))
                .hint("give it at least \"16MiB\" (it bounds the database; its write-ahead log may add up to 64 MiB), e.g. max_disk_size = \"2GiB\""),
        );
    }
    for (name, cluster) in &config.kafka {
        let at = format!("kafka.{name}");
        check_name(&at, name, &mut errors);
        if cluster.bootstrap.is_empty() {
            errors.push(
                ConfigError::new(format!("{at}.bootstrap"), "no brokers listed")
                    .hint("list at least one: bootstrap = [\"host:9092\"]"),
            );
        }
        check_positive(
            &format!("{at}.scrape_interval"),
            cluster.scrape_interval,
            &mut errors,
        );
        check_positive(
            &format!("{at}.request_timeout"),
            cluster.request_timeout,
            &mut errors,
        );
        if let Some(tls) = &cluster.tls {
            check_tls(&format!("{at}.tls"), tls, &mut errors);
        }
        if cluster.partition_top_k == 0 {
            errors.push(
                ConfigError::new(format!("{at}.partition_top_k"), "0 keeps no partition")
                    .hint("use 1 or more (default 200), or partition_series = \"none\""),
            );
        }
        if cluster.verdict_window < 2 {
            errors.push(
                ConfigError::new(
                    format!("{at}.verdict_window"),
                    format!(
                        "{} is too small: a verdict compares at least 2 observations",
                        cluster.verdict_window
                    ),
                )
                .hint("use 2 or more (default 10)"),
            );
        }
        for (key, patterns) in [
            ("groups_allow", &cluster.groups_allow),
            ("groups_deny", &cluster.groups_deny),
            ("topics_allow", &cluster.topics_allow),
            ("topics_deny", &cluster.topics_deny),
            ("partition_series_allow", &cluster.partition_series_allow),
            (
                "partition_series_groups_allow",
                &cluster.partition_series_groups_allow,
            ),
        ] {
            for (i, pattern) in patterns.iter().enumerate() {
                if let Err(e) = regex::Regex::new(pattern) {
                    let first_line = e.to_string().lines().last().unwrap_or_default().to_string();
                    errors.push(
                        ConfigError::new(
                            format!("{at}.{key}[{i}]"),
                            format!("invalid regex {pattern:?} ({})", first_line.trim()),
                        )
                        .hint("use Rust regex syntax, e.g. \"^payments-.*\""),
                    );
                }
            }
        }
        if let Some(sasl) = &cluster.sasl {
            if sasl.username.is_empty() {
                errors.push(ConfigError::new(format!("{at}.sasl.username"), "is empty"));
            }
            if sasl.password.expose().is_empty() {
                errors.push(
                    ConfigError::new(format!("{at}.sasl.password"), "is empty").hint(format!(
                        "set it here or in the environment variable {ENV_PREFIX}KAFKA__{}__SASL__PASSWORD",
                        name.to_uppercase()
                    )),
                );
            }
        }
    }
    for (name, broker) in &config.mqtt {
        let at = format!("mqtt.{name}");
        check_name(&at, name, &mut errors);
        if broker.password.is_some() && broker.username.is_none() {
            errors.push(ConfigError::new(
                format!("{at}.password"),
                "a password needs a username",
            ));
        }
        if let Some(tls) = &broker.tls {
            if !broker.url.tls {
                errors.push(
                    ConfigError::new(format!("{at}.tls"), "TLS settings with a plain mqtt:// url")
                        .hint(format!(
                            "use mqtts://{}:{}",
                            broker.url.host, broker.url.port
                        )),
                );
            }
            check_tls(&format!("{at}.tls"), tls, &mut errors);
        }
        if broker.filters.is_empty() {
            errors.push(
                ConfigError::new(format!("{at}.filters"), "no topic filters")
                    .hint("subscribe to everything with filters = [\"#\"]"),
            );
        }
        for (i, filter) in broker.filters.iter().enumerate() {
            if let Err(e) = pipescope_core::mqtt_filter::validate(filter) {
                errors.push(ConfigError::new(
                    format!("{at}.filters[{i}]"),
                    format!("{e}, got {filter:?}"),
                ));
            }
        }
        for (i, filter) in broker.export_filters.iter().enumerate() {
            if let Err(e) = pipescope_core::mqtt_filter::validate(filter) {
                errors.push(ConfigError::new(
                    format!("{at}.export_filters[{i}]"),
                    format!("{e}, got {filter:?}"),
                ));
            }
        }
        if broker.max_topics == 0 {
            errors.push(
                ConfigError::new(format!("{at}.max_topics"), "must be more than 0")
                    .hint("the default is 100000"),
            );
        }
        if broker.subscribe_qos > 2 {
            errors.push(ConfigError::new(
                format!("{at}.subscribe_qos"),
                format!("expected 0, 1 or 2, got {}", broker.subscribe_qos),
            ));
        }
        if broker.max_packet_size < 1024 || broker.max_packet_size > 268_435_455 {
            errors.push(
                ConfigError::new(
                    format!("{at}.max_packet_size"),
                    format!(
                        "expected 1024 to 268435455 bytes, got {}",
                        broker.max_packet_size
                    ),
                )
                .hint("MQTT packets are at most 268435455 bytes"),
            );
        }
        check_positive(
            &format!("{at}.reconnect_min"),
            broker.reconnect_min,
            &mut errors,
        );
        if broker.reconnect_max < broker.reconnect_min {
            errors.push(ConfigError::new(
                format!("{at}.reconnect_max"),
                "must be at least reconnect_min",
            ));
        }
        check_positive(
            &format!("{at}.sample_interval"),
            broker.sample_interval,
            &mut errors,
        );
        if let Some(tls) = &broker.tls
            && tls.cert.is_some()
            && tls.ca.is_none()
            && !tls.skip_verify
        {
            errors.push(
                ConfigError::new(format!("{at}.tls.ca"), "a client certificate needs ca too")
                    .hint("give the PEM file of the CA that signed the broker's certificate"),
            );
        }
        if broker.keep_alive < Duration::from_secs(5) {
            errors.push(
                ConfigError::new(format!("{at}.keep_alive"), "must be at least 5s")
                    .hint("rumqttc and most brokers reject shorter keep-alives"),
            );
        }
    }
    for (name, part) in &config.watched_parts {
        let at = format!("watched_parts.{name}");
        if !(part.url.starts_with("http://") || part.url.starts_with("https://")) {
            errors.push(ConfigError::new(
                format!("{at}.url"),
                format!(
                    "expected http://host:port (the part's --listen), got {:?}",
                    part.url
                ),
            ));
        }
        if part.interval.is_zero() || part.timeout.is_zero() {
            errors.push(ConfigError::new(
                at.clone(),
                "interval and timeout must be more than 0s",
            ));
        }
    }
    if let Some(influx) = &config.export.influx {
        let at = "export.influx";
        if !(influx.url.starts_with("http://") || influx.url.starts_with("https://")) {
            errors.push(ConfigError::new(
                format!("{at}.url"),
                format!(
                    "expected http://host:port or https://host:port, got {:?}",
                    influx.url
                ),
            ));
        }
        match influx.version {
            1 => {}
            2 => {
                for (key, missing) in [
                    ("org", influx.org.is_none()),
                    ("bucket", influx.bucket.is_none()),
                    ("token", influx.token.is_none()),
                ] {
                    if missing {
                        errors.push(ConfigError::new(
                            format!("{at}.{key}"),
                            "required when version = 2",
                        ));
                    }
                }
            }
            other => errors.push(
                ConfigError::new(
                    format!("{at}.version"),
                    format!("expected 1 or 2, got {other}"),
                )
                .hint("1 for InfluxDB 1.x (/write), 2 for InfluxDB 2.x (/api/v2/write)"),
            ),
        }
        check_positive(&format!("{at}.interval"), influx.interval, &mut errors);
        if influx.buffer_lines == 0 {
            errors.push(
                ConfigError::new(format!("{at}.buffer_lines"), "must be more than 0")
                    .hint("for example 100000"),
            );
        }
    }
    check_flows(config, &mut errors);
    check_probes(config, &mut errors);
    check_quality(config, &mut errors);
    check_alerts(config, &mut errors);
    check_alert_notifications(config, &mut errors);
    errors
}

/// An http(s) URL with a host and no `user:password@` (credentials belong in `user` and
/// `password`, which stay out of logs).
fn check_http_url(at: &str, url: &str, errors: &mut Vec<ConfigError>) {
    let authority = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match authority {
        None | Some("") => errors.push(
            ConfigError::new(at, format!("{url:?} is not an http:// or https:// URL"))
                .hint("for example \"http://alertmanager:9093\" or \"https://hooks.example.com/pipescope\""),
        ),
        Some(authority) if authority.contains('@') => errors.push(
            ConfigError::new(at, "the URL holds credentials (user:password@), which would reach the logs")
                .hint("put them in user and password, or token"),
        ),
        Some(_) => {}
    }
}

/// `[alerts]` receivers and routes: URLs, auth that goes together, routes naming receivers that
/// exist, regexes that compile.
fn check_alert_notifications(config: &Config, errors: &mut Vec<ConfigError>) {
    use crate::alerts::notify::ReceiverKind;
    let alerts = &config.alerts;
    if let Some(url) = &alerts.external_url {
        check_http_url("alerts.external_url", url, errors);
    }
    for (name, receiver) in &alerts.receivers {
        let at = format!("alerts.receivers.{name}");
        check_name(&at, name, errors);
        let urls = receiver.all_urls();
        match receiver.kind {
            ReceiverKind::Webhook if urls.len() != 1 => errors.push(
                ConfigError::new(&at, "a webhook receiver needs one url")
                    .hint("url = \"https://hooks.example.com/pipescope\""),
            ),
            ReceiverKind::Alertmanager if urls.is_empty() => errors.push(
                ConfigError::new(&at, "an alertmanager receiver needs its address")
                    .hint("url = \"http://alertmanager:9093\", or urls = [...] for a cluster"),
            ),
            _ => {}
        }
        for url in &urls {
            check_http_url(&format!("{at}.url"), url, errors);
        }
        match (&receiver.user, &receiver.password) {
            (Some(_), None) | (None, Some(_)) => errors.push(
                ConfigError::new(&at, "basic auth needs both user and password")
                    .hint("set both, or neither"),
            ),
            (Some(user), Some(_)) if user.is_empty() || user.contains(':') => errors.push(
                ConfigError::new(
                    format!("{at}.user"),
                    "the user name is empty or holds a ':'",
                )
                .hint("HTTP basic auth cannot carry such a name: pick another"),
            ),
            _ => {}
        }
        if receiver.token.is_some() && receiver.user.is_some() {
            errors.push(
                ConfigError::new(&at, "both token and user/password are set")
                    .hint("a request carries one Authorization header: keep one"),
            );
        }
        for header in receiver.headers.keys() {
            let token = !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token || header.eq_ignore_ascii_case("content-type") {
                errors.push(
                    ConfigError::new(format!("{at}.headers"), format!("{header:?} cannot be sent as a header name"))
                        .hint("use a name like X-Team (letters, digits, '-'); Content-Type is set by pipescope"),
                );
            }
        }
        check_positive(&format!("{at}.timeout"), receiver.timeout, errors);
        check_positive(&format!("{at}.resend_every"), receiver.resend_every, errors);
        if receiver.queue_capacity == 0 {
            errors.push(
                ConfigError::new(format!("{at}.queue_capacity"), "must be more than 0")
                    .hint("for example 1000"),
            );
        }
    }
    let known = |receiver: &str| alerts.receivers.contains_key(receiver);
    let unknown = |at: String, receiver: &str| {
        let names: Vec<&str> = alerts.receivers.keys().map(String::as_str).collect();
        ConfigError::new(at, format!("no receiver is named {receiver:?}")).hint(format!(
            "define [alerts.receivers.{receiver}] or use one of: {}",
            if names.is_empty() {
                "(none defined)".to_string()
            } else {
                names.join(", ")
            }
        ))
    };
    if let Some(receiver) = &alerts.route.receiver
        && !known(receiver)
    {
        errors.push(unknown("alerts.route.receiver".to_string(), receiver));
    }
    for (i, route) in alerts.routes.iter().enumerate() {
        let at = format!("alerts.routes[{i}]");
        if !known(&route.receiver) {
            errors.push(unknown(format!("{at}.receiver"), &route.receiver));
        }
        for (label, pattern) in &route.match_re {
            if let Err(e) = regex::Regex::new(pattern) {
                errors.push(
                    ConfigError::new(
                        format!("{at}.match_re.{label}"),
                        format!("not a regex ({e})"),
                    )
                    .hint("it must match the whole label value, e.g. \"orders|payments.*\""),
                );
            }
        }
    }
    if !alerts.routes.is_empty() || alerts.route.receiver.is_some() {
        return;
    }
    if !alerts.receivers.is_empty() {
        errors.push(
            ConfigError::new(
                "alerts",
                "receivers are defined but nothing routes alerts to them",
            )
            .hint("set [alerts.route] receiver = \"NAME\", or add [[alerts.routes]]"),
        );
    }
}

/// Labels every alert has, which a rule's own labels may not set.
const RESERVED_ALERT_LABELS: [&str; 2] = ["alertname", "severity"];

/// Alert rules: a usable evaluation interval, names fit for labels, kinds whose settings build,
/// sources of this file, templates naming labels the rule has.
fn check_alerts(config: &Config, errors: &mut Vec<ConfigError>) {
    let alerts = &config.alerts;
    if alerts.evaluate_every < Duration::from_secs(1) {
        errors.push(
            ConfigError::new(
                "alerts.evaluate_every",
                format!("{:?} is shorter than 1s", alerts.evaluate_every),
            )
            .hint("for example evaluate_every = \"15s\""),
        );
    }
    if alerts.max_instances_per_rule == 0 {
        errors.push(
            ConfigError::new("alerts.max_instances_per_rule", "must be 1 or more")
                .hint("for example 1000"),
        );
    }
    if let Some(url) = &alerts.external_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        errors.push(
            ConfigError::new("alerts.external_url", format!("{url:?} is not an http(s) URL"))
                .hint("the portal's address as its users reach it, e.g. \"https://pipescope.example.com\""),
        );
    }
    for (name, rule) in &alerts.rules {
        let at = format!("alerts.rules.{name}");
        check_name(&at, name, errors);
        let kind = match rule.kind.build() {
            Ok(kind) => kind,
            Err((key, message)) => {
                errors.push(
                    ConfigError::new(format!("{at}.{key}"), message)
                        .hint("see docs/alerts.md for the kind's settings"),
                );
                continue;
            }
        };
        let (key, named) = rule.kind.sources();
        if let Some(name) = named.filter(|n| is_plain_name(n)) {
            let (exists, section, names): (bool, &str, Vec<&String>) = match key {
                "cluster" => (
                    config.kafka.contains_key(name),
                    "[kafka.",
                    config.kafka.keys().collect(),
                ),
                "broker" => (
                    config.mqtt.contains_key(name),
                    "[mqtt.",
                    config.mqtt.keys().collect(),
                ),
                "flow" => (
                    config.flows.contains_key(name),
                    "[flows.",
                    config.flows.keys().collect(),
                ),
                "part" => (
                    config.watched_parts.contains_key(name),
                    "[watched_parts.",
                    config.watched_parts.keys().collect(),
                ),
                _ => (
                    config.quality.contains_key(name),
                    "[quality.",
                    config.quality.keys().collect(),
                ),
            };
            let what = match key {
                "cluster" => "Kafka cluster",
                "broker" => "MQTT broker",
                "flow" => "observed flow",
                "part" => "watched part",
                _ => "quality topic",
            };
            if !exists {
                errors.push(
                    ConfigError::new(
                        format!("{at}.{key}"),
                        format!("no {what} \"{name}\" in this file"),
                    )
                    .hint(known(section, names.into_iter())),
                );
            }
        }
        for label in rule.labels.keys() {
            let valid = label
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid
                || RESERVED_ALERT_LABELS.contains(&label.as_str())
                || kind.label_names().contains(&label.as_str())
            {
                errors.push(
                    ConfigError::new(format!("{at}.labels.{label}"), "is not a label this rule may set")
                        .hint(format!(
                            "label names are letters, digits and '_', not starting with a digit; {} and the kind's own ({}) are set by pipescope",
                            RESERVED_ALERT_LABELS.join(", "),
                            kind.label_names().join(", ")
                        )),
                );
            }
        }
        for (key, template) in [
            ("summary", rule.summary.as_deref().unwrap_or("")),
            ("description", &rule.description),
        ] {
            for used in pipescope_core::alerts::engine::template_names(template) {
                let known_name = used == "value"
                    || RESERVED_ALERT_LABELS.contains(&used.as_str())
                    || kind.label_names().contains(&used.as_str())
                    || rule.labels.contains_key(&used);
                if !known_name {
                    errors.push(
                        ConfigError::new(format!("{at}.{key}"), format!("{{{used}}} is not a label of this rule"))
                            .hint(format!(
                                "use {{value}}, {{alertname}}, {{severity}}, the kind's labels ({}) or the rule's own; write {{{{ for a literal brace",
                                kind.label_names().join(", ")
                            )),
                    );
                }
            }
        }
    }
}

/// A pattern that is a plain name (no regex syntax): then it must name a source of the file.
fn is_plain_name(pattern: &str) -> bool {
    pattern
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

/// Longest quality window: the 15-minute view is made of whole windows.
const MAX_QUALITY_WINDOW: Duration = Duration::from_secs(900);

/// A quality topic reads a broker or cluster of this file; its rules and drift thresholds
/// compile (the core says what is wrong); its window and caps are usable.
fn check_quality(config: &Config, errors: &mut Vec<ConfigError>) {
    for (name, quality) in &config.quality {
        let at = format!("quality.{name}");
        if let Err(e) = quality.topic_config().compile(name) {
            errors.push(ConfigError::new(at.clone(), e.what));
        }
        if let Some(broker) = &quality.mqtt
            && !config.mqtt.contains_key(broker)
        {
            errors.push(
                ConfigError::new(
                    format!("{at}.mqtt"),
                    format!("no MQTT broker {broker:?} in this file"),
                )
                .hint(known("[mqtt.", config.mqtt.keys())),
            );
        }
        if let Some(filter) = &quality.filter
            && let Err(e) = pipescope_core::mqtt_filter::validate(filter)
        {
            errors.push(ConfigError::new(
                format!("{at}.filter"),
                format!("{e}, got {filter:?}"),
            ));
        }
        if let Some(cluster) = &quality.kafka
            && !config.kafka.contains_key(cluster)
        {
            errors.push(
                ConfigError::new(
                    format!("{at}.kafka"),
                    format!("no Kafka cluster {cluster:?} in this file"),
                )
                .hint(known("[kafka.", config.kafka.keys())),
            );
        }
        if quality.topic.as_deref().is_some_and(str::is_empty) {
            errors.push(
                ConfigError::new(format!("{at}.topic"), "empty topic name")
                    .hint("for example topic = \"visits\""),
            );
        }
        if quality.window < Duration::from_secs(1) || quality.window > MAX_QUALITY_WINDOW {
            errors.push(
                ConfigError::new(
                    format!("{at}.window"),
                    format!("{:?} is not from 1s to 15m", quality.window),
                )
                .hint("for example window = \"1m\""),
            );
        }
        if quality.sample == 0 {
            errors.push(
                ConfigError::new(format!("{at}.sample"), "must be 1 or more")
                    .hint("1 profiles every record, 10 one in ten"),
            );
        }
        if !(1..=10_000).contains(&quality.max_fields) {
            errors.push(
                ConfigError::new(
                    format!("{at}.max_fields"),
                    format!("{} is not from 1 to 10000", quality.max_fields),
                )
                .hint("for example max_fields = 256"),
            );
        }
        if let Some(other) = config.quality.keys().find(|other| {
            *other < name
                && pipescope_core::quality::reports::file_stem(other)
                    == pipescope_core::quality::reports::file_stem(name)
        }) {
            errors.push(
                ConfigError::new(
                    at.clone(),
                    format!("its report files would be named like those of [quality.{other}]"),
                )
                .hint("names differing only in '.' and '_' share a file name: rename one"),
            );
        }
        if name == "reports" {
            errors.push(
                ConfigError::new(
                    at.clone(),
                    "the name \"reports\" is taken by /api/v1/quality/reports",
                )
                .hint("pick another name, e.g. [quality.reports_topic]"),
            );
        }
        if let Some(every) = quality.report_every
            && (every < MIN_REPORT_EVERY || every < quality.window)
        {
            errors.push(
                ConfigError::new(
                    format!("{at}.report_every"),
                    format!(
                        "{every:?} is shorter than 10s or than the window ({:?}): a report is made of whole windows",
                        quality.window
                    ),
                )
                .hint("for example report_every = \"1h\""),
            );
        }
        if !(1..=10_000).contains(&quality.keep_reports) {
            errors.push(
                ConfigError::new(
                    format!("{at}.keep_reports"),
                    format!("{} is not from 1 to 10000", quality.keep_reports),
                )
                .hint("for example keep_reports = 48"),
            );
        }
    }
}

/// Shortest `report_every`: a report is a file write and a directory scan.
const MIN_REPORT_EVERY: Duration = Duration::from_secs(10);

/// A Kafka probe runs on a cluster of the same file, on a named topic, at a positive interval.
fn check_probes(config: &Config, errors: &mut Vec<ConfigError>) {
    for (cluster, probe) in &config.probes.kafka {
        let at = format!("probes.kafka.{cluster}");
        if !config.kafka.contains_key(cluster) {
            let known: Vec<&str> = config.kafka.keys().map(String::as_str).collect();
            errors.push(
                ConfigError::new(&at, format!("no Kafka cluster {cluster:?} in this file")).hint(
                    format!("name a [kafka.<name>] of this file: {}", known.join(", ")),
                ),
            );
        }
        if probe.topic.is_empty() {
            errors.push(
                ConfigError::new(format!("{at}.topic"), "empty")
                    .hint("leave it out for \"pipescope-probe\""),
            );
        }
        check_positive(&format!("{at}.interval"), probe.interval, errors);
        check_positive(&format!("{at}.timeout"), probe.timeout, errors);
        if probe.partitions == Some(0) {
            errors.push(
                ConfigError::new(format!("{at}.partitions"), "must be more than 0")
                    .hint("leave it out for one partition per broker"),
            );
        }
    }
    for (broker, probe) in &config.probes.mqtt {
        let at = format!("probes.mqtt.{broker}");
        check_probe_broker(config, &at, broker, errors);
        check_publish_topic(&format!("{at}.topic"), &probe.topic, errors);
        check_positive(&format!("{at}.interval"), probe.interval, errors);
        check_positive(&format!("{at}.timeout"), probe.timeout, errors);
    }
    for (name, probe) in &config.probes.bridge {
        let at = format!("probes.bridge.{name}");
        check_probe_broker(config, &format!("{at}.mqtt"), &probe.mqtt, errors);
        check_publish_topic(&format!("{at}.mqtt_topic"), &probe.mqtt_topic, errors);
        if !config.kafka.contains_key(&probe.kafka) {
            let known: Vec<&str> = config.kafka.keys().map(String::as_str).collect();
            errors.push(
                ConfigError::new(
                    format!("{at}.kafka"),
                    format!("no Kafka cluster {:?} in this file", probe.kafka),
                )
                .hint(format!(
                    "name a [kafka.<name>] of this file: {}",
                    known.join(", ")
                )),
            );
        }
        if probe.kafka_topic.is_empty() {
            errors.push(
                ConfigError::new(format!("{at}.kafka_topic"), "empty")
                    .hint("the Kafka topic the bridge maps mqtt_topic to, e.g. \"machine.data\""),
            );
        }
        check_positive(&format!("{at}.interval"), probe.interval, errors);
        check_positive(&format!("{at}.timeout"), probe.timeout, errors);
    }
}

fn check_probe_broker(config: &Config, at: &str, broker: &str, errors: &mut Vec<ConfigError>) {
    if !config.mqtt.contains_key(broker) {
        let known: Vec<&str> = config.mqtt.keys().map(String::as_str).collect();
        errors.push(
            ConfigError::new(at, format!("no MQTT broker {broker:?} in this file")).hint(format!(
                "name a [mqtt.<name>] of this file: {}",
                known.join(", ")
            )),
        );
    }
}

/// A probe publishes to its topic, so it is a topic name, not a filter.
fn check_publish_topic(at: &str, topic: &str, errors: &mut Vec<ConfigError>) {
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        errors.push(
            ConfigError::new(at, format!("not a topic one can publish to: {topic:?}"))
                .hint("a topic without wildcards, e.g. \"pipescope/probe\""),
        );
    }
}

/// Each hop reads from a broker or cluster of the same file, through one valid filter or topic.
fn check_flows(config: &Config, errors: &mut Vec<ConfigError>) {
    for (name, flow) in &config.flows {
        let at = format!("flows.{name}");
        check_name(&at, name, errors);
        if flow.hops.is_empty() {
            errors.push(
                ConfigError::new(format!("{at}.hops"), "no hops").hint(
                    "list the observed points in pipeline order, e.g. hops = [{ mqtt = \"edge\", filter = \"machine/#\" }, { kafka = \"prod\", topic = \"machine.data\" }]",
                ),
            );
        }
        if flow.max_streams == 0 {
            errors.push(
                ConfigError::new(format!("{at}.max_streams"), "must be more than 0")
                    .hint("for example 100000"),
            );
        }
        check_positive(&format!("{at}.grace"), flow.grace, errors);
        if flow.horizon < flow.grace {
            errors.push(
                ConfigError::new(format!("{at}.horizon"), "shorter than the grace")
                    .hint("lost gaps are remembered from when they are lost: keep horizon >= grace (defaults 60s, 10s)"),
            );
        }
        if let Some(share) = &flow.share {
            if !flow.hops.iter().any(|h| h.kafka.is_some()) {
                errors.push(
                    ConfigError::new(format!("{at}.share"), "the flow has no Kafka hop to share")
                        .hint(
                            "only Kafka hops are split between instances: add one, or remove share",
                        ),
                );
            }
            check_kafka_name(&format!("{at}.share.group"), &share.group, errors);
            check_kafka_name(
                &format!("{at}.share.handover_topic"),
                &share.handover_topic,
                errors,
            );
        }
        for (i, hop) in flow.hops.iter().enumerate() {
            let at = format!("{at}.hops[{i}]");
            match hop {
                FlowHop {
                    mqtt: Some(broker),
                    filter,
                    kafka: None,
                    topic: None,
                    inputs,
                } => {
                    if *inputs {
                        errors.push(
                            ConfigError::new(format!("{at}.inputs"), "only a Kafka hop counts the inputs its records name")
                                .hint("a processor writes pipescope-inputs to Kafka: put inputs = true on its output topic's hop"),
                        );
                    }
                    if !config.mqtt.contains_key(broker) {
                        errors.push(
                            ConfigError::new(
                                format!("{at}.mqtt"),
                                format!("no MQTT broker {broker:?} in this file"),
                            )
                            .hint(known("[mqtt.", config.mqtt.keys())),
                        );
                    }
                    match filter {
                        None => errors.push(
                            ConfigError::new(format!("{at}.filter"), "an MQTT hop needs a topic filter")
                                .hint("for example filter = \"machine/#\""),
                        ),
                        Some(filter) => {
                            if let Err(e) = pipescope_core::mqtt_filter::validate(filter) {
                                errors.push(ConfigError::new(
                                    format!("{at}.filter"),
                                    format!("{e}, got {filter:?}"),
                                ));
                            }
                        }
                    }
                }
                FlowHop {
                    kafka: Some(cluster),
                    topic,
                    mqtt: None,
                    filter: None,
                    ..
                } => {
                    if !config.kafka.contains_key(cluster) {
                        errors.push(
                            ConfigError::new(
                                format!("{at}.kafka"),
                                format!("no Kafka cluster {cluster:?} in this file"),
                            )
                            .hint(known("[kafka.", config.kafka.keys())),
                        );
                    }
                    if topic.as_deref().is_none_or(str::is_empty) {
                        errors.push(
                            ConfigError::new(format!("{at}.topic"), "a Kafka hop needs a topic")
                                .hint("for example topic = \"machine.data\""),
                        );
                    }
                }
                _ => errors.push(
                    ConfigError::new(at, "a hop is either { mqtt, filter } or { kafka, topic }")
                        .hint("for example { mqtt = \"edge\", filter = \"machine/#\" } or { kafka = \"prod\", topic = \"machine.data\" }"),
                ),
            }
        }
    }
}

/// "add a [mqtt.<name>] section" or the names there are.
fn known<'a>(section: &str, names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        format!("add a {section}<name>] section for it")
    } else {
        format!("the file has {}", names.join(", "))
    }
}

/// Names appear in URLs and metric labels, so they are kept to a safe alphabet.
fn check_name(at: &str, name: &str, errors: &mut Vec<ConfigError>) {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        errors.push(
            ConfigError::new(at, format!("invalid name {name:?}"))
                .hint("use letters, digits, '-', '_' and '.'"),
        );
    }
}

/// A group or topic name Kafka accepts: 1 to 249 of letters, digits, '.', '_' and '-'.
fn check_kafka_name(at: &str, name: &str, errors: &mut Vec<ConfigError>) {
    let valid = !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid {
        errors.push(
            ConfigError::new(at, format!("invalid name {name:?}")).hint(
                "1 to 249 letters, digits, '-', '_' or '.', e.g. \"pipescope-flow-machines\"",
            ),
        );
    }
}

fn check_positive(at: &str, value: Duration, errors: &mut Vec<ConfigError>) {
    if value.is_zero() {
        errors.push(ConfigError::new(at, "must be more than 0").hint("for example \"10s\""));
    }
}

fn check_tls(at: &str, tls: &Tls, errors: &mut Vec<ConfigError>) {
    match (&tls.cert, &tls.key) {
        (Some(_), None) => errors.push(ConfigError::new(
            format!("{at}.key"),
            "a client cert needs its key",
        )),
        (None, Some(_)) => errors.push(ConfigError::new(
            format!("{at}.cert"),
            "a client key needs its cert",
        )),
        _ => {}
    }
    for (key, file) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
        if let Some(file) = file
            && let Err(e) = std::fs::metadata(file)
        {
            errors.push(
                ConfigError::new(
                    format!("{at}.{key}"),
                    format!("cannot read {} ({e})", file.display()),
                )
                .hint("give the path of a PEM file"),
            );
        }
    }
}

/// The smallest `[store] max_disk_size`: the store's empty tables and a few blocks of data.
const MIN_STORE_DISK_SIZE: u64 = 16 << 20;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::parse;
    use super::super::tests::errors_of;

    #[test]
    fn tls_files_must_exist_and_cert_goes_with_key() {
        let errors = errors_of(
            "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.tls]\nca = \"/nonexistent/ca.pem\"\ncert = \"/nonexistent/c.pem\"\n",
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("kafka.k.tls.key: a client cert needs its key")),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("kafka.k.tls.ca: cannot read /nonexistent/ca.pem")),
            "{errors:#?}"
        );
    }

    #[test]
    fn store_retention_defaults_and_checks() {
        let config = parse("empty", "", []).unwrap();
        assert_eq!(config.store.retention_raw, Duration::from_secs(86_400));
        assert_eq!(config.store.retention_1m, Duration::from_secs(30 * 86_400));
        assert_eq!(config.store.retention_1h, Duration::from_secs(365 * 86_400));
        let errors = errors_of(
            "[store]\nretention_raw = \"0s\"\nretention_1m = \"1h\"\nretention_1h = \"30m\"\n",
        );
        assert_eq!(
            errors,
            vec![
                "store.retention_raw: must be more than 0 — for example \"10s\"",
                "store: a coarser resolution is kept for less time than a finer one — keep retention_raw <= retention_1m <= retention_1h (defaults 24h, 30days, 365days)",
            ]
        );
    }

    #[test]
    fn kafka_filter_regexes_are_checked() {
        let errors = errors_of(
            "[kafka.k]\nbootstrap = \"a:1\"\ngroups_allow = [\"^ok-.*\", \"(\"]\ntopics_deny = [\"[\"]\n",
        );
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("kafka.k.groups_allow[1]: invalid regex \"(\""),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with("kafka.k.topics_deny[0]: invalid regex \"[\""),
            "{errors:#?}"
        );
        let errors = errors_of("[kafka.k]\nbootstrap = \"a:1\"\nverdict_window = 1\n");
        assert_eq!(
            errors,
            vec![
                "kafka.k.verdict_window: 1 is too small: a verdict compares at least 2 observations — use 2 or more (default 10)"
            ]
        );
        let errors = errors_of(
            "[series]\nmax_per_source = 0\n[kafka.k]\nbootstrap = \"a:1\"\npartition_top_k = 0\npartition_series_allow = [\"(\"]\n",
        );
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors[0]
                .starts_with("series.max_per_source: 0 lets no series into the store — use a cap"),
            "{errors:#?}"
        );
        assert_eq!(
            errors[1],
            "kafka.k.partition_top_k: 0 keeps no partition — use 1 or more (default 200), or partition_series = \"none\""
        );
        assert!(
            errors[2].starts_with("kafka.k.partition_series_allow[0]: invalid regex \"(\""),
            "{errors:#?}"
        );
        let errors =
            errors_of("[kafka.k]\nbootstrap = \"a:1\"\nmetrics_granularity = \"topics\"\n");
        assert_eq!(
            errors,
            vec!["kafka.k.metrics_granularity: unknown value \"topics\" — did you mean \"topic\"?"]
        );
    }

    #[test]
    fn mqtt_watcher_keys_are_checked() {
        let errors = errors_of(
            "[mqtt.m]\nurl = \"mqtt://h\"\nmax_topics = 0\nsubscribe_qos = 3\nexport_filters = [\"a/#/b\"]\nmax_packet_size = 10\nreconnect_min = \"2s\"\nreconnect_max = \"1s\"\n",
        );
        for fragment in [
            "mqtt.m.max_topics: must be more than 0",
            "mqtt.m.subscribe_qos: expected 0, 1 or 2, got 3",
            "mqtt.m.export_filters[0]: '#' must be the whole last level",
            "mqtt.m.max_packet_size: expected 1024 to 268435455 bytes, got 10",
            "mqtt.m.reconnect_max: must be at least reconnect_min",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(fragment)),
                "missing {fragment:?} in {errors:#?}"
            );
        }
        let config = parse("t", "[mqtt.m]\nurl = \"mqtt://h\"\n", []).unwrap();
        let m = &config.mqtt["m"];
        assert_eq!(
            (m.max_topics, m.subscribe_qos, m.subscribe_sys),
            (100_000, 2, true)
        );
        assert!(m.export_filters.is_empty());
        assert_eq!(m.reconnect_max, Duration::from_secs(30));
    }

    #[test]
    fn influx_v2_needs_org_bucket_and_token() {
        let errors = errors_of("[export.influx]\nurl = \"http://h:8086\"\nversion = 2\n");
        assert_eq!(
            errors,
            vec![
                "export.influx.org: required when version = 2",
                "export.influx.bucket: required when version = 2",
                "export.influx.token: required when version = 2",
            ]
        );
    }

    #[test]
    fn only_a_kafka_hop_counts_the_inputs_its_records_name() {
        let base = "[mqtt.edge]\nurl = \"mqtt://h\"\n[kafka.prod]\nbootstrap = \"a:1\"\n";
        let ok = parse(
            "t",
            &format!(
                "{base}[flows.m]\nhops = [{{ kafka = \"prod\", topic = \"machine.data\" }}, {{ kafka = \"prod\", topic = \"machine.out\", inputs = true }}]\n"
            ),
            [],
        )
        .unwrap();
        assert_eq!(
            ok.flows["m"]
                .hops
                .iter()
                .map(|h| h.inputs)
                .collect::<Vec<_>>(),
            [false, true]
        );
        let errors = errors_of(&format!(
            "{base}[flows.m]\nhops = [{{ mqtt = \"edge\", filter = \"machine/#\", inputs = true }}]\n"
        ));
        assert_eq!(
            errors,
            vec![
                "flows.m.hops[0].inputs: only a Kafka hop counts the inputs its records name — a processor writes pipescope-inputs to Kafka: put inputs = true on its output topic's hop"
            ]
        );
    }

    #[test]
    fn quality_reports_are_off_unless_asked_and_span_10s_and_whole_windows() {
        let base =
            "[mqtt.edge]\nurl = \"mqtt://h\"\n[quality.m]\nmqtt = \"edge\"\nfilter = \"m/#\"\n";
        let off = parse("t", base, []).unwrap();
        assert_eq!(off.quality["m"].report_every, None);
        assert_eq!(off.quality["m"].keep_reports, 48);
        assert_eq!(off.store.reports_dir(), PathBuf::from("reports"));
        let on = parse(
            "t",
            &format!("[store]\npath = \"/var/lib/p/data\"\n{base}report_every = \"1h\"\nkeep_reports = 3\n"),
            [],
        )
        .unwrap();
        assert_eq!(
            on.quality["m"].report_every,
            Some(Duration::from_secs(3600))
        );
        assert_eq!(on.store.reports_dir(), PathBuf::from("/var/lib/p/reports"));
        let errors = errors_of(&format!(
            "{base}window = \"1m\"\nreport_every = \"30s\"\nkeep_reports = 0\n"
        ));
        assert_eq!(
            errors,
            vec![
                "quality.m.report_every: 30s is shorter than 10s or than the window (60s): a report is made of whole windows — for example report_every = \"1h\"",
                "quality.m.keep_reports: 0 is not from 1 to 10000 — for example keep_reports = 48",
            ]
        );
        assert_eq!(
            errors_of(
                "[mqtt.edge]\nurl = \"mqtt://h\"\n[quality.reports]\nmqtt = \"edge\"\nfilter = \"m/#\"\n"
            ),
            vec![
                "quality.reports: the name \"reports\" is taken by /api/v1/quality/reports — pick another name, e.g. [quality.reports_topic]"
            ]
        );
        assert_eq!(
            errors_of(&format!(
                "{base}[quality.\"m.x\"]\nmqtt = \"edge\"\nfilter = \"m/#\"\n[quality.m_x]\nmqtt = \"edge\"\nfilter = \"m/#\"\n"
            )),
            vec![
                "quality.m_x: its report files would be named like those of [quality.m.x] — names differing only in '.' and '_' share a file name: rename one"
            ]
        );
    }

    #[test]
    fn quality_topics_name_a_source_of_the_file_and_usable_windows() {
        let base = "[mqtt.edge]\nurl = \"mqtt://h\"\n[kafka.prod]\nbootstrap = \"a:1\"\n";
        let ok = parse(
            "t",
            &format!(
                "{base}[quality.visits]\nkafka = \"prod\"\ntopic = \"visits\"\nrules = [{{ field = \"user_id\", not_null = true }}]\n[quality.machines]\nmqtt = \"edge\"\nfilter = \"machine/#\"\nwindow = \"10s\"\nsample = 10\n"
            ),
            [],
        )
        .unwrap();
        let visits = &ok.quality["visits"];
        assert_eq!(
            (visits.window, visits.sample, visits.max_fields),
            (Duration::from_secs(60), 1, 256)
        );
        assert_eq!(ok.quality["machines"].window, Duration::from_secs(10));
        let errors = errors_of(&format!(
            "{base}[quality.a]\nkafka = \"nope\"\ntopic = \"t\"\nwindow = \"1h\"\nsample = 0\n[quality.b]\nmqtt = \"edge\"\nfilter = \"a/#/b\"\nmax_fields = 0\n[quality.c]\nkafka = \"prod\"\nrules = [{{ field = \"x..y\", not_null = true }}]\n"
        ));
        assert_eq!(
            errors,
            [
                "quality.a.kafka: no Kafka cluster \"nope\" in this file — the file has prod",
                "quality.a.window: 3600s is not from 1s to 15m — for example window = \"1m\"",
                "quality.a.sample: must be 1 or more — 1 profiles every record, 10 one in ten",
                "quality.b.filter: '#' must be the whole last level, as in \"sensors/#\", got \"a/#/b\"",
                "quality.b.max_fields: 0 is not from 1 to 10000 — for example max_fields = 256",
                "quality.c: name one source: kafka = \"<cluster>\" with topic = \"<topic>\", or mqtt = \"<broker>\" with filter = \"<filter>\"",
            ]
        );
    }

    #[test]
    fn flow_hops_name_brokers_and_clusters_of_the_file() {
        let base = "[mqtt.edge]\nurl = \"mqtt://h\"\n[kafka.prod]\nbootstrap = \"a:1\"\n";
        let ok = parse(
            "t",
            &format!(
                "{base}[flows.machines]\nhops = [{{ mqtt = \"edge\", filter = \"machine/#\" }}, {{ kafka = \"prod\", topic = \"machine.data\" }}]\n"
            ),
            [],
        )
        .unwrap();
        let flow = &ok.flows["machines"];
        assert_eq!(flow.hops.len(), 2);
        assert_eq!(flow.grace, Duration::from_secs(10));
        assert_eq!(flow.horizon, Duration::from_secs(60));
        assert_eq!(flow.max_streams, 100_000);
        let errors = errors_of(&format!(
            "{base}[flows.f]\nhops = [{{ mqtt = \"nope\", filter = \"a/#/b\" }}, {{ kafka = \"other\" }}, {{ mqtt = \"edge\", topic = \"t\" }}]\ngrace = \"20s\"\nhorizon = \"10s\"\n[flows.empty]\nhops = []\n"
        ));
        assert_eq!(
            errors,
            vec![
                "flows.empty.hops: no hops — list the observed points in pipeline order, e.g. hops = [{ mqtt = \"edge\", filter = \"machine/#\" }, { kafka = \"prod\", topic = \"machine.data\" }]",
                "flows.f.horizon: shorter than the grace — lost gaps are remembered from when they are lost: keep horizon >= grace (defaults 60s, 10s)",
                "flows.f.hops[0].mqtt: no MQTT broker \"nope\" in this file — the file has edge",
                "flows.f.hops[0].filter: '#' must be the whole last level, as in \"sensors/#\", got \"a/#/b\"",
                "flows.f.hops[1].kafka: no Kafka cluster \"other\" in this file — the file has prod",
                "flows.f.hops[1].topic: a Kafka hop needs a topic — for example topic = \"machine.data\"",
                "flows.f.hops[2]: a hop is either { mqtt, filter } or { kafka, topic } — for example { mqtt = \"edge\", filter = \"machine/#\" } or { kafka = \"prod\", topic = \"machine.data\" }",
            ]
        );
    }

    #[test]
    fn a_shared_flow_names_its_group_and_has_a_kafka_hop() {
        let base = "[mqtt.edge]\nurl = \"mqtt://h\"\n[kafka.prod]\nbootstrap = \"a:1\"\n";
        let kafka = "hops = [{ kafka = \"prod\", topic = \"t\" }]";
        let ok = parse(
            "t",
            &format!("{base}[flows.m]\n{kafka}\nshare = {{ group = \"pipescope-flow-m\" }}\n[flows.n]\n{kafka}\n"),
            [],
        )
        .unwrap();
        let share = ok.flows["m"].share.as_ref().unwrap();
        assert_eq!(share.group, "pipescope-flow-m");
        assert_eq!(share.handover_topic, "pipescope-handover");
        assert_eq!(ok.flows["n"].share, None, "off by default");
        let errors = errors_of(&format!(
            "{base}[flows.m]\nhops = [{{ mqtt = \"edge\", filter = \"a/#\" }}]\nshare = {{ group = \"a b\", handover_topic = \"\" }}\n"
        ));
        assert_eq!(
            errors,
            vec![
                "flows.m.share: the flow has no Kafka hop to share — only Kafka hops are split between instances: add one, or remove share",
                "flows.m.share.group: invalid name \"a b\" — 1 to 249 letters, digits, '-', '_' or '.', e.g. \"pipescope-flow-machines\"",
                "flows.m.share.handover_topic: invalid name \"\" — 1 to 249 letters, digits, '-', '_' or '.', e.g. \"pipescope-flow-machines\"",
            ]
        );
    }

    #[test]
    fn kafka_probes_name_a_cluster_of_the_file_and_default_to_pipescope_probe() {
        let base = "[kafka.prod]\nbootstrap = \"k:9092\"\n";
        let ok = parse("t", &format!("{base}[probes.kafka.prod]\n"), []).unwrap();
        let probe = &ok.probes.kafka["prod"];
        assert_eq!(probe.topic, "pipescope-probe");
        assert_eq!(probe.interval, Duration::from_secs(1));
        assert_eq!(probe.timeout, Duration::from_secs(5));
        assert_eq!(probe.partitions, None);
        assert!(parse("t", base, []).unwrap().probes.kafka.is_empty());
        let errors = errors_of(&format!(
            "{base}[probes.kafka.other]\ntopic = \"\"\ninterval = \"0s\"\npartitions = 0\n"
        ));
        assert_eq!(
            errors,
            vec![
                "probes.kafka.other: no Kafka cluster \"other\" in this file — name a [kafka.<name>] of this file: prod",
                "probes.kafka.other.topic: empty — leave it out for \"pipescope-probe\"",
                "probes.kafka.other.interval: must be more than 0 — for example \"10s\"",
                "probes.kafka.other.partitions: must be more than 0 — leave it out for one partition per broker",
            ]
        );
    }

    #[test]
    fn mqtt_and_bridge_probes_name_brokers_and_clusters_of_the_file() {
        let base = "[mqtt.edge]\nurl = \"mqtt://m\"\n[kafka.prod]\nbootstrap = \"k:9092\"\n";
        let ok = parse(
            "t",
            &format!(
                "{base}[probes.mqtt.edge]\n[probes.bridge.machines]\nmqtt = \"edge\"\nmqtt_topic = \"machine/probe/pipescope\"\nkafka = \"prod\"\nkafka_topic = \"machine.data\"\n"
            ),
            [],
        )
        .unwrap();
        let probe = &ok.probes.mqtt["edge"];
        assert_eq!(probe.topic, "pipescope/probe");
        assert_eq!(probe.interval, Duration::from_secs(1));
        assert_eq!(probe.timeout, Duration::from_secs(5));
        assert_eq!(
            ok.probes.bridge["machines"].interval,
            Duration::from_secs(1)
        );
        let errors = errors_of(&format!(
            "{base}[probes.mqtt.other]\ntopic = \"a/+\"\ntimeout = \"0s\"\n\
             [probes.bridge.b]\nmqtt = \"x\"\nmqtt_topic = \"\"\nkafka = \"y\"\nkafka_topic = \"\"\ninterval = \"0s\"\n"
        ));
        assert_eq!(
            errors,
            vec![
                "probes.mqtt.other: no MQTT broker \"other\" in this file — name a [mqtt.<name>] of this file: edge",
                "probes.mqtt.other.topic: not a topic one can publish to: \"a/+\" — a topic without wildcards, e.g. \"pipescope/probe\"",
                "probes.mqtt.other.timeout: must be more than 0 — for example \"10s\"",
                "probes.bridge.b.mqtt: no MQTT broker \"x\" in this file — name a [mqtt.<name>] of this file: edge",
                "probes.bridge.b.mqtt_topic: not a topic one can publish to: \"\" — a topic without wildcards, e.g. \"pipescope/probe\"",
                "probes.bridge.b.kafka: no Kafka cluster \"y\" in this file — name a [kafka.<name>] of this file: prod",
                "probes.bridge.b.kafka_topic: empty — the Kafka topic the bridge maps mqtt_topic to, e.g. \"machine.data\"",
                "probes.bridge.b.interval: must be more than 0 — for example \"10s\"",
            ]
        );
    }

    #[test]
    fn allowed_hosts_and_origins_are_checked() {
        let errors = errors_of(
            "[web]\nallowed_hosts = [\"ok.example\", \"https://bad.example\"]\nallowed_origins = [\"https://ok.example:8443\", \"ok.example\", \"https://bad.example/path\"]\n",
        );
        for fragment in [
            "web.allowed_hosts[1]: \"https://bad.example\" is not a host name",
            "web.allowed_origins[1]: \"ok.example\" is not a web origin",
            "web.allowed_origins[2]: \"https://bad.example/path\" is not a web origin",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(fragment)),
                "missing {fragment:?} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), 3, "{errors:#?}");
        let config = parse(
            "t",
            "[web]\nallowed_hosts = [\"*\"]\nallowed_origins = [\"*\"]\n",
            [],
        )
        .unwrap();
        assert_eq!(config.web.allowed_hosts, ["*"]);
    }

    #[test]
    fn alert_rules_are_checked_with_their_path_and_a_hint() {
        let base = "[kafka.prod]\nbootstrap = \"a:1\"\n";
        let errors = errors_of(&format!(
            "{base}[alerts]\nevaluate_every = \"100ms\"\n\
             [alerts.rules.a]\nkind = \"group_lag_offsets\"\ncluster = \"nope\"\nabove = 1\nsummary = \"{{group}} {{topic}}\"\n\
             [alerts.rules.b]\nkind = \"group_verdict\"\nverdicts = [\"STUCK\"]\n\
             [alerts.rules.c]\nkind = \"topic_silent\"\ntopic = \"(\"\nsilent_for = \"1m\"\n\
             [alerts.rules.d]\nkind = \"mqtt_unreachable\"\nlabels = {{ severity = \"x\", team = \"t\" }}\n\
             [alerts.rules.e]\nkind = \"group_lag_offsets\"\nabove = 1\nthreshold = 3\n\
             [alerts.rules.f]\nkind = \"no_such_kind\"\n\
             [alerts.rules.g]\nkind = \"flow_lost\"\nflow = \"machines\"\nabove = 0\n\
             [alerts.rules.h]\nkind = \"quality_errors\"\nquality = \"visits\"\nabove = -1\n"
        ));
        let has = |prefix: &str| {
            assert!(
                errors.iter().any(|e| e.starts_with(prefix)),
                "no {prefix:?} in {errors:#?}"
            );
        };
        has("alerts.evaluate_every: 100ms is shorter than 1s");
        has("alerts.rules.a.cluster: no Kafka cluster \"nope\" in this file — the file has prod");
        has("alerts.rules.a.summary: {topic} is not a label of this rule");
        has("alerts.rules.b.verdicts: \"STUCK\" is not a verdict");
        has("alerts.rules.c.topic: invalid regex");
        has("alerts.rules.d.labels.severity: is not a label this rule may set");
        has("alerts.rules.e");
        has("alerts.rules.f");
        has(
            "alerts.rules.g.flow: no observed flow \"machines\" in this file — add a [flows.<name>] section for it",
        );
        has("alerts.rules.h.above: -1 is not a number of records (0 or more)");
        assert!(
            !errors.iter().any(|e| e.contains("labels.team")),
            "{errors:#?}"
        );
    }
}
