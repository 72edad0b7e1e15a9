//! `pipescope run`: the long-running monitor. It serves HTTP until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use pipescope_core::SystemClock;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::bus::Bus;
use crate::config::{Config, WebAuth};
use crate::{api, export, kafka, mqtt, store, web};

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

    let hub = api::Hub::new(Arc::new(SystemClock));
    mqtt_tasks.push(tokio::spawn(api::hub::follow_kafka(
        kafka_live.clone(),
        hub.clone(),
    )));
    mqtt_tasks.push(tokio::spawn(api::hub::follow_mqtt(
        mqtt.clone(),
        hub.clone(),
    )));

    tracing::info!(address = %listener.local_addr()?, "pipescope is serving");
    let router = app(
        registry,
        &store,
        &writer,
        &kafka_live,
        &mqtt,
        &hub,
        &config.web.auth,
    );
    // Open live streams would keep the server from stopping: the hub ends them.
    web::serve(listener, router, async move {
        shutdown_signal().await;
        hub.close();
    })
    .await?;
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

/// Every route the monitor serves, behind the configured authentication.
pub fn app(
    registry: Registry,
    store: &store::Store,
    writer: &store::Writer,
    kafka: &kafka::LiveState,
    mqtt: &mqtt::MqttState,
    hub: &api::Hub,
    auth: &WebAuth,
) -> Router {
    let router = web::router(web::AppState::new(registry))
        .merge(store::api::router(store.clone()))
        .merge(store::write_api::router(store.clone(), writer.clone()))
        .merge(kafka::api::router(kafka.clone()))
        .merge(mqtt::api::router(mqtt.clone()))
        .merge(api::router(hub.clone(), kafka.clone()));
    api::auth::protect(router, auth)
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
