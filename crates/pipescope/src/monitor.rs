//! `pipescope run`: the long-running monitor. It serves HTTP until Ctrl-C or SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;

use pipescope_core::SystemClock;

use crate::config::Config;
use crate::web;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let listen = config.web.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} — is another pipescope running? Change web.listen")
    })?;
    // The watchers are not built yet: say so instead of pretending to watch.
    for name in config.kafka.keys() {
        tracing::warn!(cluster = %name, "Kafka watching is not implemented in this version; the cluster is ignored");
    }
    if config.export.influx.is_some() {
        tracing::warn!(
            "InfluxDB export is not implemented in this version; export.influx is ignored"
        );
    }
    tracing::info!(address = %listener.local_addr()?, "pipescope is serving");
    let mut registry = crate::metrics::new_registry();
    let bus = crate::bus::Bus::new(1024);
    let mqtt = crate::mqtt::MqttState::new(&config.mqtt, std::sync::Arc::new(SystemClock));
    registry.register_collector(Box::new(crate::mqtt::export::MqttCollector::new(
        mqtt.clone(),
    )));
    let mut tasks = Vec::new();
    for (name, broker) in &config.mqtt {
        if let Some(state) = mqtt.broker(name) {
            tasks.extend(crate::mqtt::watcher::spawn(
                state.clone(),
                broker.clone(),
                bus.clone(),
            ));
        }
    }
    let router = web::router(web::AppState::new(registry)).merge(crate::mqtt::api::router(mqtt));
    web::serve(listener, router, shutdown_signal()).await?;
    for task in tasks {
        task.abort();
    }
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
