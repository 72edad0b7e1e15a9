//! `/api/openapi.json`: the OpenAPI 3 document of every public endpoint, derived from the
//! handlers: each carries a `#[utoipa::path]` (route, tag, summary, parameters, answers) and
//! answers a typed `Json<T>` whose schema comes from `T` (utoipa's `ToSchema`); errors are
//! [`ApiError`](crate::web::ApiError)s. What no single handler says is added here: the 401 that
//! the authentication in front of them may answer, the write endpoint's second path, and the
//! security schemes.
//!
//! The document is checked in as `web/openapi.json` (the portal's TypeScript types are
//! generated from it); a test fails when that copy is stale (see docs/portal-api.md).

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref};

use super::hub::Update;
use crate::kafka::state::GroupDescription;
use crate::store::write_api::WRITE_ALIAS;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pipescope",
        description = "Watches MQTT + Kafka data pipelines end to end. Every answer is JSON \
            unless said otherwise; errors are `{\"error\": \"what failed and what to do\"}`. \
            Values a broker may fail to give are the value, or `{\"error\": \"why\"}`."
    ),
    paths(
        crate::web::health,
        crate::health::ready,
        crate::parts_watch::parts,
        crate::web::metrics,
        serve,
        super::live,
        super::events,
        super::flow_graph,
        crate::kafka::api::clusters,
        crate::kafka::api::cluster,
        crate::kafka::api::brokers,
        crate::kafka::api::topics,
        crate::kafka::api::topic,
        crate::kafka::api::groups,
        crate::kafka::api::group,
        crate::mqtt::api::brokers,
        crate::mqtt::api::sys,
        crate::mqtt::api::tree,
        crate::completeness::api::flows,
        crate::completeness::api::flow,
        crate::probe::api::probes,
        crate::quality::api::quality_topics,
        crate::quality::api::quality_topic,
        crate::quality::api::quality_reports,
        crate::quality::api::quality_report,
        crate::alerts::api::alerts,
        crate::alerts::api::silences,
        crate::alerts::api::add_silence,
        crate::alerts::api::expire_silence,
        crate::store::api::query,
        crate::store::api::series,
        crate::store::api::last,
        crate::store::api::top,
        crate::store::write_api::write,
        crate::store::write_api::ping,
    ),
    // What the live stream's `update` events carry (no handler answers it as JSON), and what a
    // group's description is made of (its field's schema is written by hand, as a value or
    // `{"error"}`, so the schemas it refers to are not collected through it).
    components(schemas(Update, GroupDescription)),
    modifiers(&Server)
)]
struct Derived;

/// What the server adds around the handlers.
struct Server;

impl utoipa::Modify for Server {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        let paths = &mut doc.paths.paths;
        if let Some(mut write) = paths.get("/write").cloned() {
            // Operation ids are unique in a document.
            if let Some(post) = &mut write.post {
                post.operation_id = Some("write_v1".to_string());
            }
            paths.insert(WRITE_ALIAS.to_string(), write);
        }
        // [web] auth guards every path but /health and /ready (api/auth.rs).
        for (path, item) in paths.iter_mut() {
            if path == "/health" || path == "/ready" {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.head,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                operation.responses.responses.insert(
                    "401".to_string(),
                    ResponseBuilder::new()
                        .description("[web] auth is on and the credentials are missing or wrong")
                        .content(
                            "application/json",
                            Content::new(Some(Ref::from_schema_name("Error"))),
                        )
                        .build()
                        .into(),
                );
            }
        }
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    Derived::openapi()
}

/// The document as checked in at `web/openapi.json`: pretty JSON and a final newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the OpenAPI document is JSON");
    text.push('\n');
    text
}

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "server",
    summary = "This document",
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
