//! `/api/openapi.json`: the OpenAPI 3 document of every public endpoint. Every JSON answer
//! but this document carries a schema derived from the type that makes it (utoipa); the routes, their tags,
//! summaries and query parameters come from the table below. A test checks that the document
//! and the merged router list the same paths, that the live answers carry every required field
//! and none undocumented, and that the store's endpoints take every parameter documented.

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ArrayBuilder, Content, ObjectBuilder, PathsBuilder, Ref, RefOr, Required, Schema, Type,
};

use super::hub::Update;
use super::{EventsPage, EventsQuery};
use crate::kafka::api::{ClusterSummary, GroupDetail, GroupSummary, TopicDetail, TopicSummary};
use crate::kafka::state::{BrokerState, GroupDescription, ScrapeStage};
use crate::mqtt::api::{BrokerView, SysView, TreeView};
use crate::store::api::{RangeAnswer, SeriesAnswer, ValuesAnswer};
use crate::web::Health;
use pipescope_core::kafka::Verdict;
use pipescope_core::portal::events::{Event, EventKind};
use pipescope_core::portal::flow::{FlowEdge, FlowGraph, FlowNode, NodeKind};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pipescope",
        description = "Watches MQTT + Kafka data pipelines end to end. Every answer is JSON \
            unless said otherwise; errors are `{\"error\": \"what failed and what to do\"}`. \
            Values a broker may fail to give are the value, or `{\"error\": \"why\"}`."
    ),
    components(schemas(
        Event,
        EventKind,
        EventsPage,
        FlowGraph,
        FlowNode,
        FlowEdge,
        NodeKind,
        Update,
        ClusterSummary,
        BrokerState,
        ScrapeStage,
        Health,
        TopicSummary,
        TopicDetail,
        GroupSummary,
        GroupDetail,
        GroupDescription,
        Verdict,
        BrokerView,
        SysView,
        TreeView,
        RangeAnswer,
        SeriesAnswer,
        ValuesAnswer
    ))
)]
struct Derived;

/// What an endpoint answers with 200.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Object,
    Text,
    EventStream,
    Schema(&'static str),
    /// An array of the named schema.
    ArrayOf(&'static str),
}

/// One documented route: path, tag, summary, query parameters, answer.
struct Route {
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    query: &'static [Param],
    answer: Answer,
}

/// A query parameter and the values its endpoint takes (others are answered with 400).
#[derive(Debug, Clone, Copy)]
struct Param {
    name: &'static str,
    description: &'static str,
    required: bool,
    values: Values,
}

#[derive(Debug, Clone, Copy)]
enum Values {
    /// Text, not empty.
    Text,
    /// Text, empty included.
    AnyText,
    /// A whole number from `min` up to `max`.
    Integer {
        min: u64,
        max: Option<u64>,
    },
    OneOf(&'static [&'static str]),
}

impl Param {
    const fn optional(name: &'static str, description: &'static str, values: Values) -> Self {
        Self {
            name,
            description,
            required: false,
            values,
        }
    }

    fn schema(&self) -> ObjectBuilder {
        let object = ObjectBuilder::new();
        match self.values {
            Values::Text => object.schema_type(Type::String).min_length(Some(1)),
            Values::AnyText => object.schema_type(Type::String),
            Values::Integer { min, max } => object
                .schema_type(Type::Integer)
                .minimum(Some(min as f64))
                .maximum(max.map(|m| m as f64)),
            Values::OneOf(values) => object
                .schema_type(Type::String)
                .enum_values(Some(values.iter().copied())),
        }
    }
}

const METRIC: Param = Param {
    name: "metric",
    description: "metric name",
    required: true,
    values: Values::Text,
};
const MATCH: Param = Param::optional(
    "match",
    "label matchers, e.g. {topic=\"orders\",cluster=~\"prod.*\"}",
    Values::AnyText,
);
const FROM: Param = Param::optional(
    "from",
    "epoch ms, RFC 3339, now or now-1h (default now-1h)",
    Values::Text,
);
const TO: Param = Param::optional(
    "to",
    "epoch ms, RFC 3339 or now (default now)",
    Values::Text,
);
const AGG: Param = Param::optional(
    "agg",
    "how points are aggregated",
    Values::OneOf(&["avg", "min", "max", "last", "sum", "count"]),
);

