import {
  enc,
  getJson,
  getOptional,
  type ClusterSummary,
  type GroupPage,
  type Health,
  type KafkaBroker,
  type MqttBroker,
  type PipelineEvent,
  type TopicPage,
} from "../api";
import { alertCounts } from "./alerts";
import { el } from "../dom";
import { ago, count, duration, sumWindows, time, windowRate, windowValue } from "../format";
import { onEvent } from "../live";
import type { Page } from "../router";
import { badge, card, fill, link, section, table, unavailable } from "../ui";

/** The worst groups the overview lists (all of them on the Groups page). */
const GROUPS_SHOWN = 50;

const EVENT_KINDS: Record<string, string> = {
  broker_down: "bad",
  broker_up: "ok",
  mqtt_disconnected: "bad",
  mqtt_connected: "ok",
  verdict_changed: "warn",
  topics_folded: "warn",
};

export const overview: Page = {
  title: "Overview",
  nav: true,
  mount(root, { signal }) {
    const cards = el("section", { class: "cards" });
    const kafka = el("div");
    const top = el("div");
    const groups = el("div");
    const mqtt = el("div");
    const eventList = el("ol", { class: "events", "data-testid": "events" });
    const eventNote = el("div");
    root.append(
      el("h1", {}, "Overview"),
      cards,
      el(
        "div",
        { class: "grid2" },
        section("Kafka clusters and brokers", kafka),
        section("Top topics by messages/min", top),
        section("Consumer groups by verdict", groups),
        section("MQTT brokers", mqtt),
      ),
      section("Event stream", eventNote, eventList),
    );

    // Live events arrive between refreshes; the list keeps the newest 100.
    let events: PipelineEvent[] = [];
    let loadedEvents = false;
    const drawEvents = () => {
      fill(
        eventList,
        ...events.slice(0, 100).map((e) =>
          el(
            "li",
            {},
            el("time", {}, time(e.at)),
            badge(e.kind, EVENT_KINDS[e.kind] ?? "muted"),
            el("span", { class: "subject" }, `${e.source} · ${e.subject}`),
            el("span", { class: "message" }, e.message),
          ),
        ),
      );
      if (events.length === 0 && loadedEvents) eventList.append(el("li", { class: "muted" }, "No events yet."));
    };
    const stop = onEvent((e) => {
      events = [e, ...events].slice(0, 100);
      drawEvents();
    });
    signal.addEventListener("abort", stop);

    return async () => {
      const [health, clusters, brokers, alertStates] = await Promise.all([
        getJson<Health>("/health", signal),
        getJson<ClusterSummary[]>("/api/v1/kafka/clusters", signal),
        getJson<MqttBroker[]>("/api/v1/mqtt/brokers", signal),
        alertCounts(signal),
      ]);
      // A page of each list, sorted on the server: the busiest topics and the worst groups,
      // whatever the cluster's size; the counts come from the cluster summaries.
      const perCluster = await Promise.all(
        clusters.map(async (c) => {
          const base = `/api/v1/kafka/clusters/${enc(c.name)}`;
          const [b, t, g] = await Promise.all([
            getJson<KafkaBroker[]>(`${base}/brokers`, signal),
            getJson<TopicPage>(`${base}/topics?sort=rate&order=desc&limit=10`, signal),
            getJson<GroupPage>(`${base}/groups?sort=verdict&order=desc&limit=${GROUPS_SHOWN}`, signal),
          ]);
          return { cluster: c, brokers: b, topics: t.items, groups: g.items };
        }),
      );
      if (!loadedEvents) {
        let answer: { events: PipelineEvent[] } | null = null;
        try {
          answer = await getOptional<{ events: PipelineEvent[] }>("/api/v1/events?limit=50", signal);
          if (!answer) fill(eventNote, unavailable("The event stream", "this server has no /api/v1/events"));
        } catch (e) {
          if (signal.aborted) throw e;
          fill(eventNote, unavailable("Past events", e instanceof Error ? e.message : String(e)));
        }
        loadedEvents = true;
        if (answer) {
          const seen = new Set(events.map((e) => `${e.at}|${e.kind}|${e.subject}`));
          events = [...events, ...answer.events.filter((e) => !seen.has(`${e.at}|${e.kind}|${e.subject}`))];
        }
        drawEvents();
      }

      const brokersUp = perCluster.reduce((n, c) => n + c.brokers.filter((b) => b.up).length, 0);
      const brokersAll = perCluster.reduce((n, c) => n + c.brokers.length, 0);
      const allGroups = perCluster.flatMap((c) => c.groups.map((g) => ({ cluster: c.cluster.name, ...g })));
      const groupCount = clusters.reduce((n, c) => n + c.groups, 0);
      const verdicts = new Map<string, number>();
      for (const c of clusters) {
        for (const [v, n] of Object.entries(c.group_verdicts)) verdicts.set(v, (verdicts.get(v) ?? 0) + n);
      }
      const allTopicsMinute = sumWindows(clusters.map((c) => c.messages_last_minute));
      const mqttUp = brokers.filter((b) => b.connection.state === "connected").length;
      fill(
        cards,
        card("pipescope", health.version, "version", "card-pipescope"),
        card("uptime", duration(health.uptime_s), "since start", "card-uptime"),
        card("Kafka brokers", `${brokersUp} / ${brokersAll}`, `up, in ${clusters.length} cluster(s)`, "card-kafka-brokers"),
        card(
          "messages/min",
          windowRate(allTopicsMinute),
          allTopicsMinute && allTopicsMinute.per_minute === null ? "into all Kafka topics, since start" : "into all Kafka topics, last minute",
          "card-rate",
        ),
        card(
          "groups",
          String(groupCount),
          el("span", {}, ...[...verdicts.entries()].map(([v, n]) => el("span", { class: "chip" }, badge(v), ` ${n}`))),
          "card-groups",
        ),
        card("MQTT brokers", `${mqttUp} / ${brokers.length}`, "connected", "card-mqtt"),
        card(
          "alerts",
          alertStates.firing > 0 ? badge(`${count(alertStates.firing)} firing`, "bad") : "none firing",
          el("a", { href: "#/alerts" }, `${count(alertStates.pending)} pending`),
          "card-alerts",
        ),
      );

      fill(
        kafka,
        clusters.length === 0
          ? el("p", { class: "muted" }, "No Kafka cluster configured.")
          : table(
              ["cluster", "brokers", "topics", "partitions", "under-replicated", "offline", "scraped"],
              perCluster.map(({ cluster: c, brokers: b }) => [
                c.error ? el("span", {}, c.name, " ", badge("error", "bad")) : c.name,
                el("span", { class: "chips" }, ...b.map((x) => badge(`${x.id} ${x.host}:${x.port}`, x.up ? "ok" : "bad"))),
                c.topics,
                c.partitions,
                c.under_replicated_partitions,
                c.offline_partitions,
                c.error ? c.error : ago(c.scraped_at_ms),
              ]),
            ),
      );

      const topics = perCluster
        .flatMap((c) => c.topics.map((t) => ({ cluster: c.cluster.name, ...t })))
        .sort((a, b) => windowValue(b.rates?.["1m"]) - windowValue(a.rates?.["1m"]))
        .slice(0, 10);
      const maxRate = Math.max(1, ...topics.map((t) => windowValue(t.rates?.["1m"])));
      fill(
        top,
        topics.length === 0
          ? el("p", { class: "muted" }, "No topics yet.")
          : table(
              ["topic", "messages/min (last minute)", ""],
              topics.map((t) => [
                link(`#/topics/${enc(t.cluster)}/${enc(t.name)}`, t.name),
                windowRate(t.rates?.["1m"]),
                el("span", { class: "bar", style: `width:${(100 * windowValue(t.rates?.["1m"])) / maxRate}%` }),
              ]),
            ),
      );

      const order = ["LOST", "STOPPED", "STALLED", "REWOUND", "WARN", "OK"];
      allGroups.sort((a, b) => {
        const ia = order.indexOf(a.verdict ?? "");
        const ib = order.indexOf(b.verdict ?? "");
        return (ia < 0 ? 9 : ia) - (ib < 0 ? 9 : ib) || a.name.localeCompare(b.name);
      });
      fill(
        groups,
        allGroups.length === 0
          ? el("p", { class: "muted" }, "No consumer groups yet.")
          : table(
              ["group", "verdict", "lag", "max lag"],
              allGroups.slice(0, GROUPS_SHOWN).map((g) => [
                link(`#/groups/${enc(g.cluster)}/${enc(g.name)}`, g.name),
                badge(g.verdict),
                count(g.lag_offsets),
                duration(g.max_lag_seconds),
              ]),
            ),
        groupCount > GROUPS_SHOWN ? el("p", { class: "muted" }, link("#/groups", `all ${count(groupCount)} groups`), `: the ${GROUPS_SHOWN} worst are shown`) : null,
      );

      fill(
        mqtt,
        brokers.length === 0
          ? el("p", { class: "muted" }, "No MQTT broker configured.")
          : table(
              ["broker", "connection", "$SYS", "topics", "messages"],
              brokers.map((b) => [
                el("span", {}, link("#/mqtt", b.name), el("div", { class: "muted small" }, b.url)),
                badge(b.connection.state, b.connection.state === "connected" ? "ok" : "bad"),
                b.sys_status,
                count(b.tree.topics),
                count(b.tree.messages),
              ]),
            ),
      );
    };
  },
};
