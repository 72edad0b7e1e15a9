// The MQTT topic tree as a zoomable sunburst: sectors sized by messages/min (by message count
// when the whole subtree is idle), coloured by seconds since the last message. Clicking a
// sector zooms into it; clicking the centre goes one level up.

import type { TreeNode } from "../api";
import { cssVar, tooltipStyle, type Chart } from "../charts";
import { el } from "../dom";
import { ago, count, duration, windowRate, windowValue } from "../format";

/** Green when fresh, through amber, to red when silent for ten minutes or more. */
export function freshnessColor(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return cssVar("--muted");
  const t = Math.min(1, Math.log10(1 + Math.max(0, seconds)) / Math.log10(601));
  const hue = Math.round(140 * (1 - t));
  const dark = document.documentElement.dataset.theme === "dark";
  return `hsl(${hue} ${dark ? 55 : 60}% ${dark ? 45 : 42}%)`;
}

interface SunNode {
  name: string;
  value: number;
  topic: string;
  node: TreeNode;
  itemStyle: { color: string; borderColor: string };
  children?: SunNode[];
}

function toSun(n: TreeNode, byRate: boolean, border: string): SunNode {
  const children = (n.children ?? []).map((c) => toSun(c, byRate, border));
  return {
    name: n.name === "" ? "all topics" : n.name,
    value: byRate ? windowValue(n.rates["1m"]) : n.messages,
    topic: n.topic,
    node: n,
    itemStyle: { color: freshnessColor(n.seconds_since_last), borderColor: border },
    ...(children.length ? { children } : {}),
  };
}

function depthOf(n: TreeNode): number {
  return 1 + Math.max(0, ...(n.children ?? []).map(depthOf));
}

/** The centre disc for the zoomed node, then equal rings out to the edge. */
function levels(depth: number): object[] {
  const centre = 18;
  const outer = 95;
  const ring = (outer - centre) / Math.max(1, depth - 1);
  const out: object[] = [{}, { r0: "0%", r: `${centre}%`, label: { rotate: 0 } }];
  for (let d = 1; d < depth; d++) {
    out.push({ r0: `${centre + (d - 1) * ring}%`, r: `${centre + d * ring}%` });
  }
  return out;
}

export function drawSunburst(chart: Chart, root: TreeNode, now: number): { byRate: boolean } {
  const byRate = windowValue(root.rates["1m"]) > 0;
  chart.setOption(
    {
      animation: false,
      tooltip: {
        ...tooltipStyle(),
        formatter: (p: unknown) => {
          const n = (p as { data: SunNode }).data.node;
          return el(
            "div",
            { class: "tip" },
            el("div", { class: "tip-title" }, n.topic === "" ? "all topics" : n.topic),
            el("div", {}, `last minute: ${windowRate(n.rates["1m"])} · ${count(n.messages)} messages · ${count(n.topics)} topic(s)`),
            el("div", {}, `last message ${ago(n.last_seen_ms, now)}`),
          );
        },
      },
      series: [
        {
          type: "sunburst",
          nodeClick: false,
          sort: undefined,
          radius: ["0%", "95%"],
          data: [toSun(root, byRate, cssVar("--card"))],
          label: { rotate: "radial", minAngle: 4, color: "#fff", textBorderColor: "rgba(0,0,0,0.45)", textBorderWidth: 2 },
          levels: levels(depthOf(root)),
          emphasis: { focus: "ancestor" },
        },
      ],
    },
    { notMerge: true },
  );
  return { byRate };
}

export function sunburstLegend(byRate: boolean): HTMLElement {
  const stops = [0, 10, 60, 600].map((s) =>
    el("span", { class: "legend-stop" }, el("span", { class: "dot", style: `background:${freshnessColor(s)}` }), s === 0 ? "now" : `${duration(s)} silent`),
  );
  return el(
    "p",
    { class: "note" },
    byRate ? "Size: messages in the last minute. " : "Size: messages received (nothing in the last minute). ",
    "Colour: time since the last message — ",
    ...stops,
  );
}