/// The query parameters of each store endpoint: exactly those it takes (it refuses others).
const RANGE_QUERY: &[Param] = &[
    METRIC,
    MATCH,
    FROM,
    TO,
    Param::optional("step", "a duration (1m, 30s) or milliseconds", Values::Text),
    AGG,
];
const SERIES_QUERY: &[Param] = &[
    Param::optional(
        "metric",
        "metric name (default: every metric)",
        Values::AnyText,
    ),
    MATCH,
];
const LAST_QUERY: &[Param] = &[METRIC, MATCH];
const TOP_QUERY: &[Param] = &[
    METRIC,
    MATCH,
    FROM,
    TO,
    AGG,
    Param::optional(
        "n",
        "how many series (default 10)",
        Values::Integer {
            min: 1,
            max: Some(1000),
        },
    ),
];
const TREE_QUERY: &[Param] = &[
    Param::optional(
        "root",
        "subtree to start at (default the root)",
        Values::AnyText,
    ),
    Param::optional(
        "depth",
        "levels to answer (default 3, at most 32)",
        Values::Integer { min: 0, max: None },
    ),
    Param::optional(
        "limit",
        "children per node (default 1000; the rest summed in (more))",
        Values::Integer { min: 0, max: None },
    ),
    Param::optional(
        "value",
        "what sizes a node",
        Values::OneOf(&["messages", "bytes", "rate_1m", "rate_5m", "rate_15m"]),
    ),
];

