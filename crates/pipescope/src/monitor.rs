//! `pipescope run`: the long-running monitor. It serves HTTP until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use pipescope_core::SystemClock;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::bus::Bus;
use crate::config::Config;
use crate::{export, kafka, mqtt, store, web};

/// Batches the bus holds for a subscriber that is behind, and the store writer's queue.
const BUS_CAPACITY: usize = 1024;
const STORE_QUEUE_BATCHES: usize = 256;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let listen = config.web.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} — is another pipescope running? Change web.listen")
    })?;
    let bus = Bus::new(BUS_CAPACITY);
    let mut registry = crate::metrics::new_registry();

    let (store, writer) = store::Store::open(
        &config.store.path,
        store::retention_from(&config.store),
        Arc::new(SystemClock),
        STORE_QUEUE_BATCHES,
    )?;
    tracing::info!(path = %config.store.path.display(), "store opened");
    let feeder = tokio::spawn(store::feed_from_bus(bus.subscribe(), writer.clone()));
    store::metrics::register(&mut registry, store.clone());
    crate::metrics::register_bus(&mut registry, &bus);

    let kafka_live = start_kafka_watchers(&config, &bus, &mut registry, &store)?;

    let mqtt = mqtt::MqttState::new(&config.mqtt, Arc::new(SystemClock));
    registry.register_collector(Box::new(mqtt::export::MqttCollector::new(mqtt.clone())));
    let mut mqtt_tasks = Vec::new();
    for (name, broker) in &config.mqtt {
        if let Some(state) = mqtt.broker(name) {
            mqtt_tasks.extend(mqtt::watcher::spawn(
                state.clone(),
                broker.clone(),
                bus.clone(),
            ));
        }
    }

    let influx = config.export.influx.clone().map(|influx| {
        tracing::info!(url = %influx.url, version = influx.version, "exporting to InfluxDB");
        let stats = Arc::new(export::influx::InfluxStats::default());
        export::influx::register(&mut registry, stats.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let exporter = export::influx::InfluxExporter::new(influx, stats);
        let task = tokio::spawn(exporter.run(bus.subscribe(), async {
            let _ = stopped.await;
        }));
        (stop, task)
    });

    tracing::info!(address = %listener.local_addr()?, "pipescope is serving");
    let router = web::router(web::AppState::new(registry))
        .merge(store::api::router(store.clone()))
        .merge(store::write_api::router(store.clone(), writer.clone()))
        .merge(kafka::api::router(kafka_live))
        .merge(mqtt::api::router(mqtt));
    web::serve(listener, router, shutdown_signal()).await?;
    for task in mqtt_tasks {
        task.abort();
    }
    if let Some((stop, task)) = influx {
        let _ = stop.send(());
        let _ = task.await;
    }
    // Batches already queued for the writer are committed before the store closes.
    feeder.abort();
    let _ = feeder.await;
    tokio::task::spawn_blocking(move || writer.close()).await?;
    tracing::info!("pipescope stopped");
    Ok(())
}

/// One scraping task per configured Kafka cluster, and the collector that exports their state.
fn start_kafka_watchers(
    config: &Config,
    bus: &Bus,
    registry: &mut Registry,
    store: &store::Store,
) -> anyhow::Result<kafka::LiveState> {
    let live = kafka::LiveState::new();
    let mut filters = BTreeMap::new();
    for (name, cluster) in &config.kafka {
        let scraper = kafka::scraper(name, cluster).map_err(anyhow::Error::msg)?;
        filters.insert(
            name.clone(),
            kafka::metrics::ClusterFilters::from_config(cluster)
                .with_context(|| format!("kafka.{name}: invalid group or topic regex"))?,
        );
        tokio::spawn(kafka::watch(
            scraper,
            cluster.scrape_interval,
            kafka::analyzer_config(cluster),
            live.clone(),
            bus.clone(),
            Arc::new(SystemClock),
            Some(store.clone()),
        ));
        tracing::info!(cluster = %name, "watching Kafka cluster");
    }
    registry.register_collector(Box::new(kafka::metrics::KafkaCollector::new(
        live.clone(),
        filters,
    )));
    Ok(live)
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C ({e}); stop pipescope with SIGTERM");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM ({e}); stop pipescope with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, stopping"),
        () = terminate => tracing::info!("SIGTERM received, stopping"),
    }
}
