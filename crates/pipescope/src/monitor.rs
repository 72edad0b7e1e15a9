//! `pipescope run`: the long-running monitor. It serves HTTP until its [`Stop`] fires (in
//! `pipescope run`, on Ctrl-C or SIGTERM); its watchers run under a [`Supervisor`].

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use pipescope_core::{Clock, SystemClock};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::bus::Bus;
use crate::config::{Config, Web, WebAuth};
use crate::shutdown::{Stop, Supervisor};
use crate::{api, completeness, export, health, kafka, mqtt, series, store, web};

/// Batches the bus holds for a subscriber that is behind, and the store writer's queue.
const BUS_CAPACITY: usize = 1024;
const STORE_QUEUE_BATCHES: usize = 256;
/// Worker threads of each Kafka cluster's own runtime: a scrape's brokers answer in parallel.
const KAFKA_WATCHER_THREADS: usize = 2;

/// Opens the store; a corrupt one is moved aside (and the log says where) when asked.
fn open_store(
    config: &crate::config::StoreConfig,
    clock: Arc<dyn Clock>,
) -> Result<(store::Store, store::Writer), store::StoreError> {
    let open = || {
        store::Store::open(
            &config.path,
            store::retention_from(config),
            clock.clone(),
            STORE_QUEUE_BATCHES,
        )
    };
    match open() {
        Err(store::StoreError::Corrupt { path, reason }) if config.move_corrupt_aside => {
            let moved = store::move_aside(&config.path)?;
            tracing::error!(
                "the store database {} is corrupt ({reason}); moved to {} (kept: open it with sqlite3 to recover what it holds); starting with an empty store",
                path.display(),
                moved.display()
            );
            open()
        }
        opened => opened,
    }
}