/// Every route of the monitor's router.
const ROUTES: &[Route] = &[
    Route {
        path: "/health",
        tag: "server",
        summary: "Liveness: status, version, uptime (open even with auth)",
        query: &[],
        answer: Answer::Schema("Health"),
    },
    Route {
        path: "/metrics",
        tag: "server",
        summary: "Prometheus / OpenMetrics exposition of pipescope's own metrics",
        query: &[],
        answer: Answer::Text,
    },
    Route {
        path: "/api/openapi.json",
        tag: "server",
        summary: "This document",
        query: &[],
        answer: Answer::Object,
    },
    Route {
        path: "/api/v1/live",
        tag: "portal",
        summary: "Server-sent events: `update` ({at, source}, at most one per second per source) and `event` (an Event); keep-alive comments. Also takes ?access_token= when auth is on",
        query: &[Param::optional(
            "access_token",
            "the bearer token, or base64 of user:password with basic auth",
            Values::Text,
        )],
        answer: Answer::EventStream,
    },
    Route {
        path: "/api/v1/events",
        tag: "portal",
        summary: "The latest events (broker up/down, verdict changes, MQTT connections, folded topics), newest first",
        query: &[],
        answer: Answer::Schema("EventsPage"),
    },
    Route {
        path: "/api/v1/flow",
        tag: "portal",
        summary: "The flow graph: producers → topics → consumer groups, with rates and verdicts",
        query: &[],
        answer: Answer::Schema("FlowGraph"),
    },
    Route {
        path: "/api/v1/kafka/clusters",
        tag: "kafka",
        summary: "Every scraped cluster's summary",
        query: &[],
        answer: Answer::ArrayOf("ClusterSummary"),
    },
    Route {
        path: "/api/v1/kafka/clusters/{cluster}",
        tag: "kafka",
        summary: "One cluster's summary",
        query: &[],
        answer: Answer::Schema("ClusterSummary"),
    },
    Route {
        path: "/api/v1/kafka/clusters/{cluster}/brokers",
        tag: "kafka",
        summary: "Brokers, up or down with why",
        query: &[],
        answer: Answer::ArrayOf("BrokerState"),
    },
    Route {
        path: "/api/v1/kafka/clusters/{cluster}/topics",
        tag: "kafka",
        summary: "Topics with partition counts, end offsets and rates",
        query: &[],
        answer: Answer::ArrayOf("TopicSummary"),
    },
    Route {
        path: "/api/v1/kafka/clusters/{cluster}/topics/{topic}",
        tag: "kafka",
        summary: "One topic: config and partitions (leader, ISR, offsets, producers, rate)",
        query: &[],
        answer: Answer::Schema("TopicDetail"),
    },
    Route {
        path: "/api/v1/kafka/clusters/{cluster}/groups",
        tag: "kafka",
        summary: "Consumer groups: state, members, lag and verdict",
        query: &[],
        answer: Answer::ArrayOf("GroupSummary"),
    },
    Route {
        path: "/api/v1/kafka/clusters/{cluster}/groups/{group}",
        tag: "kafka",
        summary: "One group: members with assignments, lag per topic and partition (offsets, seconds, ETA, verdict)",
        query: &[],
        answer: Answer::Schema("GroupDetail"),
    },
    Route {
        path: "/api/v1/mqtt/brokers",
        tag: "mqtt",
        summary: "Watched MQTT brokers: connection, $SYS status, tree summary",
        query: &[],
        answer: Answer::ArrayOf("MqttBroker"),
    },
    Route {
        path: "/api/v1/mqtt/brokers/{broker}/sys",
        tag: "mqtt",
        summary: "A broker's $SYS figures",
        query: &[],
        answer: Answer::Schema("MqttSys"),
    },
    Route {
        path: "/api/v1/mqtt/brokers/{broker}/tree",
        tag: "mqtt",
        summary: "A broker's topic tree (counts, rates, last seen), for the browser and the sunburst",
        query: TREE_QUERY,
        answer: Answer::Schema("MqttTree"),
    },
    Route {
        path: "/api/v1/query",
        tag: "store",
        summary: "Stored series of a metric over a time range, at a step",
        query: RANGE_QUERY,
        answer: Answer::Schema("StoreRange"),
    },
    Route {
        path: "/api/v1/series",
        tag: "store",
        summary: "Stored series (label sets) of a metric",
        query: SERIES_QUERY,
        answer: Answer::Schema("StoreSeries"),
    },
    Route {
        path: "/api/v1/last",
        tag: "store",
        summary: "Each series' last value",
        query: LAST_QUERY,
        answer: Answer::Schema("StoreValues"),
    },
    Route {
        path: "/api/v1/top",
        tag: "store",
        summary: "The n series with the largest value over a time range",
        query: TOP_QUERY,
        answer: Answer::Schema("StoreValues"),
    },
];

/// InfluxDB 1.x compatible write endpoints (store/write_api.rs): line protocol in, 204 out.
const INFLUX_WRITE_PATHS: &[&str] = &["/write", "/api/v1/write"];

/// What InfluxDB clients call to see that a server is there.
const INFLUX_PING_PATH: &str = "/ping";

/// The paths the document describes.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .map(|r| r.path)
        .chain(INFLUX_WRITE_PATHS.iter().copied())
        .chain([INFLUX_PING_PATH])
}

fn error_schema() -> Schema {
    ObjectBuilder::new()
        .property("error", ObjectBuilder::new().schema_type(Type::String))
        .required("error")
        .into()
}

