// Generated from web/openapi.json by web/scripts/api-types.mjs (openapi-typescript).
// Do not edit: run `npm run api-types` in web/ (docs/portal-api.md says when).

export interface paths {
    "/api/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This document */
        get: operations["serve"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/alerts": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The alert rules ([alerts.rules.X]) and their alerts: firing, pending and recently resolved, with labels, annotations, since when and the value (docs/alerts.md) */
        get: operations["alerts"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The latest events (broker up/down, verdict changes, MQTT connections, folded topics), newest first */
        get: operations["events"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/flow": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The flow graph: producers → topics → consumer groups, with rates and verdicts; observed flows ([flows.X]) add their MQTT subtrees, origin kinds and edges with loss, duplicates and p99 latency over the last minute (alarm: loss) */
        get: operations["flow_graph"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/flows": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Observed flows ([flows.X]): per hop and per edge, records, lost, duplicated, late and latency (docs/completeness.md); empty until a flow's first tick */
        get: operations["flows"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/flows/{flow}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One observed flow's hops and edges with their figures */
        get: operations["flow"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/kafka/clusters": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Every scraped cluster's summary */
        get: operations["clusters"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/kafka/clusters/{cluster}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One cluster's summary */
        get: operations["cluster"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/kafka/clusters/{cluster}/brokers": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Brokers, up or down with why */
        get: operations["kafka_brokers"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/kafka/clusters/{cluster}/groups": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Consumer groups: state, members, lag, ETA and verdict: a page, sorted and filtered on the server */
        get: operations["groups"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/kafka/clusters/{cluster}/groups/{group}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One group: members with assignments, lag per topic and partition (offsets, seconds, ETA, verdict) */
        get: operations["group"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/kafka/clusters/{cluster}/topics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Topics with partition counts, end offsets and rates: a page, sorted and filtered on the server */
        get: operations["topics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/kafka/clusters/{cluster}/topics/{topic}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One topic: config and partitions (leader, ISR, offsets, producers, rate) */
        get: operations["topic"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/last": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Each series' last value */
        get: operations["last"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/live": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Server-sent events: `update` ({at, source}, at most one per second per source) and `event` (an Event); keep-alive comments. Also takes ?access_token= when auth is on */
        get: operations["live"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/mqtt/brokers": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Watched MQTT brokers: connection, $SYS status, tree summary */
        get: operations["mqtt_brokers"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/mqtt/brokers/{broker}/sys": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A broker's $SYS figures */
        get: operations["sys"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/mqtt/brokers/{broker}/tree": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A broker's topic tree (counts, rates, last seen), for the browser and the sunburst */
        get: operations["tree"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/parts": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Watched pipeline parts ([watched_parts.X]): up (answers /health), healthy (its own pipescope_part_health_status, else its /health), since when, last seen, last error; empty when none is configured */
        get: operations["parts"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/probes": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Probes ([probes.kafka.X], [probes.mqtt.X], [probes.bridge.X]; `kind` says which): availability and produce-ack latency, and what was read back — lost, duplicated, end-to-end latency; for a bridge probe also the edge between MQTT and Kafka (docs/completeness.md "Probes"); empty when no probe is configured */
        get: operations["probes"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/quality": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Quality topics ([quality.X]): records, invalid and error records per minute, the rules broken, drift counts (docs/quality-rules.md) */
        get: operations["quality_topics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/quality/reports": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The periodic HTML profile reports of the quality topics (report_every), newest first (docs/quality.md "Reports") */
        get: operations["quality_reports"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/quality/reports/{file}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One periodic report: a self-contained HTML page (no scripts); only a file name /api/v1/quality/reports lists */
        get: operations["quality_report"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/quality/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One quality topic: the profile summary per field, every rule's figures with previews, the recent drift events, the invalid records' previews */
        get: operations["quality_topic"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/query": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Stored series of a metric over a time range, at a step */
        get: operations["query"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/series": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Stored series (label sets) of a metric */
        get: operations["series"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/silences": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The silences: active, pending and expired within the last day (docs/alerts.md) */
        get: operations["silences"];
        put?: never;
        /** Adds a silence: while active, notifiers are not told that alerts matching all its matchers fire. An end is required; kept in the store (docs/alerts.md) */
        post: operations["add_silence"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/silences/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Expires a silence now; it stays listed as expired for a day */
        delete: operations["expire_silence"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/top": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The n series with the largest value over a time range */
        get: operations["top"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/write": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** InfluxDB 1.x line protocol into the embedded store: each number or boolean field becomes the sample `<measurement>_<field>`, tags become labels */
        post: operations["write_v1"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness: the process and its tasks work — 503 when a supervised task is dead or in a crash loop, saying which and since when (open even with auth) */
        get: operations["health"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Prometheus / OpenMetrics exposition of pipescope's own metrics */
        get: operations["metrics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ping": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Answers 204 with X-Influxdb-Version, as InfluxDB 1.x does */
        get: operations["ping"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ready": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Readiness: every configured source (Kafka cluster, MQTT broker, watched part, flow and quality reader) reached at least once and the store writable — 503 until then, with each source's state and since when (open even with auth) */
        get: operations["ready"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/write": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** InfluxDB 1.x line protocol into the embedded store: each number or boolean field becomes the sample `<measurement>_<field>`, tags become labels */
        post: operations["write"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * @description The latency a hop adds over the one before it: the difference of their quantiles over the
         *     same window (downstream minus upstream), in milliseconds.
         *
         *     This is the difference of quantiles, not the quantile of per-record differences: exact
         *     when every record is delayed by the same amount, and in general a summary of how the
         *     distribution moved. Each quantile carries [`RELATIVE_ACCURACY`], so a difference is within
         *     1 % of the upstream plus 1 % of the downstream quantile.
         */
        AddedLatency: {
            /** Format: double */
            p50_ms?: number | null;
            /** Format: double */
            p90_ms?: number | null;
            /** Format: double */
            p999_ms?: number | null;
            /** Format: double */
            p99_ms?: number | null;
        };
        /** @description [`AddedLatency`] since the start and per window. */
        AddedLatencyFigures: {
            "15m": components["schemas"]["AddedLatency"];
            "1m": components["schemas"]["AddedLatency"];
            "5m": components["schemas"]["AddedLatency"];
            all: components["schemas"]["AddedLatency"];
        };
        /** @description One alert instance: what the API lists and the store keeps. */
        AlertInstance: {
            /** @description When the condition began to hold (Alertmanager's `startsAt`). */
            active_since_ms: components["schemas"]["u64"];
            /** @description `summary`, `description` (when the rule has one), `value`. */
            annotations: {
                [key: string]: string;
            };
            firing_since_ms?: null | components["schemas"]["u64"];
            /** @description `alertname`, `severity`, the rule's labels and the instance's. */
            labels: components["schemas"]["BTreeMap"];
            resolved_at_ms?: null | components["schemas"]["u64"];
            rule: string;
            /** @description When it entered its current state. */
            since_ms: components["schemas"]["u64"];
            state: components["schemas"]["AlertState"];
            /**
             * Format: double
             * @description The latest observed value; `None` when not a finite number (an ETA of never).
             */
            value?: number | null;
        };
        /**
         * @description Where an alert instance stands. Inactive instances are not kept.
         * @enum {string}
         */
        AlertState: "pending" | "firing" | "resolved";
        /** @description An alert and the active silences that cover it. */
        AlertView: components["schemas"]["AlertInstance"] & {
            /** @description Ids of the active silences covering it: notifiers are not told it fires. */
            silenced_by: string[];
        };
        /** @description The engine's rules and alerts. */
        AlertsView: {
            /** @description Firing first, then pending, then resolved; newest change first within each. */
            alerts: components["schemas"]["AlertView"][];
            /** @description New alerts each rule left out at its cap (`[alerts] max_instances_per_rule`), by rule. */
            dropped: {
                [key: string]: number;
            };
            /** Format: double */
            evaluate_every_s: number;
            evaluated_at_ms?: null | components["schemas"]["u64"];
            rules: components["schemas"]["RuleInfo"][];
        };
        AssignedTopic: {
            partitions: number[];
            topic: string;
        };
        /** @description Acknowledged within the timeout over sent, per window; absent while nothing was settled. */
        Availability: {
            /** Format: double */
            "15m"?: number | null;
            /** Format: double */
            "1m"?: number | null;
            /** Format: double */
            "5m"?: number | null;
        };
        BTreeMap: {
            [key: string]: string;
        };
        /** @description A bridge probe's figures. */
        BridgeProbeView: {
            /**
             * @description Hops `mqtt` and `kafka` and the edge between them: lost and duplicated between MQTT and
             *     Kafka, latency the bridge adds.
             */
            flow: components["schemas"]["FlowFigures"];
            /** @description The `[kafka.<name>]` cluster read. */
            kafka: string;
            /** @description Reading every partition of `kafka_topic`. */
            kafka_reading: boolean;
            kafka_topic: string;
            last_error?: string | null;
            /** @description The `[mqtt.<name>]` broker published to. */
            mqtt: string;
            /** @description The probe's own MQTT subscription to `mqtt_topic` is granted. */
            mqtt_reading: boolean;
            mqtt_topic: string;
            /** @description The `[probes.bridge.<name>]` name. */
            name: string;
            origin: string;
            produce: components["schemas"]["ProduceFigures"];
            publishing: boolean;
            updated_ms: components["schemas"]["u64"];
        };
        /**
         * @description When a consumer will have caught up with its partition's log end.
         *
         *     `rates_over_s` is the span of the consume and produce rates the answer was taken from (the
         *     verdict window since its last rewind), and `rates_over_intervals` the scrape intervals in it:
         *     1 means the rates come from two scrapes only.
         */
        CatchUp: {
            /** @enum {string} */
            state: "caught_up";
        } | {
            /** Format: int32 */
            rates_over_intervals: number;
            /** Format: double */
            rates_over_s: number;
            /** Format: double */
            seconds: number;
            /** @enum {string} */
            state: "in_seconds";
        } | {
            /** Format: int32 */
            rates_over_intervals: number;
            /** Format: double */
            rates_over_s: number;
            /** @enum {string} */
            state: "falling_behind";
        } | {
            /** @enum {string} */
            state: "unknown";
        };
        ClusterSummary: {
            /**
             * Format: int64
             * @description Milliseconds since the latest scrape started.
             */
            age_ms: number;
            brokers: number;
            brokers_up: number;
            cluster_id?: string | null;
            /** Format: int32 */
            controller_id?: number | null;
            error?: string | null;
            group_list_errors: string[];
            /**
             * @description Groups per verdict (`unknown`: not analysed yet), for an overview that does not list
             *     10,000 groups.
             */
            group_verdicts: {
                [key: string]: number;
            };
            groups: number;
            messages_last_minute?: null | components["schemas"]["WindowCount"];
            name: string;
            offline_partitions: number;
            partitions: number;
            /** Format: int64 */
            scrape_duration_ms: number;
            /** @description When each kind of request of the latest scrape ran: where its time went. */
            scrape_stages: components["schemas"]["ScrapeStage"][];
            /** Format: int64 */
            scraped_at_ms: number;
            /**
             * Format: int64
             * @description How old the numbers were at the latest scrape (0 unless no broker answered it);
             *     `null` when no scrape has reached the cluster yet.
             */
            staleness_ms?: number | null;
            topics: number;
            under_replicated_partitions: number;
        };
        ConnEvent: {
            message: string;
            state: components["schemas"]["ConnState"];
            time_ms: components["schemas"]["u64"];
        };
        /** @enum {string} */
        ConnState: "connecting" | "connected" | "down" | "refused";
        /** @description Drift counts since start, as the API and `/metrics` show them. */
        DriftCounts: {
            /** @description Events per kind: `appeared`, `disappeared`, `type_changed`, `null_ratio_jump`. */
            events_total: {
                [key: string]: number;
            };
            /**
             * Format: int64
             * @description Field summaries of paths past `max_paths` (or too long), not followed.
             */
            paths_folded_total: number;
            paths_followed: number;
            /**
             * Format: int64
             * @description Events not reported because of the per-path interval or the per-window cap.
             */
            suppressed_total: number;
            /** Format: int64 */
            windows_seen: number;
        };
        /** @description A drift event. */
        DriftEvent: {
            after?: null | components["schemas"]["FieldSide"];
            /** @description The end of the window that showed the change. */
            at_ms: components["schemas"]["u64"];
            before?: null | components["schemas"]["FieldSide"];
            /** @description A record of that window, escaped and capped. */
            example?: string | null;
            kind: components["schemas"]["DriftKind"];
            path: string;
        };
        /**
         * @description What changed.
         * @enum {string}
         */
        DriftKind: "appeared" | "disappeared" | "type_changed" | "null_ratio_jump";
        /** @description Cumulative counts of an edge (or of one origin kind on it). */
        EdgeCounters: {
            /**
             * Format: int64
             * @description Seen upstream below the first number the downstream hop saw of the stream (written
             *     before its reader's start position, or deleted before it read them): never judged.
             */
            before_downstream_base: number;
            /**
             * Format: int64
             * @description Seen downstream, never upstream within the horizon (the upstream reader missed them).
             */
            downstream_only: number;
            /**
             * Format: int64
             * @description Copies downstream beyond the copies upstream.
             */
            duplicated: number;
            /**
             * Format: int64
             * @description Arrived downstream after being counted lost between.
             */
            late: number;
            /**
             * Format: int64
             * @description Seen upstream, not downstream within the grace (a late arrival takes one off).
             */
            lost: number;
            /**
             * Format: int64
             * @description Lost numbers forgotten past the horizon (a late copy then counts `downstream_only`).
             */
            lost_trimmed: number;
            /**
             * Format: int64
             * @description Records seen at both ends.
             */
            matched: number;
            /**
             * Format: int64
             * @description Spans settled early because a stream held too many.
             */
            spans_folded: number;
            /**
             * Format: int64
             * @description Records of streams past the cap on streams: not matched.
             */
            untracked: number;
        };
        /** @description What an edge shows: totals and the split by origin kind. */
        EdgeFigures: {
            by_kind: {
                [key: string]: components["schemas"]["EdgeKindFigures"];
            };
            downstream_since_ms: components["schemas"]["u64"];
            /** Format: int64 */
            streams: number;
            total: components["schemas"]["EdgeKindFigures"];
        };
        /** @description An edge's figures for one origin kind, or for all. */
        EdgeKindFigures: {
            /** @description Downstream minus upstream quantiles (see `AddedLatency` for its error). */
            added_latency: components["schemas"]["AddedLatencyFigures"];
            counters: components["schemas"]["EdgeCounters"];
            downstream_latency: components["schemas"]["LatencyFigures"];
            /** @description Latency at each end over the records of this edge's streams since its base. */
            upstream_latency: components["schemas"]["LatencyFigures"];
            windows: components["schemas"]["EdgeWindows"];
        };
        /** @description What an edge counted over each window. */
        EdgeWindows: {
            duplicated: components["schemas"]["WindowCounts"];
            late: components["schemas"]["WindowCounts"];
            lost: components["schemas"]["WindowCounts"];
            matched: components["schemas"]["WindowCounts"];
        };
        /** @enum {string} */
        Encoding: "utf8" | "hex";
        /** @description The body of every error answer. */
        Error: {
            /** @description What failed and what to do. */
            error: string;
        };
        /** @description One event, as `/api/v1/events` and the live stream send it. */
        Event: {
            /** @description When it was seen (ms since the epoch). */
            at: components["schemas"]["u64"];
            kind: components["schemas"]["EventKind"];
            message: string;
            /** @description `kafka/<cluster>` or `mqtt/<broker>`. */
            source: string;
            /** @description What it is about: a broker (`broker 1 (host:port)`), a group, a broker URL, a subtree. */
            subject: string;
        };
        /** @enum {string} */
        EventKind: "broker_down" | "broker_up" | "verdict_changed" | "topics_folded" | "mqtt_disconnected" | "mqtt_connected" | "loss_started" | "loss_stopped" | "schema_drift" | "alert_pending" | "alert_firing" | "alert_resolved" | "alert_cleared";
        EventsPage: {
            /** @description Newest first. */
            events: components["schemas"]["Event"][];
        };
        /** @description A failing record kept for a rule: when, why, from where, and its first bytes, escaped. */
        FailingRecord: {
            at_ms: components["schemas"]["u64"];
            /** @description Where the record was read (`partition 3 offset 1200`, an MQTT topic), escaped and capped. */
            origin: string;
            /** @description Why the record broke the rule: `user.id is null`. */
            reason: string;
            /** @description The record's first [`PREVIEW_RECORD_BYTES`] bytes, invalid UTF-8 replaced, escaped. */
            record: string;
            /** @description The record's full size: more than `record` shows when it was cut. */
            record_bytes: number;
        };
        /** @description A field in one window: the before or after of an event. */
        FieldSide: {
            dominant_type?: null | components["schemas"]["JsonType"];
            /**
             * Format: double
             * @description nulls / present.
             */
            null_ratio: number;
            /** Format: int64 */
            nulls: number;
            /** Format: int64 */
            present: number;
            window_end_ms: components["schemas"]["u64"];
        };
        /** @description Figures of a topic or of a subtree (all its topics, the node's own included). */
        Figures: {
            /** Format: int64 */
            bytes: number;
            first_seen_ms?: null | components["schemas"]["u64"];
            last_seen_ms?: null | components["schemas"]["u64"];
            /** Format: int64 */
            messages: number;
            /** @description Messages received with QoS 0, 1 and 2. */
            qos: number[];
            /**
             * @description Messages counted over the last 1, 5 and 15 minutes, with the part of each window the
             *     watcher was counting, and a per-minute figure once it covers the whole window.
             */
            rates: components["schemas"]["WindowCounts"];
            /** Format: int64 */
            retained_messages: number;
            /** Format: double */
            seconds_since_last?: number | null;
            /**
             * Format: int64
             * @description Topics counted here; an `(other)` entry counts as one.
             */
            topics: number;
        };
        FlowEdge: {
            /** @description Loss over the last minute: draw it red. */
            alarm: boolean;
            /**
             * Format: double
             * @description Observed flows: records seen again downstream over the last minute.
             */
            duplicated?: number | null;
            /** @description Edges of an observed flow (`[flows.X]`): its name; `null` on the others. */
            flow?: string | null;
            /**
             * Format: double
             * @description Observed flows: records lost between the two ends over the last minute.
             */
            lost?: number | null;
            /**
             * Format: double
             * @description Observed flows: p99 latency over the last minute in ms — added between the two hops, or
             *     from the origin's timestamp to the hop for origin → hop.
             */
            p99_latency_ms?: number | null;
            /**
             * Format: double
             * @description producer → topic: the topic's rate when the producer is its only one; topic → group: the
             *     topic's rate (what arrives for the group to read); group → topic: `null`. Edges of an
             *     observed flow: the records matched (origin → hop: counted) over the last minute.
             */
            rate_per_min?: number | null;
            source: string;
            target: string;
        };
        /** @description Everything a flow shows. */
        FlowFigures: {
            edges: components["schemas"]["NamedEdge"][];
            hops: components["schemas"]["NamedHop"][];
        };
        FlowGraph: {
            edges: components["schemas"]["FlowEdge"][];
            nodes: components["schemas"]["FlowNode"][];
        };
        FlowNode: {
            cluster: string;
            /**
             * @description `producer:<cluster>/<id>`, `topic:<cluster>/<name>`, `group:<cluster>/<name>`,
             *     `mqtt:<broker>/<filter>` or `origin:<flow>/<kind>`.
             */
            id: string;
            kind: components["schemas"]["NodeKind"];
            label: string;
            last_minute?: null | components["schemas"]["WindowCount"];
            /**
             * Format: double
             * @description Topics: their produce rate over the last minute (`null` until the monitor has watched a
             *     whole minute). Producers: the sum of the rates of the topics they are the only producer
             *     of, when that is all of their topics. Groups: `null`.
             */
            rate_per_min?: number | null;
            /** @description Groups: their verdict when analysed; otherwise `null`. */
            verdict?: string | null;
        };
        /** @description A flow's hops and the edges between consecutive hops. */
        FlowView: {
            edges: components["schemas"]["NamedEdge"][];
            flow: string;
            hops: components["schemas"]["HopView"][];
            /** @description When these figures were taken (epoch ms). */
            updated_ms: components["schemas"]["u64"];
        };
        GroupDescription: {
            members: components["schemas"]["MemberState"][];
            /** @description The assignor (for consumer groups), e.g. `range`. */
            protocol: string;
            protocol_type: string;
            state: string;
        };
        /** @description A group with its members, committed offsets, and lag per topic and per partition. */
        GroupDetail: components["schemas"]["GroupState"] & components["schemas"]["GroupLag"] & {
            /** @description Per partition, sorted by topic and partition. */
            partitions: components["schemas"]["GroupPartitionLag"][];
            /** @description Per topic: lag summed over its partitions, the largest lag in seconds, worst verdict. */
            topics: components["schemas"]["GroupTopicLag"][];
        };
        /** @description A group's lag summary: sums and maxima over its partitions, and its worst partition's verdict. */
        GroupLag: {
            catch_up?: null | components["schemas"]["CatchUp"];
            /**
             * Format: int64
             * @description Sum of the known lags.
             */
            lag_offsets?: number | null;
            lag_skew?: null | components["schemas"]["GroupSkew"];
            /**
             * Format: int64
             * @description Records deleted (retention, DeleteRecords) before the group read them, summed over its
             *     partitions since the monitor started watching them; `null` until analysed.
             */
            lost_to_retention?: number | null;
            /** Format: double */
            max_lag_seconds?: number | null;
            max_lag_seconds_estimated: boolean;
            /** @description Of those, partitions whose committed offset is beyond the end offset. */
            partitions_beyond_end: number;
            /** @description Partitions whose lag is unknown (not in `lag_offsets`). */
            partitions_lag_unknown: number;
            verdict?: null | components["schemas"]["Verdict"];
            /** @description Why the verdict is LOST (the first losing partition's reason); `null` otherwise. */
            verdict_reason?: string | null;
        };
        /** @description One partition of a group, as the analyzer sees it. */
        GroupPartitionLag: {
            /**
             * @description `{"state": "caught_up" | "in_seconds" (with `seconds`) | "falling_behind" | "unknown"}`;
             *     `in_seconds` and `falling_behind` carry `rates_over_s` and `rates_over_intervals`, the
             *     span (and scrape intervals) of the consume and produce rates they were taken from.
             */
            catch_up: components["schemas"]["CatchUp"];
            /** Format: int64 */
            committed: number;
            /** @description e.g. "committed offset beyond end offset"; `null` when measured. */
            lag_note?: string | null;
            /**
             * Format: int64
             * @description `null` when unknown; `lag_note` then says why.
             */
            lag_offsets?: number | null;
            /** Format: double */
            lag_seconds?: number | null;
            /**
             * @description `exact` (timestamp of the record at the committed offset), `estimated` (when the log end
             *     passed the committed offset, interpolated between two end-offset readings) or `unknown`
             *     (no timestamp, and the readings do not reach back to the committed offset).
             */
            lag_seconds_basis: components["schemas"]["LagSecondsBasis"];
            /**
             * Format: double
             * @description For an estimate: seconds between the two end-offset readings it was interpolated between
             *     (the estimate is off by at most that); `null` otherwise.
             */
            lag_seconds_interpolated_over_s?: number | null;
            /** Format: int64 */
            last_commit_seen_ms?: number | null;
            /**
             * Format: int64
             * @description The end offset the lag was taken against.
             */
            latest?: number | null;
            /**
             * Format: int64
             * @description Records deleted (retention, DeleteRecords) before the group read them: the committed
             *     offset was found below the log start. Since the monitor started watching.
             */
            lost_to_retention: number;
            /** Format: int32 */
            partition: number;
            /** @description `false` when this scrape did not report the group on the partition (last known numbers). */
            reported_this_scrape: boolean;
            topic: string;
            verdict: components["schemas"]["Verdict"];
            /** @description Why the verdict is LOST; `null` otherwise. */
            verdict_reason?: string | null;
            window_complete: boolean;
            window_observations: number;
        };
        /**
         * @description A group's processing skew ([`crate::kafka::lag::lag_skew`]) over the partitions whose lag
         *     this scrape reported, and which partition is the worst.
         */
        GroupSkew: components["schemas"]["LagSkew"] & {
            /** @description Partitions the skew was taken over. */
            partitions: number;
            /** Format: int32 */
            worst_partition: number;
            worst_topic: string;
        };
        GroupState: {
            coordinator: number | {
                error: string;
            };
            description: {
                members: components["schemas"]["MemberState"][];
                /** @description The assignor (for consumer groups), e.g. `range`. */
                protocol: string;
                protocol_type: string;
                state: string;
            } | {
                error: string;
            };
            name: string;
            offsets: {
                /** Format: int64 */
                committed: number;
                metadata?: string | null;
                /** Format: int32 */
                partition: number;
                /** @description Why that timestamp is missing although the partition lags (record gone, fetch failed). */
                record_time_error?: string | null;
                record_time_ms?: null | components["schemas"]["u64"];
                topic: string;
            }[] | {
                error: string;
            };
            /** @description From ListGroups (empty when the broker did not say). */
            protocol_type: string;
        };
        GroupSummary: components["schemas"]["GroupLag"] & {
            /** @description Partitions with a committed offset. */
            committed_partitions?: number | null;
            /** Format: int32 */
            coordinator?: number | null;
            /** @description Why the group could not be described / its offsets read, if so. */
            description_error?: string | null;
            members?: number | null;
            name: string;
            offsets_error?: string | null;
            protocol_type: string;
            state?: string | null;
        };
        GroupTopicLag: {
            /**
             * Format: int64
             * @description Sum of the known lags.
             */
            lag_offsets: number;
            /**
             * Format: int64
             * @description Records deleted before the group read them, over the topic's partitions.
             */
            lost_to_retention: number;
            /** Format: double */
            max_lag_seconds?: number | null;
            partitions_lag_unknown: number;
            topic: string;
            verdict: components["schemas"]["Verdict"];
        };
        Health: {
            /** @description The tasks that fail liveness, with since when (`failing_since_ms`); absent when none. */
            failing?: components["schemas"]["TaskHealth"][];
            /**
             * @description `ok`; `degraded` while a supervised task is between a failure and its restart (still
             *     live, 200); `failing` (503) when a task is dead or in a crash loop (see `tasks`).
             */
            status: string;
            /** @description The monitor's long-lived tasks (watchers, live updates); absent on a pipeline part. */
            tasks?: components["schemas"]["TaskHealth"][] | null;
            /** Format: int64 */
            uptime_s: number;
            version: string;
        };
        /** @description Cumulative counts of a hop (or of one origin kind at it). */
        HopCounters: {
            /**
             * Format: int64
             * @description Records below the base of their stream (before the hop watched it, or skipped as gone).
             */
            before_base: number;
            /**
             * Format: int64
             * @description Copies of records already seen.
             */
            duplicated: number;
            /**
             * Format: int64
             * @description Gaps settled as lost early because a stream held too many.
             */
            gaps_folded: number;
            /**
             * Format: int64
             * @description Records that arrived after being counted lost.
             */
            late: number;
            /**
             * Format: int64
             * @description Sequence numbers counted lost and not since arrived (a late arrival takes one off).
             */
            lost: number;
            /**
             * Format: int64
             * @description Records that filled a gap before its grace ran out.
             */
            out_of_order: number;
            /**
             * Format: int64
             * @description Records in the part of a stream trimmed past the horizon: neither late nor duplicate can
             *     be told.
             */
            past_horizon: number;
            /**
             * Format: int64
             * @description Traced records that arrived, every copy.
             */
            records: number;
            /**
             * Format: int64
             * @description Sequence numbers the reader reported gone before it read them (retention, compaction):
             *     not loss.
             */
            skipped: number;
            /**
             * Format: int64
             * @description Records of streams past the cap on streams: counted and timed, not tracked.
             */
            untracked: number;
        };
        /** @description What a hop shows: totals and the split by origin kind (a bounded label set). */
        HopFigures: {
            /** @description Per origin kind. */
            by_kind: {
                [key: string]: components["schemas"]["KindFigures"];
            };
            /**
             * Format: int64
             * @description Traces the reader could not decode (counted into the hop by the reader).
             */
            malformed: number;
            malformed_windows: components["schemas"]["WindowCounts"];
            /**
             * Format: int64
             * @description Streams tracked now.
             */
            streams: number;
            /**
             * Format: int64
             * @description Streams forgotten after `idle_ms` without records.
             */
            streams_forgotten: number;
            total: components["schemas"]["KindFigures"];
            watching_since_ms: components["schemas"]["u64"];
        };
        /** @description One hop of a flow: where it reads, its reader and its figures. */
        HopView: {
            figures: components["schemas"]["HopFigures"];
            /** @description `mqtt:<broker>:<filter>` or `kafka:<cluster>:<topic>`. */
            hop: string;
            reader: components["schemas"]["ReaderView"];
        };
        /** @description What a hop counted over each window (by arrival time at the hop). */
        HopWindows: {
            duplicated: components["schemas"]["WindowCounts"];
            late: components["schemas"]["WindowCounts"];
            /**
             * @description Numbers counted lost in the window (a later late arrival does not take them off here:
             *     it is counted in `late` of its own window).
             */
            lost: components["schemas"]["WindowCounts"];
            out_of_order: components["schemas"]["WindowCounts"];
            records: components["schemas"]["WindowCounts"];
        };
        /**
         * @description The JSON type of a value; numbers with a fraction or an exponent that serde_json keeps as
         *     floats are `Float`.
         * @enum {string}
         */
        JsonType: "null" | "bool" | "integer" | "float" | "string" | "object" | "array";
        KafkaBrokerState: {
            /** @description Why it did not. */
            error?: string | null;
            host: string;
            /** Format: int32 */
            id: number;
            /** Format: int32 */
            port: number;
            rack?: string | null;
            /** @description Whether the broker answered this scrape. */
            up: boolean;
        };
        /** @description A Kafka probe's figures. */
        KafkaProbeView: {
            /** @description The same figures per leader broker. */
            brokers: components["schemas"]["ProbeBrokerView"][];
            cluster: string;
            /** @description The last error (topic creation, metadata, reading), until the next success. */
            last_error?: string | null;
            /** @description The trace origin of this run's probe records. */
            origin: string;
            partitions: components["schemas"]["ProbePartitionView"][];
            /** @description Reading every partition of the probe topic. */
            reading: boolean;
            topic: string;
            /** @description When these figures were taken (epoch ms). */
            updated_ms: components["schemas"]["u64"];
        };
        /** @description A hop's figures for one origin kind, or for all. */
        KindFigures: {
            counters: components["schemas"]["HopCounters"];
            latency: components["schemas"]["LatencyFigures"];
            windows: components["schemas"]["HopWindows"];
        };
        /**
         * @description How a lag in seconds was obtained.
         * @enum {string}
         */
        LagSecondsBasis: "exact" | "estimated" | "unknown";
        /**
         * @description Processing skew of a group: how far its worst partition is behind the group's typical one
         *     ("one partition is late"). `offsets` = worst lag − median lag, over the partitions whose lag
         *     is known; the median of an even count is the mean of the two middle lags.
         */
        LagSkew: {
            /** Format: double */
            median_lag_offsets: number;
            /**
             * Format: double
             * @description Worst lag minus the median lag (0 when every partition lags alike, or with one partition).
             */
            offsets: number;
            /** Format: int64 */
            worst_lag_offsets: number;
        };
        /** @description Quantiles since the start and over the last 1, 5 and 15 minutes. */
        LatencyFigures: {
            "15m": components["schemas"]["Quantiles"];
            "1m": components["schemas"]["Quantiles"];
            "5m": components["schemas"]["Quantiles"];
            all: components["schemas"]["Quantiles"];
            /**
             * Format: int64
             * @description Records that arrived before their origin timestamp (clock skew between the origin's host
             *     and the monitor's): counted here, never put in the sketch.
             */
            negative: number;
        };
        /** @description A page of a list: `total` items after the filter, `items` from `offset`. */
        ListPage_GroupSummary: {
            items: (components["schemas"]["GroupLag"] & {
                /** @description Partitions with a committed offset. */
                committed_partitions?: number | null;
                /** Format: int32 */
                coordinator?: number | null;
                /** @description Why the group could not be described / its offsets read, if so. */
                description_error?: string | null;
                members?: number | null;
                name: string;
                offsets_error?: string | null;
                protocol_type: string;
                state?: string | null;
            })[];
            limit: number;
            offset: number;
            order: string;
            sort: string;
            /** @description Items after the filter, all pages together. */
            total: number;
        };
        /** @description A page of a list: `total` items after the filter, `items` from `offset`. */
        ListPage_TopicSummary: {
            items: (components["schemas"]["TopicRate"] & {
                /** @description The topic configs that matter, or `{"error": "why"}`. */
                config: Record<string, never>;
                /**
                 * Format: int64
                 * @description Sum of the partitions' end offsets that are known.
                 */
                end_offset_sum: number;
                error?: string | null;
                internal: boolean;
                name: string;
                offline_partitions: number;
                partitions: number;
                /** @description Partitions whose offsets are unknown this scrape. */
                partitions_with_errors: number;
                under_replicated_partitions: number;
            })[];
            limit: number;
            offset: number;
            order: string;
            sort: string;
            /** @description Items after the filter, all pages together. */
            total: number;
        };
        MemberState: {
            /** @description Decoded from the consumer protocol's assignment bytes (empty for other protocols). */
            assignment: components["schemas"]["AssignedTopic"][];
            /** @description Why the assignment bytes could not be decoded. */
            assignment_error?: string | null;
            client_host: string;
            client_id: string;
            group_instance_id?: string | null;
            member_id: string;
        };
        MqttBroker: {
            connection: components["schemas"]["MqttConnection"];
            export_filters: string[];
            filters: string[];
            name: string;
            protocol: string;
            /** Format: int64 */
            sys_messages: number;
            /** @description Whether the broker publishes `$SYS`: seen, none, or waiting (not yet known). */
            sys_status: components["schemas"]["SysStatus"];
            tree: components["schemas"]["TreeSummary"];
            url: string;
            version?: string | null;
        };
        /** @description MqttConnection history of a broker, as the API shows it. */
        MqttConnection: {
            /**
             * Format: int64
             * @description Successful connections (CONNACK accepted).
             */
            connects: number;
            down_since_ms?: null | components["schemas"]["u64"];
            events: components["schemas"]["ConnEvent"][];
            /**
             * Format: int64
             * @description Failed attempts since the last successful connection.
             */
            failed_attempts: number;
            last_error?: string | null;
            next_attempt_ms?: null | components["schemas"]["u64"];
            /**
             * Format: int64
             * @description Time spent down after having been up at least once, outages finished so far.
             */
            outage_ms_total: number;
            /**
             * Format: int64
             * @description Connections lost after having been up.
             */
            outages: number;
            since_ms?: null | components["schemas"]["u64"];
            state: components["schemas"]["ConnState"];
        };
        /** @description An MQTT probe's figures. */
        MqttProbeView: {
            /** @description The `[mqtt.<name>]` broker. */
            broker: string;
            /** @description The last error (connecting, publishing, reading), until the next success. */
            last_error?: string | null;
            /** @description The trace origin of this run's probe messages. */
            origin: string;
            produce: components["schemas"]["ProduceFigures"];
            /** @description The publisher is connected. */
            publishing: boolean;
            /** @description The messages read back: records, lost, duplicated, end-to-end latency. */
            read: components["schemas"]["HopFigures"];
            /** @description The probe's own subscription to its topic is granted. */
            reading: boolean;
            topic: string;
            /** @description When these figures were taken (epoch ms). */
            updated_ms: components["schemas"]["u64"];
        };
        MqttSys: components["schemas"]["SysState"] & {
            broker: string;
            status: components["schemas"]["SysStatus"];
            version?: string | null;
        };
        MqttTree: {
            broker: string;
            /** @description Levels answered: the one asked for, at most 32. */
            depth: number;
            /** @description Children per node answered: the one asked for, at most 1000. */
            limit: number;
            summary: components["schemas"]["TreeSummary"];
            /** @description The subtree asked for: `{name, value, children}` down to `depth` levels below it. */
            tree: components["schemas"]["NodeView"];
        };
        /** @description An edge's figures, named by its two hops. */
        NamedEdge: {
            downstream: string;
            figures: components["schemas"]["EdgeFigures"];
            upstream: string;
        };
        /** @description A named hop's figures. */
        NamedHop: {
            figures: components["schemas"]["HopFigures"];
            hop: string;
        };
        /** @enum {string} */
        NodeKind: "producer" | "topic" | "group" | "mqtt_subtree" | "origin";
        /** @description A node of the tree as a sunburst draws it: `name`, `value`, `children`, with its figures. */
        NodeView: components["schemas"]["Figures"] & {
            /** @description Children, when the requested depth reaches them. `children_count` says how many there are. */
            children?: components["schemas"]["NodeView"][];
            children_count: number;
            /** @description Whether this is an `(other)` node of folded topics. */
            folded: boolean;
            /** @description Whether messages were published on this node's topic itself (not only below it). */
            is_topic: boolean;
            name: string;
            preview?: null | components["schemas"]["Preview"];
            /** @description Retain flag of the last message on this topic itself. */
            retained?: boolean | null;
            /** @description The whole topic of this node (`""` for the root). */
            topic: string;
            /** Format: double */
            value: number;
        };
        /** @description One watched part as the last poll found it. */
        PartStatus: {
            /**
             * Format: double
             * @description The value of its own `pipescope_part_health_status`; `null` when its `/metrics` lacks it.
             */
            health_status?: number | null;
            /**
             * @description Its own `pipescope_part_health_status` is 1 (or, without that gauge, `/health` answered
             *     200 with status `ok`).
             */
            healthy: boolean;
            /** @description Why it is down or unhealthy; `null` when up and healthy. */
            last_error?: string | null;
            last_seen_ms?: null | components["schemas"]["u64"];
            name: string;
            /** @description False until the first poll ended. */
            polled: boolean;
            /**
             * @description Since when `up` and `healthy` are what they are (epoch ms; the monitor's start before
             *     the first poll).
             */
            since_ms: components["schemas"]["u64"];
            /** @description It answered `/health`. */
            up: boolean;
            /** @description Its `/health` and `/metrics` are read under this address. */
            url: string;
        };
        /** @description A partition with its produce rate. */
        PartitionDetail: components["schemas"]["PartitionState"] & {
            /**
             * Format: double
             * @description The interval that rate is over, in seconds.
             */
            instant_interval_s?: number | null;
            /**
             * Format: double
             * @description Records per second over the last scrape interval (live chart only); `null` while no
             *     broker answers.
             */
            instant_messages_per_second?: number | null;
            rate_note?: null | components["schemas"]["RateNote"];
            rates?: null | components["schemas"]["WindowCounts"];
        };
        PartitionState: {
            earliest: number | {
                error: string;
            };
            error?: string | null;
            isr: number[];
            latest: number | {
                error: string;
            };
            /**
             * Format: int32
             * @description `None` when the partition has no leader (offline).
             */
            leader?: number | null;
            offline: boolean;
            offline_replicas: number[];
            /** Format: int32 */
            partition: number;
            producers: {
                /**
                 * Format: int64
                 * @description First offset of the open transaction, when one is open.
                 */
                current_txn_start_offset?: number | null;
                /** Format: int32 */
                last_sequence: number;
                /** Format: int64 */
                last_timestamp_ms: number;
                /** Format: int32 */
                producer_epoch: number;
                /** Format: int64 */
                producer_id: number;
            }[] | {
                error: string;
            };
            replicas: number[];
            under_replicated: boolean;
        };
        /** @description What the API shows of a payload. */
        Preview: {
            encoding: components["schemas"]["Encoding"];
            /**
             * Format: int64
             * @description Bytes of the whole payload.
             */
            size: number;
            text: string;
            /** @description Whether `text` shows only the start of the payload. */
            truncated: boolean;
        };
        /**
         * @description A leader broker's partitions of the probe topic, summed: where loss or unavailability
         *     gathers on one broker.
         */
        ProbeBrokerView: {
            /** Format: int64 */
            acked: number;
            /** Format: int64 */
            duplicated: number;
            /** Format: int64 */
            failed: number;
            /**
             * Format: int32
             * @description The leader's broker id; absent for partitions without a leader.
             */
            leader?: number | null;
            /** Format: int64 */
            lost: number;
            /** Format: int32 */
            partitions: number;
            /** Format: int64 */
            read: number;
            /** Format: int64 */
            sent: number;
        };
        /** @description One partition of a probe topic: its leader, the produce side and what was read back. */
        ProbePartitionView: {
            /**
             * Format: int32
             * @description The partition's leader broker at the last metadata lookup.
             */
            leader?: number | null;
            /** Format: int32 */
            partition: number;
            produce: components["schemas"]["ProduceFigures"];
            /** @description The records read back: records, lost, duplicated, end-to-end latency. */
            read: components["schemas"]["HopFigures"];
        };
        /** @description One probe's figures; `kind` says which system it probes. */
        ProbeView: (components["schemas"]["KafkaProbeView"] & {
            /** @enum {string} */
            kind: "kafka";
        }) | (components["schemas"]["MqttProbeView"] & {
            /** @enum {string} */
            kind: "mqtt";
        }) | (components["schemas"]["BridgeProbeView"] & {
            /** @enum {string} */
            kind: "bridge";
        });
        /** @description A probe's produce figures for one partition. */
        ProduceFigures: {
            /** @description Send to acknowledgement, acknowledged records only. */
            ack_latency: components["schemas"]["LatencyFigures"];
            /**
             * Format: int64
             * @description Acknowledged within the timeout.
             */
            acked: number;
            availability: components["schemas"]["Availability"];
            /**
             * Format: int64
             * @description Failed or acknowledged after the timeout.
             */
            failed: number;
            /**
             * Format: int64
             * @description Probe records whose outcome is known (acknowledged or failed).
             */
            sent: number;
        };
        /** @description A topic's profile over the last window, the last 15 minutes and the last hour. */
        ProfileViews: {
            /** @description The closed windows of the last 15 minutes. */
            fifteen_minutes: Record<string, never>;
            /** @description The last hour at 15-minute steps: up to four closed quarter hours and the current one. */
            one_hour: Record<string, never>;
            /** @description The last closed window; absent before the first one closes. */
            window?: Record<string, never> | null;
        };
        /** @description One quality topic in full. */
        QualityTopicDetail: components["schemas"]["QualityTopicView"] & {
            /** @description The newest drift events, newest first. */
            drift_events: components["schemas"]["DriftEvent"][];
            /** @description The newest records that are not JSON, newest first. */
            invalid_previews: components["schemas"]["FailingRecord"][];
            /** @description The profile summary per field over the last window, 15 minutes and hour. */
            profiles: components["schemas"]["ProfileViews"];
            /** @description Every rule's errors per window and its newest failing records. */
            rules: components["schemas"]["RulesFigures"];
        };
        /** @description A quality topic's figures, as the list shows them. */
        QualityTopicView: {
            drift: components["schemas"]["DriftCounts"];
            /** @description `per_minute` of the `1m` window: the error records per minute. */
            error_records: components["schemas"]["WindowCounts"];
            /**
             * Format: int64
             * @description Records breaking at least one rule, each counted once.
             */
            error_records_total: number;
            invalid: components["schemas"]["WindowCounts"];
            /**
             * Format: int64
             * @description Records whose payload is not JSON.
             */
            invalid_total: number;
            name: string;
            reader: components["schemas"]["ReaderState"];
            records: components["schemas"]["WindowCounts"];
            /** Format: int64 */
            records_total: number;
            /** @description The rules broken at least once since start. */
            rules_broken: components["schemas"]["RuleBroken"][];
            /**
             * Format: int64
             * @description One record in this many is profiled (rules check every record).
             */
            sample_every: number;
            /** @description `kafka:<cluster>:<topic>` or `mqtt:<broker>:<filter>`. */
            source: string;
            /** @description When these figures were taken (epoch ms). */
            updated_ms: components["schemas"]["u64"];
            /** Format: double */
            window_s: number;
        };
        /** @description Latency quantiles in milliseconds; absent when nothing was measured. */
        Quantiles: {
            /** Format: int64 */
            count: number;
            /** Format: double */
            max_ms?: number | null;
            /** Format: double */
            p50_ms?: number | null;
            /** Format: double */
            p90_ms?: number | null;
            /** Format: double */
            p999_ms?: number | null;
            /** Format: double */
            p99_ms?: number | null;
        };
        RangeSeries: {
            labels: {
                [key: string]: string;
            };
            points: [
                number,
                number | null
            ][];
        };
        /**
         * @description How a partition's rate came out this scrape.
         * @enum {string}
         */
        RateNote: "measured" | "first_reading" | "reset" | "end_went_back" | "no_elapsed_time" | "offsets_error";
        /** @description What a quality topic's reader reports. */
        ReaderState: {
            /** @description Subscribed (MQTT), or every partition assigned (Kafka): what is written after is read. */
            connected: boolean;
            /** @description The last connection or read error, until the next success. */
            last_error?: string | null;
            /**
             * Format: int32
             * @description Kafka partitions read.
             */
            partitions: number;
        };
        /** @description What a hop's reader reports, besides the accounting. */
        ReaderView: {
            /**
             * Format: double
             * @description Seconds the reader waited for the flow to take what it read (backpressure): growing
             *     means the accounting cannot keep up with the traffic.
             */
            blocked_s: number;
            /**
             * @description Reading: subscribed (MQTT), or every partition of the topic assigned at a known offset
             *     (Kafka). Records published after it turns true are read.
             */
            connected: boolean;
            /** @description The last connection or read error, until the next success. */
            last_error?: string | null;
            /**
             * Format: int32
             * @description Kafka partitions assigned.
             */
            partitions: number;
            /**
             * Format: int64
             * @description Times the position on a Kafka partition jumped past unread records (retention,
             *     compaction): the streams there start a new base, nothing is counted lost.
             */
            rebased: number;
            /**
             * Format: int64
             * @description Records with no trace header: not judged.
             */
            untraced: number;
        };
        /** @description `/ready`'s answer. */
        Ready: {
            /** @description Every source reached at least once and the store writable. */
            ready: boolean;
            /**
             * @description Every configured source (kafka, mqtt, part, flow, quality) and the store, by kind then
             *     name: its state (`never_reached`, `up`, `down`) and since when.
             */
            sources: components["schemas"]["SourceStatus"][];
            /** @description `kind name` of each source keeping the monitor from being ready. */
            waiting_for: string[];
        };
        /** @description One report on disk. */
        ReportEntry: {
            /** Format: int64 */
            bytes: number;
            /** @description The file name: `GET /api/v1/quality/reports/{file}` serves it. */
            file: string;
            /** @description The quality topic (`[quality.<name>]`). */
            quality: string;
            /**
             * Format: int64
             * @description Records in the report; absent for reports written before the monitor's last start.
             */
            records?: number | null;
            /** @description When it was written (epoch ms, to the second). */
            written_at_ms: components["schemas"]["u64"];
        };
        /** @description One rule broken on a topic, in the list. */
        RuleBroken: {
            /** Format: int64 */
            broken_total: number;
            /**
             * Format: double
             * @description Records that broke it over the last minute (absent until a minute is covered).
             */
            errors_per_minute?: number | null;
            /** @description `<field or name>:<check>`. */
            rule: string;
        };
        /** @description One rule's figures: a record breaking several rules counts once in each. */
        RuleFigures: {
            /** Format: int64 */
            broken_total: number;
            /** @description `required`, `not_null`, `not_empty`, `type`, `range`, `regex`, `one_of` or `fresh_within`. */
            check: string;
            /** @description Records that broke the rule, per window (`per_minute` is the errors per minute). */
            errors: components["schemas"]["WindowCounts"];
            field: string;
            /** @description The newest failing records, newest first, at most [`PREVIEWS_PER_RULE`]. */
            previews: components["schemas"]["FailingRecord"][];
            /** @description `<field or name>:<check>`. */
            rule: string;
        };
        /** @description A configured rule as the API lists it. */
        RuleInfo: {
            /**
             * Format: double
             * @description The rule's `for`, in seconds.
             */
            for_s: number;
            kind: string;
            name: string;
            severity: string;
        };
        /** @description A topic's rule figures, as the API shows them. */
        RulesFigures: {
            error_records: components["schemas"]["WindowCounts"];
            /**
             * Format: int64
             * @description Records that broke at least one rule since start (each counted once).
             */
            error_records_total: number;
            records: components["schemas"]["WindowCounts"];
            /**
             * Format: int64
             * @description Records checked since start.
             */
            records_total: number;
            rules: components["schemas"]["RuleFigures"][];
        };
        /**
         * @description One kind of request of a scrape (all its requests to all brokers), in milliseconds from the
         *     scrape's start.
         */
        ScrapeStage: {
            /** Format: double */
            duration_ms: number;
            name: string;
            /** Format: double */
            start_ms: number;
        };
        SeriesEntry: {
            labels: {
                [key: string]: string;
            };
            metric: string;
        };
        /** @description A silence as kept and listed. */
        Silence: {
            comment: string;
            created_at_ms: components["schemas"]["u64"];
            created_by: string;
            ends_at_ms: components["schemas"]["u64"];
            id: string;
            matchers: components["schemas"]["SilenceMatcher"][];
            starts_at_ms: components["schemas"]["u64"];
        };
        /** @description One condition of a silence on one label, in Alertmanager's API spelling. */
        SilenceMatcher: {
            is_regex?: boolean;
            /** @description The label (`alertname`, `group`, `topic`, `team`, …). */
            name: string;
            /** @description The value it must equal, or with `is_regex` the regex the whole value must match. */
            value: string;
        };
        /** @description What a client asks for: matchers, an end, and why. */
        SilenceRequest: {
            comment?: string;
            created_by?: string;
            /** @description When it ends (epoch ms). Required: a silence without an end is refused. */
            ends_at_ms: components["schemas"]["u64"];
            matchers: components["schemas"]["SilenceMatcher"][];
            starts_at_ms?: null | components["schemas"]["u64"];
        };
        /**
         * @description Where a silence stands at a given time.
         * @enum {string}
         */
        SilenceState: "pending" | "active" | "expired";
        /** @description A silence and where it stands now. */
        SilenceView: components["schemas"]["Silence"] & {
            state: components["schemas"]["SilenceState"];
        };
        /** @description The kept silences. */
        SilencesView: {
            /**
             * @description Active first, then pending, then expired (within the last day); latest end first within
             *     each.
             */
            silences: components["schemas"]["SilenceView"][];
        };
        /**
         * @description A source's connection as `/ready` shows it.
         * @enum {string}
         */
        SourceState: "never_reached" | "up" | "down";
        /** @description One source's state, since when, and its last error. */
        SourceStatus: {
            first_reached_ms?: null | components["schemas"]["u64"];
            /** @description `kafka`, `mqtt`, `part`, `flow`, `quality` or `store`. */
            kind: string;
            /** @description The last error while not up; `null` once up. */
            last_error?: string | null;
            /** @description True for a source that must be up now for readiness (the store), not only reached once. */
            must_stay_up: boolean;
            name: string;
            /** @description When it entered `state` (epoch ms); for `never_reached`, when the monitor started. */
            since_ms: components["schemas"]["u64"];
            state: components["schemas"]["SourceState"];
        };
        StoreRange: {
            from: components["schemas"]["u64"];
            metric: string;
            resolution: string;
            series: components["schemas"]["RangeSeries"][];
            /** Format: int64 */
            step_ms: number;
            to: components["schemas"]["u64"];
        };
        StoreSeries: {
            series: components["schemas"]["SeriesEntry"][];
        };
        StoreValues: {
            metric: string;
            series: components["schemas"]["ValueEntry"][];
        };
        /** @description What is known of a broker from its `$SYS` topics. */
        SysState: {
            /**
             * Format: int64
             * @description Messages on `$SYS` topics not kept because [`MAX_SYS_TOPICS`] were already kept.
             */
            generic_dropped: number;
            last_ms?: null | components["schemas"]["u64"];
            /**
             * Format: int64
             * @description `$SYS` messages received.
             */
            messages: number;
            /** @description Latest value of each metric, by `$SYS` topic: its kind, value and `updated_ms`. */
            metrics: Record<string, never>;
            version?: string | null;
        };
        /** @enum {string} */
        SysStatus: "seen" | "none" | "waiting";
        /** @description A supervised task as `/health` shows it. */
        TaskHealth: {
            failing_since_ms?: null | components["schemas"]["u64"];
            /** @description The last failure (a panic's message, or "ended by itself"), if any. */
            last_failure?: string | null;
            last_failure_ms?: null | components["schemas"]["u64"];
            /**
             * @description `running`, `restarting` (between a failure and its restart), `crash_loop` (failed 5 times
             *     within 5 minutes) or `dead` (ended and not started again): the last two fail `/health`.
             */
            liveness: components["schemas"]["TaskLiveness"];
            /** @description What the task does, e.g. `kafka watcher demo`. */
            name: string;
            /**
             * Format: int32
             * @description How many times it was started again after a panic or an early end.
             */
            restarts: number;
            /** @description False between a failure and the restart that follows it. */
            running: boolean;
        };
        /**
         * @description How a supervised task is doing, for `/health`.
         * @enum {string}
         */
        TaskLiveness: "running" | "restarting" | "crash_loop" | "dead";
        /** @description A topic with its partitions' offsets, replicas, producers and rates. */
        TopicDetail: components["schemas"]["TopicRate"] & {
            config: {
                cleanup_policy?: string | null;
                /** Format: int32 */
                min_insync_replicas?: number | null;
                /** Format: int64 */
                retention_bytes?: number | null;
                /** Format: int64 */
                retention_ms?: number | null;
            } | {
                error: string;
            };
            error?: string | null;
            /** @description The topic's id (a topic deleted and made again under the same name gets a new one). */
            id?: string | null;
            internal: boolean;
            name: string;
            partitions: components["schemas"]["PartitionDetail"][];
        };
        /** @description A topic's produce rates: sums over the partitions whose rates are known this scrape. */
        TopicRate: {
            /**
             * Format: double
             * @description The interval that rate is over, in seconds.
             */
            instant_interval_s?: number | null;
            /**
             * Format: double
             * @description Records per second over the last scrape interval (for a live chart; bursty producers
             *     make it jump from scrape to scrape); `null` while no broker answers.
             */
            instant_messages_per_second?: number | null;
            /**
             * @description Partitions whose rates are known (and summed); fewer than `partitions` when some
             *     partition's offsets failed.
             */
            partitions_with_rate: number;
            rates?: null | components["schemas"]["WindowCounts"];
        };
        TopicSummary: components["schemas"]["TopicRate"] & {
            /** @description The topic configs that matter, or `{"error": "why"}`. */
            config: Record<string, never>;
            /**
             * Format: int64
             * @description Sum of the partitions' end offsets that are known.
             */
            end_offset_sum: number;
            error?: string | null;
            internal: boolean;
            name: string;
            offline_partitions: number;
            partitions: number;
            /** @description Partitions whose offsets are unknown this scrape. */
            partitions_with_errors: number;
            under_replicated_partitions: number;
        };
        /** @description Size and bounds of a tree. */
        TreeSummary: {
            counting_since_ms?: null | components["schemas"]["u64"];
            /**
             * Format: int64
             * @description Messages whose topic was longer than [`MAX_TOPIC_BYTES`].
             */
            cut_topic_messages: number;
            /**
             * Format: int64
             * @description Messages on topics that were past a bound, counted in an `(other)` node.
             */
            folded_messages: number;
            max_topics: number;
            /** Format: int64 */
            messages: number;
            nodes: number;
            /** @description `(other)` nodes holding folded topics. */
            other_nodes: number;
            /** @description Topics tracked on their own. */
            topics: number;
        };
        /** @description `event: update` data: a source has new data. */
        Update: {
            at: components["schemas"]["u64"];
            /** @description `kafka/<cluster>` or `mqtt/<broker>`. */
            source: string;
        };
        ValueEntry: {
            labels: {
                [key: string]: string;
            };
            time_ms: components["schemas"]["u64"];
            /** Format: double */
            value: number;
        };
        /**
         * @description The verdict on one partition of a group (or on a group: its worst partition's).
         * @enum {string}
         */
        Verdict: "OK" | "WARN" | "STOPPED" | "STALLED" | "REWOUND" | "LOST";
        /** @description What was counted in one window. */
        WindowCount: {
            /**
             * Format: double
             * @description Messages counted over the covered part of the window (fractional where the window's
             *     start falls between two readings and is interpolated).
             */
            count: number;
            /**
             * Format: double
             * @description Seconds of the window the count covers: the window's length once the monitor has watched
             *     that long, less before ("since start", or since a reset of the source).
             */
            covered_s: number;
            /**
             * Format: double
             * @description `count` per minute over the whole window; absent until the window is covered.
             */
            per_minute?: number | null;
        };
        /** @description The counts of the three windows, as the API shows them: `{"1m": …, "5m": …, "15m": …}`. */
        WindowCounts: {
            "15m": components["schemas"]["WindowCount"];
            "1m": components["schemas"]["WindowCount"];
            "5m": components["schemas"]["WindowCount"];
        };
        /** Format: int64 */
        u64: number;
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    serve: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": Record<string, never>;
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    alerts: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AlertsView"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    events: {
        parameters: {
            query?: {
                /** @description How many events, newest first (default 100, at most 1000). */
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EventsPage"];
                };
            };
            /** @description a parameter is wrong */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    flow_graph: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FlowGraph"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    flows: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FlowView"][];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    flow: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                flow: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FlowView"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such flow (or it has not ticked yet) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    clusters: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClusterSummary"][];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    cluster: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                cluster: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ClusterSummary"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such cluster, topic or group */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    kafka_brokers: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                cluster: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["KafkaBrokerState"][];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such cluster, topic or group */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    groups: {
        parameters: {
            query?: {
                /** @description First item of the page (0). */
                offset?: number;
                /** @description Items per page (1,000; at most 10,000). */
                limit?: number;
                /**
                 * @description name (default), lag (offsets), lag_seconds (the largest), verdict (OK, WARN, STOPPED,
                 *     STALLED, REWOUND, LOST in that order), members, state.
                 */
                sort?: string;
                /** @description asc (default) or desc; unknown values last either way. */
                order?: string;
                /** @description Groups whose name contains this, ignoring case. */
                q?: string;
                /** @description Only groups with one of these verdicts, comma-separated (`STALLED,STOPPED`). */
                verdict?: string;
            };
            header?: never;
            path: {
                cluster: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ListPage_GroupSummary"];
                };
            };
            /** @description A parameter is wrong: the error says which */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such cluster, topic or group */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    group: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                cluster: string;
                group: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GroupDetail"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such cluster, topic or group */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    topics: {
        parameters: {
            query?: {
                /** @description First item of the page (0). */
                offset?: number;
                /** @description Items per page (1,000; at most 10,000). */
                limit?: number;
                /**
                 * @description name (default), rate (messages in the last minute), partitions, end_offsets,
                 *     under_replicated, offline.
                 */
                sort?: string;
                /** @description asc (default) or desc; unknown values last either way. */
                order?: string;
                /** @description Topics whose name contains this, ignoring case. */
                q?: string;
                /** @description false: leave out internal topics (`__consumer_offsets`, ...). */
                internal?: boolean;
            };
            header?: never;
            path: {
                cluster: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ListPage_TopicSummary"];
                };
            };
            /** @description A parameter is wrong: the error says which */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such cluster, topic or group */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    topic: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                cluster: string;
                topic: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TopicDetail"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such cluster, topic or group */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    last: {
        parameters: {
            query: {
                /** @description metric name */
                metric: string;
                /** @description label matchers, e.g. {topic="orders",cluster=~"prod.*"} */
                match?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["StoreValues"];
                };
            };
            /** @description a parameter is wrong */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the answer would hold too many series: narrow match */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the query ran out of its time budget, or every store reader stayed busy: narrow it or retry later */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    live: {
        parameters: {
            query?: {
                /** @description the bearer token, or base64 of user:password with basic auth */
                access_token?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description too many live streams are open */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    mqtt_brokers: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MqttBroker"][];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    sys: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                broker: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MqttSys"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such broker (or, for the tree, no such topic) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    tree: {
        parameters: {
            query?: {
                /** @description subtree to start at (default the root) */
                root?: string;
                /** @description levels to answer (default 3; more is answered as 32) */
                depth?: number;
                /** @description children per node (default 1000; more is answered as 1000; the rest summed in (more)) */
                limit?: number;
                /**
                 * @description what sizes a node: messages, bytes, or the count over the last 1, 5 or 15 minutes
                 *     (rate_1m, rate_5m, rate_15m; counts over one window compare as per-minute figures do)
                 */
                value?: "messages" | "bytes" | "rate_1m" | "rate_5m" | "rate_15m";
            };
            header?: never;
            path: {
                broker: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MqttTree"];
                };
            };
            /** @description a parameter is wrong */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such broker (or, for the tree, no such topic) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    parts: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PartStatus"][];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    probes: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ProbeView"][];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    quality_topics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["QualityTopicView"][];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    quality_reports: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ReportEntry"][];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the reports directory cannot be read */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    quality_report: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                file: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the report */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/html": string;
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such report */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    quality_topic: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["QualityTopicDetail"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description no such quality topic */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    query: {
        parameters: {
            query: {
                /** @description metric name */
                metric: string;
                /** @description label matchers, e.g. {topic="orders",cluster=~"prod.*"} */
                match?: string;
                /** @description epoch ms, RFC 3339, now or now-1h (default now-1h) */
                from?: string;
                /** @description epoch ms, RFC 3339 or now (default now) */
                to?: string;
                /** @description a duration (1m, 30s) or milliseconds */
                step?: string;
                /** @description how points are aggregated */
                agg?: "avg" | "min" | "max" | "last" | "sum" | "count";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["StoreRange"];
                };
            };
            /** @description a parameter is wrong */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the answer would hold too many series or points: narrow match, shorten the range or raise step */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the query ran out of its time budget, or every store reader stayed busy: narrow it or retry later */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    series: {
        parameters: {
            query?: {
                /** @description metric name (default: every metric) */
                metric?: string;
                /** @description label matchers, e.g. {topic="orders",cluster=~"prod.*"} */
                match?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["StoreSeries"];
                };
            };
            /** @description a parameter is wrong */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the query ran out of its time budget, or every store reader stayed busy: narrow it or retry later */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    silences: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SilencesView"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    add_silence: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SilenceRequest"];
            };
        };
        responses: {
            /** @description Added */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SilenceView"];
                };
            };
            /** @description The body is not a valid silence: the error says what to change */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The cap of kept silences is reached */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    expire_silence: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description the silence's id */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Expired */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SilenceView"];
                };
            };
            /** @description It has expired already */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such silence */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    top: {
        parameters: {
            query: {
                /** @description metric name */
                metric: string;
                /** @description label matchers, e.g. {topic="orders",cluster=~"prod.*"} */
                match?: string;
                /** @description epoch ms, RFC 3339, now or now-1h (default now-1h) */
                from?: string;
                /** @description epoch ms, RFC 3339 or now (default now) */
                to?: string;
                /** @description how points are aggregated */
                agg?: "avg" | "min" | "max" | "last" | "sum" | "count";
                /** @description how many series (default 10) */
                n?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["StoreValues"];
                };
            };
            /** @description a parameter is wrong */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the query ran out of its time budget, or every store reader stayed busy: narrow it or retry later */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    write_v1: {
        parameters: {
            query: {
                /** @description a database name (required by InfluxDB clients; pipescope has one store) */
                db: string;
                /** @description timestamp unit (default n) */
                precision?: "" | "n" | "ns" | "u" | "us" | "µ" | "ms" | "s" | "m" | "h";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "text/plain": string;
            };
        };
        responses: {
            /** @description every line stored */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description lines or samples rejected (the rest stored): which, why, how many */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the body breaks a per-request limit (nothing stored): split it */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description a compressed body (send it plain) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description nothing stored, retry later: the store's queue is full, its commit failed (disk full?) or too many writes at once */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    health: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Live */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description A task is dead or in a crash loop */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
    metrics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    ping: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description up */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    ready: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Ready */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Ready"];
                };
            };
            /** @description Not ready: `waiting_for` says for what */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Ready"];
                };
            };
        };
    };
    write: {
        parameters: {
            query: {
                /** @description a database name (required by InfluxDB clients; pipescope has one store) */
                db: string;
                /** @description timestamp unit (default n) */
                precision?: "" | "n" | "ns" | "u" | "us" | "µ" | "ms" | "s" | "m" | "h";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "text/plain": string;
            };
        };
        responses: {
            /** @description every line stored */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description lines or samples rejected (the rest stored): which, why, how many */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description [web] auth is on and the credentials are missing or wrong */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description the body breaks a per-request limit (nothing stored): split it */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description a compressed body (send it plain) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description nothing stored, retry later: the store's queue is full, its commit failed (disk full?) or too many writes at once */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
}
