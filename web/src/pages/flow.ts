// The pipeline as a graph: producers → topics → consumer groups (→ the topics they write), and
// the observed flows' origins and MQTT subtrees. Columns follow the edges; edge width grows with
// the rate, groups take their verdict's colour; an observed flow's edge is labelled with its loss
// and latency, red while it loses records.
// Without /api/v1/flow on the server, topics → groups are drawn from the Kafka API alone.

import { enc, getJson, getOptional, type ClusterSummary, type Flow, type FlowEdge, type FlowNode, type GroupDetail, type GroupPage, type TopicPage } from "../api";
import { chartPanel, cssVar, tooltipStyle } from "../charts";
import { el } from "../dom";
import { count, rate, windowRate } from "../format";
import type { Page } from "../router";
import { fill, unavailable, verdictColor } from "../ui";

async function flowFromKafka(signal: AbortSignal): Promise<Flow> {
  const clusters = await getJson<ClusterSummary[]>("/api/v1/kafka/clusters", signal);
  const flow: Flow = { nodes: [], edges: [] };
  for (const c of clusters) {
    const base = `/api/v1/kafka/clusters/${enc(c.name)}`;
    // The busiest topics and the worst groups: a graph of thousands would not read.
    const [topicPage, groupPage] = await Promise.all([
      getJson<TopicPage>(`${base}/topics?sort=rate&order=desc&limit=200`, signal),
      getJson<GroupPage>(`${base}/groups?sort=verdict&order=desc&limit=100`, signal),
    ]);
    const [topics, groups] = [topicPage.items, groupPage.items];
    const rates = new Map(topics.map((t) => [t.name, t.rates?.["1m"].per_minute ?? null]));
    for (const t of topics) {
      flow.nodes.push({ id: `${c.name}/topic/${t.name}`, kind: "topic", label: t.name, cluster: c.name, rate_per_min: t.rates?.["1m"].per_minute ?? null, last_minute: t.rates?.["1m"] ?? null, verdict: null });
    }
    const details = await Promise.all(groups.slice(0, 100).map((g) => getJson<GroupDetail>(`${base}/groups/${enc(g.name)}`, signal).catch(() => null)));
    groups.slice(0, 100).forEach((g, i) => {
      const id = `${c.name}/group/${g.name}`;
      flow.nodes.push({ id, kind: "group", label: g.name, cluster: c.name, rate_per_min: null, last_minute: null, verdict: g.verdict });
      for (const t of details[i]?.topics ?? []) {
        flow.edges.push({ source: `${c.name}/topic/${t.topic}`, target: id, rate_per_min: rates.get(t.topic) ?? null, alarm: false });
      }
    });
  }
  return flow;
}

/** Column of each node: producers first, then one step right per edge followed. */
function columns(flow: Flow): Map<string, number> {
  const col = new Map<string, number>();
  const start: Record<string, number> = { origin: 0, producer: 0, mqtt_subtree: 1, topic: 1, group: 2 };
  for (const n of flow.nodes) col.set(n.id, start[n.kind] ?? 2);
  // Relax along edges a few times (graphs are small and may contain cycles).
  for (let round = 0; round < 6; round++) {
    for (const e of flow.edges) {
      const s = col.get(e.source);
      const t = col.get(e.target);
      if (s !== undefined && t !== undefined && t <= s && t < 8) col.set(e.target, s + 1);
    }
  }
  return col;
}

const KIND_SYMBOL: Record<string, string> = { producer: "triangle", origin: "triangle", topic: "roundRect", mqtt_subtree: "diamond", group: "circle" };

/** An observed flow's edge label: rate, lost, duplicated, p99 latency over the last minute. */
export function edgeLabel(e: FlowEdge): string {
  if (!e.flow) return "";
  const parts = [rate(e.rate_per_min), `lost ${count(e.lost)}`, `dup ${count(e.duplicated)}`];
  if (e.p99_latency_ms !== null && e.p99_latency_ms !== undefined) parts.push(`p99 ${count(e.p99_latency_ms)} ms`);
  return parts.join(" · ");
}