pub async fn run(config: Config, stop: Stop) -> anyhow::Result<()> {
    let listen = config.web.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} — is another pipescope running? Change web.listen")
    })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let bus = Bus::new(BUS_CAPACITY);
    let mut registry = crate::metrics::new_registry();
    let tasks = Supervisor::new(stop.clone(), clock.clone());

    let (store, writer) = open_store(&config.store, clock.clone())?;
    store.set_max_disk_size(config.store.max_disk_size.map(|size| size.0));
    tracing::info!(path = %config.store.path.display(), "store opened");
    // The store and InfluxDB take the watchers' samples through the series stage, which bounds
    // their series; it ends when the bus closes, and so closes `bounded`.
    let bounded = bus.downstream(BUS_CAPACITY);
    let store_input = bounded.subscribe();
    let influx_input = config.export.influx.as_ref().map(|_| bounded.subscribe());
    let series_stage = series::shared_stage(series::budget_from(&config));
    series::register(&mut registry, series_stage.clone());
    tokio::spawn(series::relay(
        bus.subscribe(),
        bounded,
        series_stage.clone(),
        clock.clone(),
    ));
    // The feeder ends when the bus closes (every publisher dropped) or at the stop; batches
    // already queued for the writer are committed before the store closes.
    let feeder = {
        let (stop, feed) = (
            stop.clone(),
            store::feed_from_bus(store_input, writer.clone()),
        );
        tokio::spawn(async move { stop.run_until_stopped(feed).await })
    };
    store::metrics::register(&mut registry, store.clone());
    crate::metrics::register_bus(&mut registry, &bus);

    let kafka_outputs = kafka::Outputs {
        live: kafka::LiveState::new(),
        bus: bus.clone(),
        series: series_stage,
    };
    let kafka_live = start_kafka_watchers(
        &config,
        kafka_outputs,
        &mut registry,
        &store,
        &tasks,
        &clock,
    )?;

    let mqtt = mqtt::MqttState::new(&config.mqtt, clock.clone());
    registry.register_collector(Box::new(mqtt::metrics::MqttCollector::new(mqtt.clone())));
    for (name, broker) in &config.mqtt {
        if let Some(state) = mqtt.broker(name) {
            let (state, broker, bus) = (state.clone(), broker.clone(), bus.clone());
            let interval = broker.sample_interval;
            let sampled = (state.clone(), bus);
            tasks.spawn(
                format!("mqtt watcher {name}"),
                Box::new(move || Box::pin(mqtt::watcher::run(state.clone(), broker.clone()))),
            );
            tasks.spawn(
                format!("mqtt sampler {name}"),
                Box::new(move || {
                    let (state, bus) = sampled.clone();
                    Box::pin(mqtt::watcher::sample_loop(state, bus, interval))
                }),
            );
        }
    }

    let flows = completeness::start_flows(&config, &bus, &tasks, &clock);
    registry.register_collector(Box::new(completeness::metrics::CompletenessCollector::new(
        flows.clone(),
    )));
    let probes = crate::probe::start_probes(&config, &tasks, &clock);
    registry.register_collector(Box::new(crate::probe::metrics::ProbeCollector::new(
        probes.clone(),
    )));

    let influx = config
        .export
        .influx
        .clone()
        .zip(influx_input)
        .map(|(influx, input)| {
            tracing::info!(url = %influx.url, version = influx.version, "exporting to InfluxDB");
            let stats = Arc::new(export::influx::InfluxStats::default());
            export::influx::register(&mut registry, stats.clone());
            let exporter = export::influx::InfluxExporter::new(influx, stats);
            let stop = stop.clone();
            tokio::spawn(exporter.run(input, async move { stop.stopped().await }))
        });

    let hub = api::Hub::new(clock.clone());
    {
        let (kafka, hub) = (kafka_live.clone(), hub.clone());
        tasks.spawn(
            "live updates from Kafka",
            Box::new(move || Box::pin(api::hub::follow_kafka(kafka.clone(), hub.clone()))),
        );
    }
    {
        let (mqtt, hub) = (mqtt.clone(), hub.clone());
        tasks.spawn(
            "live updates from MQTT",
            Box::new(move || Box::pin(api::hub::follow_mqtt(mqtt.clone(), hub.clone()))),
        );
    }

    {
        let (flows, hub) = (flows.clone(), hub.clone());
        tasks.spawn(
            "loss events from the flows",
            Box::new(move || Box::pin(completeness::api::follow_flows(flows.clone(), hub.clone()))),
        );
    }

    let quality = crate::quality::start_quality(&config, &bus, &hub, &tasks, &clock);
    registry.register_collector(Box::new(crate::quality::metrics::QualityCollector::new(
        quality.clone(),
    )));

    let parts = crate::parts_watch::start_watching(&config, &tasks, &clock);
    registry.register_collector(Box::new(crate::parts_watch::PartsCollector(parts.clone())));
    let ready = health::ReadyState::new(
        &config,
        health::WatchedSources {
            kafka: kafka_live.clone(),
            mqtt: mqtt.clone(),
            parts: parts.clone(),
            flows: flows.clone(),
            quality: quality.clone(),
            store: store.clone(),
        },
        clock.clone(),
    );
    {
        let ready = ready.clone();
        tasks.spawn(
            "readiness of the sources",
            Box::new(move || Box::pin(health::follow(ready.clone()))),
        );
    }
    let live = crate::alerts::snapshot::Live {
        kafka: kafka_live.clone(),
        mqtt: mqtt.clone(),
        parts: parts.clone(),
        flows: flows.clone(),
        quality: quality.clone(),
    };
    let alerts = start_alerts(&config, &store, live, &hub, &tasks, &clock);
    start_notifiers(&config, &store, &alerts, &mut registry, &stop, &clock);
    registry.register_collector(Box::new(crate::alerts::metrics::AlertsCollector::new(
        alerts.clone(),
    )));

    tracing::info!(address = %listener.local_addr()?, "pipescope is serving");
    let sources = Sources {
        bus: bus.clone(),
        store,
        writer: writer.clone(),
        kafka: kafka_live,
        mqtt,
        flows,
        probes,
        quality,
        parts,
        ready,
        alerts,
        hub: hub.clone(),
        tasks: tasks.clone(),
        clock: clock.clone(),
    };
    if !listen.ip().is_loopback() && matches!(config.web.auth, WebAuth::None) {
        tracing::warn!(
            address = %listen,
            "the portal and the API are open to anyone who can reach {listen}, with no \
             authentication: set [web] auth (a bearer token) or listen on 127.0.0.1"
        );
    }
    let router = app(registry, &sources, &config.web);
    // Open live streams would keep the server from stopping: the hub ends them.
    let served = {
        let stop = stop.clone();
        web::serve(listener, router, async move {
            stop.stopped().await;
            hub.close();
        })
        .await
    };
    // The server can also end by failing: everything else stops with it.
    stop.stop();
    tasks.wait().await;
    if let Some(exporter) = influx {
        let _ = exporter.await;
    }
    let _ = feeder.await;
    tokio::task::spawn_blocking(move || writer.close()).await?;
    served?;
    tracing::info!("pipescope stopped");
    Ok(())
}

