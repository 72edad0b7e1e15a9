// Observed flows ([flows.X], docs/completeness.md): every flow's hops and edges with what was
// lost, duplicated, late and how long records took; a page per flow with latency over time.

import { enc, getJson, selector, type ObservedFlow, type RangeAnswer } from "../api";
import { chartPanel, drawLines, linesOf } from "../charts";
import { el } from "../dom";
import { ago, count } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, card, fill, link, section, table } from "../ui";

type Quantiles = ObservedFlow["hops"][number]["figures"]["total"]["latency"]["all"];

function ms(v: number | null | undefined): string {
  return v === null || v === undefined ? "–" : `${count(v)} ms`;
}

/** A count that should be 0, marked when it is not. */
function bad(n: number): Node | string {
  return n > 0 ? badge(count(n), "bad") : count(n);
}

function hopsTable(f: ObservedFlow): HTMLElement {
  return table(
    ["hop", "reading", "records", "lost", "duplicated", "late", "out of order", "p50", "p99", "p99.9", "untraced"],
    f.hops.map((h) => {
      const c = h.figures.total.counters;
      const q: Quantiles = h.figures.total.latency["1m"];
      return [
        h.hop,
        h.reader.connected ? badge("yes", "ok") : badge(h.reader.last_error ?? "no", "warn"),
        count(c.records),
        bad(c.lost),
        bad(c.duplicated),
        count(c.late),
        count(c.out_of_order),
        ms(q.p50_ms),
        ms(q.p99_ms),
        ms(q.p999_ms),
        count(h.reader.untraced),
      ];
    }),
    { "data-testid": "flow-hops" },
  );
}

function edgesTable(f: ObservedFlow): HTMLElement {
  if (f.edges.length === 0) return el("p", { class: "muted" }, "One hop: no edges.");
  return table(
    ["edge", "matched", "lost", "duplicated", "late", "lost last min", "added p50", "added p99", "added p99.9"],
    f.edges.map((e) => {
      const t = e.figures.total;
      const added = t.added_latency["1m"];
      return [
        `${e.upstream} → ${e.downstream}`,
        count(t.counters.matched),
        bad(t.counters.lost),
        bad(t.counters.duplicated),
        count(t.counters.late),
        bad(t.windows.lost["1m"].count),
        ms(added.p50_ms),
        ms(added.p99_ms),
        ms(added.p999_ms),
      ];
    }),
    { "data-testid": "flow-edges" },
  );
}

export const flows: Page = {
  title: "Flows",
  nav: true,
  mount(root, { signal }) {
    const list = el("div");
    root.append(
      el("h1", {}, "Flows"),
      el("p", { class: "note" }, "Observed flows ([flows.<name>] in the configuration): the trace headers read at each hop, matched between hops."),
      list,
    );
    return async () => {
      const all = await getJson<ObservedFlow[]>("/api/v1/flows", signal);
      fill(
        list,
        all.length === 0
          ? el("p", { class: "muted" }, "No observed flows yet: configure [flows.<name>] (docs/completeness.md).")
          : table(
              ["flow", "hops", "records (first hop)", "lost", "duplicated", "updated"],
              all.map((f) => {
                const lost = f.edges.reduce((s, e) => s + e.figures.total.counters.lost, 0) + f.hops.reduce((s, h) => s + h.figures.total.counters.lost, 0);
                const dup = f.edges.reduce((s, e) => s + e.figures.total.counters.duplicated, 0) + f.hops.reduce((s, h) => s + h.figures.total.counters.duplicated, 0);
                return [
                  link(`#/flows/${enc(f.flow)}`, f.flow),
                  f.hops.map((h) => h.hop).join(" → "),
                  count(f.hops[0]?.figures.total.counters.records),
                  bad(lost),
                  bad(dup),
                  ago(f.updated_ms),
                ];
              }),
              { "data-testid": "flows" },
            ),
      );
    };
  },
};

export const flowDetail: Page = {
  title: "Flow",
  mount(root, { signal, params }) {
    const name = params.flow;
    const cards = el("section", { class: "cards" });
    const hops = el("div");
    const edges = el("div");
    const p99 = chartPanel("Latency from the origin, p99 per hop (s)", signal, { "data-testid": "chart-hop-p99" });
    const p50 = chartPanel("Latency from the origin, p50 per hop (s)", signal, { "data-testid": "chart-hop-p50" });
    root.append(
      el("p", { class: "crumbs" }, link("#/flows", "Flows"), " / ", name),
      el("h1", {}, name),
      cards,
      section("Hops", hops),
      section("Edges (between consecutive hops)", edges),
      el("div", { class: "grid2" }, p99.panel, p50.panel),
    );
    return async () => {
      const range = rangeParams();
      const query = (quantile: string) =>
        getJson<RangeAnswer>(
          `/api/v1/query?metric=pipescope_completeness_hop_latency_seconds&match=${enc(selector({ flow: name, quantile }))}&${range}`,
          signal,
        );
      const [f, a99, a50] = await Promise.all([
        getJson<ObservedFlow>(`/api/v1/flows/${enc(name)}`, signal),
        query("0.99"),
        query("0.5"),
      ]);
      const lostOnEdges = f.edges.reduce((s, e) => s + e.figures.total.counters.lost, 0);
      const dupOnEdges = f.edges.reduce((s, e) => s + e.figures.total.counters.duplicated, 0);
      fill(
        cards,
        card("hops", f.hops.length, f.hops.every((h) => h.reader.connected) ? "all reading" : "not all reading"),
        card("lost between hops", bad(lostOnEdges), "since the monitor started", "flow-lost"),
        card("duplicated between hops", bad(dupOnEdges), "since the monitor started"),
        card("updated", ago(f.updated_ms), ""),
      );
      fill(hops, hopsTable(f));
      fill(edges, edgesTable(f));
      const lineName = (l: Record<string, string>) => `${l.hop} (${l.kind})`;
      drawLines(p99, linesOf(a99, lineName), "s", a99);
      drawLines(p50, linesOf(a50, lineName), "s", a50);
    };
  },
};