fn query_parameter(param: &Param) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(param.name)
        .parameter_in(ParameterIn::Query)
        .required(if param.required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(param.description))
        .schema(Some(param.schema()))
}

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .tag(route.tag)
        .summary(Some(route.summary));
    let path_params = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'));
    for name in path_params {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    if route.path == "/api/v1/events" {
        op = op.parameters(Some(<EventsQuery as utoipa::IntoParams>::into_params(
            || Some(ParameterIn::Query),
        )));
    }
    for param in route.query {
        op = op.parameter(query_parameter(param));
    }
    let (mime, schema): (&str, RefOr<Schema>) = match route.answer {
        Answer::Object => ("application/json", ObjectBuilder::new().into()),
        Answer::Text => (
            "text/plain",
            ObjectBuilder::new().schema_type(Type::String).into(),
        ),
        Answer::EventStream => (
            "text/event-stream",
            ObjectBuilder::new().schema_type(Type::String).into(),
        ),
        Answer::Schema(name) => ("application/json", Ref::from_schema_name(name).into()),
        Answer::ArrayOf(name) => (
            "application/json",
            ArrayBuilder::new()
                .items(Ref::from_schema_name(name))
                .into(),
        ),
    };
    op = op.response(
        "200",
        ResponseBuilder::new()
            .description("OK")
            .content(mime, Content::new(Some(schema)))
            .build(),
    );
    let error = || Content::new(Some(error_schema()));
    if route.path.contains('{') {
        op = op.response(
            "404",
            ResponseBuilder::new()
                .description("no such cluster, broker, topic or group")
                .content("application/json", error())
                .build(),
        );
    }
    if !route.query.is_empty() || route.path == "/api/v1/events" {
        op = op.response(
            "400",
            ResponseBuilder::new()
                .description("a parameter is wrong")
                .content("application/json", error())
                .build(),
        );
    }
    if route.path != "/health" {
        op = op.response(
            "401",
            ResponseBuilder::new()
                .description("[web] auth is on and the credentials are missing or wrong")
                .content("application/json", error())
                .build(),
        );
    }
    op.build()
}

fn influx_write_operation() -> utoipa::openapi::path::Operation {
    let query = [
        Param {
            name: "db",
            description: "a database name (required by InfluxDB clients; pipescope has one store)",
            required: true,
            values: Values::Text,
        },
        Param::optional(
            "precision",
            "timestamp unit (default n)",
            Values::OneOf(&["", "n", "ns", "u", "us", "µ", "ms", "s", "m", "h"]),
        ),
    ];
    let mut op = OperationBuilder::new()
        .tag("store")
        .summary(Some(
            "InfluxDB 1.x line protocol into the embedded store: each number or boolean field \
             becomes the sample `<measurement>_<field>`, tags become labels",
        ))
        .request_body(Some(
            utoipa::openapi::request_body::RequestBodyBuilder::new()
                .content(
                    "text/plain",
                    Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
                )
                .required(Some(Required::True))
                .build(),
        ));
    for param in &query {
        op = op.parameter(query_parameter(param));
    }
    let error = || Content::new(Some(error_schema()));
    for (code, description) in [
        (
            "400",
            "lines rejected (the rest stored): which, why, how many",
        ),
        (
            "401",
            "[web] auth is on and the credentials are missing or wrong",
        ),
        ("415", "a compressed body (send it plain)"),
        ("503", "the store's queue is full: retry later"),
    ] {
        op = op.response(
            code,
            ResponseBuilder::new()
                .description(description)
                .content("application/json", error())
                .build(),
        );
    }
    op.response(
        "204",
        ResponseBuilder::new()
            .description("every line stored")
            .build(),
    )
    .build()
}

fn influx_ping_operation() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .tag("store")
        .summary(Some(
            "Answers 204 with X-Influxdb-Version, as InfluxDB 1.x does",
        ))
        .response("204", ResponseBuilder::new().description("up").build())
        .build()
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Derived::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut paths = PathsBuilder::new();
    for route in ROUTES {
        paths = paths.path(route.path, PathItem::new(HttpMethod::Get, operation(route)));
    }
    for path in INFLUX_WRITE_PATHS {
        paths = paths.path(
            *path,
            PathItem::new(HttpMethod::Post, influx_write_operation()),
        );
    }
    paths = paths.path(
        INFLUX_PING_PATH,
        PathItem::new(HttpMethod::Get, influx_ping_operation()),
    );
    doc.paths = paths.build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
    );
    doc
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