/// Everything the monitor's routes read from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Where the InfluxDB write endpoint publishes what it stored.
    pub bus: Bus,
    pub store: store::Store,
    pub writer: store::Writer,
    pub kafka: kafka::LiveState,
    pub mqtt: mqtt::MqttState,
    /// Observed flows' figures.
    pub flows: completeness::FlowsState,
    /// Probes' figures.
    pub probes: crate::probe::ProbesState,
    /// Quality topics' observers.
    pub quality: crate::quality::QualityState,
    /// Watched pipeline parts.
    pub parts: crate::parts_watch::PartsState,
    /// Every source's readiness, for `/ready`.
    pub ready: health::ReadyState,
    /// The alert engine; notifiers subscribe to its notices ([`crate::alerts::AlertsState::subscribe`]).
    pub alerts: crate::alerts::AlertsState,
    pub hub: api::Hub,
    pub tasks: Supervisor,
    /// The monitor's one clock.
    pub clock: Arc<dyn Clock>,
}

/// Every route the monitor serves, behind the configured Host and Origin checks and
/// authentication.
pub fn app(registry: Registry, sources: &Sources, web: &Web) -> Router {
    let Sources {
        bus,
        store,
        writer,
        kafka,
        mqtt,
        flows,
        probes,
        quality,
        parts,
        ready,
        alerts,
        hub,
        tasks,
        clock,
    } = sources.clone();
    let router = web::router(web::AppState::new(registry).with_tasks(tasks))
        .merge(store::api::router(store.clone()))
        .merge(store::write_api::router(store, writer, bus))
        .merge(kafka::api::router(kafka.clone(), clock))
        .merge(mqtt::api::router(mqtt))
        .merge(completeness::api::router(flows.clone()))
        .merge(crate::probe::api::router(probes))
        .merge(crate::quality::api::router(quality))
        .merge(crate::parts_watch::router(parts))
        .merge(health::router(ready))
        .merge(crate::alerts::api::router(alerts))
        .merge(api::router(hub, kafka, flows))
        .fallback(crate::portal::serve);
    web::guard::protect(api::auth::protect(router, &web.auth), web)
}

