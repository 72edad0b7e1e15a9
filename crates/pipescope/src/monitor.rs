//! `pipescope run`: the long-running monitor. It serves HTTP until Ctrl-C or SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::web;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let listen = config.web.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} — is another pipescope running? Change web.listen")
    })?;
    let bus = crate::bus::Bus::new(1024);
    let mut registry = crate::metrics::new_registry();
    let kafka_live = crate::kafka::LiveState::new();
    let mut kafka_filters = std::collections::BTreeMap::new();
    for (name, cluster) in &config.kafka {
        let scraper = crate::kafka::scraper(name, cluster).map_err(anyhow::Error::msg)?;
        kafka_filters.insert(
            name.clone(),
            crate::kafka::metrics::ClusterFilters::from_config(cluster)
                .with_context(|| format!("kafka.{name}: invalid group or topic regex"))?,
        );
        tokio::spawn(crate::kafka::watch(
            scraper,
            cluster.scrape_interval,
            kafka_live.clone(),
            bus.clone(),
            std::sync::Arc::new(pipescope_core::SystemClock),
        ));
        tracing::info!(cluster = %name, "watching Kafka cluster");
    }
    registry.register_collector(Box::new(crate::kafka::metrics::KafkaCollector::new(
        kafka_live.clone(),
        kafka_filters,
    )));
    // The watchers below are not built yet: say so instead of pretending to watch.
    for name in config.mqtt.keys() {
        tracing::warn!(broker = %name, "MQTT watching is not implemented in this version; the broker is ignored");
    }
    if config.export.influx.is_some() {
        tracing::warn!(
            "InfluxDB export is not implemented in this version; export.influx is ignored"
        );
    }
    tracing::info!(address = %listener.local_addr()?, "pipescope is serving");
    let router =
        web::router(web::AppState::new(registry)).merge(crate::kafka::api::router(kafka_live));
    web::serve(listener, router, shutdown_signal()).await?;
    tracing::info!("pipescope stopped");
    Ok(())
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