export const flow: Page = {
  title: "Flow",
  nav: true,
  mount(root, { signal }) {
    const note = el("div");
    const graph = chartPanel("Producers → topics → consumer groups, and observed flows", signal, { "data-testid": "flow-graph", class: "chart tall" });
    root.append(
      el("h1", {}, "Flow"),
      note,
      graph.panel,
      el(
        "p",
        { class: "note" },
        "Edge width: messages/min. Groups are coloured by verdict: green OK, amber WARN or REWOUND, red STALLED, STOPPED or LOST. Observed flows (",
        el("a", { href: "#/flows" }, "Flows"),
        "): ▲ origin kinds from the traces, ◆ MQTT subtrees; their edges say rate, lost, duplicated and p99 latency over the last minute, red where records were lost.",
      ),
    );

    return async () => {
      let data = await getOptional<Flow>("/api/v1/flow", signal);
      if (data) {
        fill(note);
      } else {
        fill(note, unavailable("The full flow (producers, output topics)", "this server has no /api/v1/flow; topics → groups below come from the Kafka API"));
        data = await flowFromKafka(signal);
      }
      const col = columns(data);
      const perCol = new Map<number, FlowNode[]>();
      for (const n of data.nodes) {
        const c = col.get(n.id) ?? 1;
        perCol.set(c, [...(perCol.get(c) ?? []), n]);
      }
      // Room for every node of the tallest column, so labels do not overlap.
      const tallest = Math.max(1, ...[...perCol.values()].map((l) => l.length));
      const maxRate = Math.max(1, ...data.edges.map((e) => e.rate_per_min ?? 0));
      const fg = cssVar("--fg");
      // Positions in pixels of the chart box, pinned by two invisible corner nodes, so the
      // graph is not stretched to fit (ECharts scales the nodes' bounding box to the view).
      const width = Math.max(320, graph.box.clientWidth);
      // On a narrow screen the columns become rows (sources on top), so names have room.
      const narrow = width < 600;
      const rowGap = 110;
      const height = narrow
        ? Math.max(280, (Math.max(...col.values()) - Math.min(...col.values()) + 1) * rowGap + 40)
        : Math.max(280, Math.min(2000, tallest * 56 + 60));
      const lastCol = Math.max(1, ...col.values());
      const firstCol = Math.min(...col.values());
      const left = 110;
      const right = width < 600 ? 90 : 190;
      const xOf = (c: number) => left + ((c - firstCol) / Math.max(1, lastCol - firstCol)) * (width - left - right);
      const place = (c: number, i: number, count: number): [number, number] =>
        narrow
          ? [10 + ((i + 0.5) * (width - 20)) / count, 40 + (c - firstCol) * rowGap]
          : [xOf(c), height / 2 + (i - (count - 1) / 2) * 56];
      // On a narrow screen neighbours put their names below and above in turn, so each name has
      // two slots' width.
      const labelWidth = (count: number) =>
        narrow ? Math.max(60, (count > 1 ? 2 : 1) * ((width - 20) / count) - 8) : right - 10;
      const nodes: Record<string, unknown>[] = [...perCol.entries()].flatMap(([c, list]) =>
        list
          .sort((a, b) => a.label.localeCompare(b.label))
          .map((n, i) => ({
            id: n.id,
            name: n.label,
            x: place(c, i, list.length)[0],
            y: place(c, i, list.length)[1],
            symbol: KIND_SYMBOL[n.kind] ?? "circle",
            symbolSize: n.kind === "topic" ? [22, 16] : 20,
            itemStyle: {
              color: n.kind === "group" ? verdictColor(n.verdict) : n.kind === "topic" || n.kind === "mqtt_subtree" ? cssVar("--accent") : cssVar("--muted"),
            },
            label: {
              show: true,
              position: narrow ? (i % 2 === 0 ? "bottom" : "top") : n.kind === "producer" || n.kind === "origin" ? "top" : "right",
              color: fg,
              width: labelWidth(list.length),
              overflow: "truncate",
            },
            node: n,
          })),
      );
      for (const [id, x, y] of [["__corner0", 0, 0], ["__corner1", width, height]] as const) {
        nodes.push({ id, name: "", x, y, symbolSize: 0, label: { show: false }, tooltip: { show: false }, silent: true });
      }
      const ids = new Set(nodes.map((n) => n.id as string));
      const edges = data.edges
        .filter((e) => ids.has(e.source) && ids.has(e.target))
        .map((e) => ({
          source: e.source,
          target: e.target,
          rate: e.rate_per_min,
          edge: e,
          lineStyle: {
            width: 1 + 9 * Math.sqrt((e.rate_per_min ?? 0) / maxRate),
            color: e.alarm ? cssVar("--bad") : cssVar("--muted"),
            opacity: e.alarm ? 0.95 : 0.7,
            curveness: 0,
          },
          // On a narrow screen the labels would cover the graph: the tooltip has them.
          label: { show: Boolean(e.flow) && !narrow, formatter: edgeLabel(e), color: e.alarm ? cssVar("--bad") : fg, fontSize: 11 },
        }));
      graph.chart.setOption(
        {
          animation: false,
          tooltip: {
            ...tooltipStyle(),
            formatter: (p: unknown) => {
              const item = p as { dataType: string; data: { node?: FlowNode; source?: string; target?: string; rate?: number | null; edge?: FlowEdge } };
              if (item.dataType === "edge") {
                const e = item.data.edge;
                return el(
                  "div",
                  { class: "tip" },
                  el("div", {}, `${item.data.source} → ${item.data.target}`),
                  el("b", {}, rate(item.data.rate)),
                  e?.flow ? el("div", {}, `flow ${e.flow}, last minute: ${edgeLabel(e)}`) : null,
                  e?.alarm ? el("div", {}, "records lost") : null,
                );
              }
              const n = item.data.node;
              if (!n) return "";
              return el(
                "div",
                { class: "tip" },
                el("div", { class: "tip-title" }, n.label),
                el("div", {}, n.kind === "origin" ? `origin kind in flow ${n.cluster}` : `${n.kind.replace("_", " ")} in ${n.cluster}`),
                n.last_minute ? el("div", {}, `last minute: ${windowRate(n.last_minute)}`) : null,
                n.verdict ? el("div", {}, `verdict ${n.verdict}`) : null,
              );
            },
          },
          series: [
            {
              type: "graph",
              layout: "none",
              roam: true,
              data: nodes,
              links: edges,
              edgeSymbol: ["none", "arrow"],
              edgeSymbolSize: 8,
              label: { fontSize: 12 },
              left: 0,
              right: 0,
              top: 0,
              bottom: 0,
            },
          ],
        },
        { notMerge: true },
      );
      graph.box.style.height = `${height}px`;
      graph.chart.resize();
      graph.note.textContent = nodes.length > 2 ? "" : "Nothing to draw yet: no topics or groups seen.";
    };
  },
};