/// One scraping task per configured Kafka cluster, and the collector that exports their state.
fn start_kafka_watchers(
    config: &Config,
    outputs: kafka::Outputs,
    registry: &mut Registry,
    store: &store::Store,
    tasks: &Supervisor,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<kafka::LiveState> {
    let mut filters = BTreeMap::new();
    for (name, cluster) in &config.kafka {
        // Made once here so that a wrong setting fails the start; again for each restart.
        kafka::scraper(name, cluster).map_err(anyhow::Error::msg)?;
        filters.insert(
            name.clone(),
            kafka::metrics::ClusterFilters::from_config(cluster)
                .with_context(|| format!("kafka.{name}: invalid group or topic regex"))?,
        );
        tracing::info!(cluster = %name, "watching Kafka cluster");
        let task = format!("kafka watcher {name}");
        let (name, cluster) = (name.clone(), cluster.clone());
        let (outputs, clock, store) = (outputs.clone(), clock.clone(), store.clone());
        tasks.spawn(
            task,
            Box::new(move || {
                let scraper = kafka::scraper(&name, &cluster).expect("checked at start");
                let watch = kafka::watch(
                    scraper,
                    cluster.scrape_interval,
                    kafka::analyzer_config(&cluster),
                    outputs.clone(),
                    clock.clone(),
                    Some(store.clone()),
                );
                // Its own threads: a big cluster's scrape must not hold the API's workers.
                Box::pin(crate::isolated::on_own_runtime(
                    "kafka-watcher",
                    KAFKA_WATCHER_THREADS,
                    watch,
                ))
            }),
        );
    }
    registry.register_collector(Box::new(kafka::metrics::KafkaCollector::new(
        outputs.live.clone(),
        filters,
    )));
    Ok(outputs.live)
}

/// The alert engine with the states the store kept, and its evaluation task when rules are
/// configured.
fn start_alerts(
    config: &Config,
    store: &store::Store,
    live: crate::alerts::snapshot::Live,
    hub: &api::Hub,
    tasks: &Supervisor,
    clock: &Arc<dyn Clock>,
) -> crate::alerts::AlertsState {
    let table = match store::alerts::AlertTable::open(store.dir()) {
        Ok(table) => Some(table),
        Err(e) => {
            tracing::error!("{e}; alert states will not survive a restart");
            None
        }
    };
    let alerts = crate::alerts::AlertsState::new(config, table, clock.clone());
    if !config.alerts.rules.is_empty() {
        tracing::info!(
            rules = config.alerts.rules.len(),
            every = ?config.alerts.evaluate_every,
            "evaluating alert rules"
        );
        let (alerts, hub, store) = (alerts.clone(), hub.clone(), store.clone());
        tasks.spawn(
            "alert evaluation",
            Box::new(move || {
                Box::pin(crate::alerts::run(
                    alerts.clone(),
                    live.clone(),
                    hub.clone(),
                    Some(store.clone()),
                ))
            }),
        );
    }
    alerts
}

/// The notifiers of the alerts, when receivers are configured: they end at the stop.
fn start_notifiers(
    config: &Config,
    store: &store::Store,
    alerts: &crate::alerts::AlertsState,
    registry: &mut Registry,
    stop: &Stop,
    clock: &Arc<dyn Clock>,
) {
    let metrics = crate::alerts::notify::NotifyMetrics::register(registry);
    let settings = crate::alerts::notify::NotifySettings::from_config(config);
    if !settings.has_receivers() {
        return;
    }
    // What the notifiers sent before a restart, beside the alert states (the engine has read
    // those back already: its firing alerts are what still fires).
    let log = match store::alerts::AlertTable::open(store.dir()) {
        Ok(table) => Some(crate::alerts::notify::SentLog {
            table,
            still_firing: alerts
                .instances()
                .into_iter()
                .filter(|i| i.state == pipescope_core::alerts::AlertState::Firing)
                .map(|i| i.labels)
                .collect(),
        }),
        Err(e) => {
            tracing::error!("{e}; after a restart the notifiers may send firing alerts again");
            None
        }
    };
    let (notices, clock, stop) = (alerts.subscribe(), clock.clone(), stop.clone());
    tokio::spawn(async move {
        if let Err(e) =
            crate::alerts::notify::run(settings, notices, metrics, clock, stop, log).await
        {
            tracing::error!("alert notifications stopped: {e:#}");
        }
    });
}
