import { enc, getJson, selector, type MqttBroker, type RangeAnswer, type SeriesAnswer, type TreeAnswer, type TreeNode } from "../api";
import { chartPanel, drawLines, perMinute, type ChartPanel } from "../charts";
import { el } from "../dom";
import { ago, count } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, card, fill, section } from "../ui";
import { drawSunburst, sunburstLegend } from "./sunburst";
import { treeTable, type TreeState } from "./tree";

/** Trees up to this many nodes are fetched whole for the browser; larger ones level by level. */
const WHOLE_TREE_NODES = 3_000;
const TREE_DEPTH = 8;
const SUN_DEPTH = 4;

/** `#/mqtt/<broker>?root=<topic>`: the zoomed sunburst root is kept in the address. */
function hashQuery(): URLSearchParams {
  return new URLSearchParams(location.hash.split("?")[1] ?? "");
}

function sysTitle(metric: string): string {
  return metric
    .replace(/^pipescope_mqtt_broker_/, "")
    .replace(/_total$/, "")
    .replace(/_/g, " ");
}

export const mqtt: Page = {
  title: "MQTT",
  nav: true,
  mount(root, { signal, params }) {
    const tabs = el("nav", { class: "tabs" });
    const cards = el("section", { class: "cards" });
    const sysGrid = el("div", { class: "grid3" });
    const sysNote = el("p", { class: "note" });
    const sun = chartPanel("Topic tree", signal, { "data-testid": "sunburst", class: "chart tall" });
    const crumbs = el("div", { class: "crumbs" });
    const legend = el("div");
    sun.panel.insertBefore(crumbs, sun.panel.querySelector(".chart"));
    sun.panel.append(legend);
    const filter = el("input", { type: "search", placeholder: "filter topics", "aria-label": "filter topics", "data-testid": "tree-filter" });
    const treeBox = el("div");
    const treeNote = el("p", { class: "note" });
    root.append(
      el("h1", {}, "MQTT"),
      tabs,
      cards,
      section("$SYS", sysNote, sysGrid),
      sun.panel,
      section("Topic browser", filter, treeNote, treeBox),
    );

    const charts = new Map<string, ChartPanel>();
    const state: TreeState = { expanded: new Set(), filter: "" };
    let zoom = hashQuery().get("root") ?? "";
    let lastTree: TreeAnswer | null = null;
    let broker = params.broker ?? "";
    let refreshNow: () => void = () => {};

    const drawTree = () => {
      if (!lastTree) return;
      fill(treeBox, treeTable(lastTree.tree, state, Date.now(), () => (missing(lastTree!.tree).length ? refreshNow() : drawTree())));
    };
    /** Expanded nodes whose children have not been fetched (large trees load level by level). */
    const missing = (root: TreeNode): TreeNode[] => {
      const out: TreeNode[] = [];
      const walk = (n: TreeNode) => {
        for (const c of n.children ?? []) {
          if (!state.expanded.has(c.topic)) continue;
          if (c.children_count > 0 && !c.children?.length) out.push(c);
          else walk(c);
        }
      };
      walk(root);
      return out;
    };
    filter.addEventListener("input", () => {
      state.filter = filter.value;
      drawTree();
    });
    const setZoom = (topic: string) => {
      zoom = topic;
      const q = topic ? `?root=${enc(topic)}` : "";
      history.replaceState(null, "", `#/mqtt/${enc(broker)}${q}`);
      refreshNow();
    };
    sun.chart.on("click", (p) => {
      const data = (p as unknown as { data?: { topic: string; node: { children_count: number } } }).data;
      if (!data) return;
      if (data.topic === zoom) {
        // The centre: one level up.
        const up = zoom.includes("/") ? zoom.slice(0, zoom.lastIndexOf("/")) : "";
        setZoom(up);
      } else if (data.node.children_count > 0) {
        setZoom(data.topic);
      }
    });

    const refresh = async () => {
      const brokers = await getJson<MqttBroker[]>("/api/v1/mqtt/brokers", signal);
      if (brokers.length === 0) {
        fill(cards, el("p", { class: "muted" }, "No MQTT broker configured."));
        return;
      }
      if (!brokers.some((b) => b.name === broker)) broker = brokers[0].name;
      const b = brokers.find((x) => x.name === broker)!;
      fill(
        tabs,
        ...brokers.map((x) => el("a", { href: `#/mqtt/${enc(x.name)}`, class: x.name === broker ? "active" : "" }, x.name)),
      );
      fill(
        cards,
        card("connection", badge(b.connection.state, b.connection.state === "connected" ? "ok" : "bad"), b.url),
        card("since", ago(b.connection.since_ms), `${b.connection.outages} outage(s)`),
        card("$SYS", b.sys_status, b.version ?? ""),
        card("topics", count(b.tree.topics), `of at most ${count(b.tree.max_topics)}`, "mqtt-topics"),
        card("messages", count(b.tree.messages), "seen by the watcher", "mqtt-messages"),
      );

      const range = rangeParams();
      const base = `/api/v1/mqtt/brokers/${enc(broker)}`;
      const [list, tree, sunTree] = await Promise.all([
        getJson<SeriesAnswer>(`/api/v1/series?match=${enc(selector({ broker }))}`, signal),
        getJson<TreeAnswer>(`${base}/tree?depth=${b.tree.nodes <= WHOLE_TREE_NODES ? TREE_DEPTH : 2}&limit=200`, signal),
        getJson<TreeAnswer>(`${base}/tree?root=${enc(zoom)}&depth=${SUN_DEPTH}&value=rate_1m`, signal).catch(() => {
          // The zoomed topic went away (folded or a restart): back to the top.
          zoom = "";
          return getJson<TreeAnswer>(`${base}/tree?depth=${SUN_DEPTH}&value=rate_1m`, signal);
        }),
      ]);
      // Fetch the expanded levels of a large tree, a few at a time, outermost first.
      for (let round = 0; round < 4; round++) {
        const todo = missing(tree.tree).slice(0, 20);
        if (todo.length === 0) break;
        const subs = await Promise.all(
          todo.map((n) => getJson<TreeAnswer>(`${base}/tree?root=${enc(n.topic)}&depth=2&limit=200`, signal).catch(() => null)),
        );
        todo.forEach((n, i) => {
          n.children = subs[i]?.tree.children ?? [];
        });
      }
      treeNote.textContent =
        b.tree.nodes <= WHOLE_TREE_NODES ? "" : `${count(b.tree.nodes)} nodes: levels load as you open them, and the filter searches the levels loaded.`;
      lastTree = tree;
      drawTree();
      const now = Date.now();
      const { byRate } = drawSunburst(sun.chart, sunTree.tree, now);
      fill(legend, sunburstLegend(byRate));
      const parts = zoom ? zoom.split("/") : [];
      fill(
        crumbs,
        ...[["all topics", ""], ...parts.map((p, i) => [p, parts.slice(0, i + 1).join("/")])].flatMap(([label, topic], i) => {
          const button = el("button", { type: "button", class: "crumb" }, label);
          button.addEventListener("click", () => setZoom(topic));
          return i === 0 ? [button] : [" / ", button];
        }),
      );

      const metrics = [...new Set(list.series.map((s) => s.metric))]
        .filter((m) => m.startsWith("pipescope_mqtt_broker_") && m !== "pipescope_mqtt_broker_info")
        .sort();
      sysNote.textContent = metrics.length
        ? "Counters are drawn as a rate per minute."
        : b.sys_status === "none"
          ? "This broker publishes no $SYS topics."
          : "No $SYS figures stored yet.";
      const answers = await Promise.all(
        metrics.map((m) => getJson<RangeAnswer>(`/api/v1/query?metric=${m}&match=${enc(selector({ broker }))}&${range}`, signal)),
      );
      metrics.forEach((m, i) => {
        let chart = charts.get(m);
        if (!chart) {
          const counter = m.endsWith("_total");
          const panel = chartPanel(`${sysTitle(m)}${counter ? " /min" : ""}`, signal, { "data-testid": `sys-${m}`, class: "chart small" });
          sysGrid.append(panel.panel);
          chart = panel;
          charts.set(m, panel);
        }
        const counter = m.endsWith("_total");
        drawLines(
          chart,
          answers[i].series.map((s) => ({ name: sysTitle(m), points: counter ? perMinute(s.points) : s.points })),
          counter ? "/min" : "",
          answers[i],
        );
      });
    };
    refreshNow = () => void refresh().catch(() => {});
    return refresh;
  },
};
