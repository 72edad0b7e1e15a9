// Shared chart helpers. Charts draw with ECharts' SVG renderer: labels are SVG text nodes (set
// as text, never parsed as markup) and tests can read them. Tooltips are built with the text-only
// DOM helpers, so series names from brokers never reach innerHTML.

import * as echarts from "echarts/core";
import { GraphChart, LineChart, SunburstChart } from "echarts/charts";
import { DataZoomComponent, GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { SVGRenderer } from "echarts/renderers";
import type { RangeAnswer } from "./api";
import { el } from "./dom";
import { count } from "./format";

echarts.use([LineChart, SunburstChart, GraphChart, GridComponent, TooltipComponent, LegendComponent, DataZoomComponent, SVGRenderer]);

export type Chart = echarts.ECharts;
export type Points = [number, number | null][];
export interface Line {
  name: string;
  points: Points;
}

export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** A chart in a titled panel; disposed when `signal` aborts. */
export function chartPanel(
  title: string,
  signal: AbortSignal,
  attrs: Record<string, string> = {},
): { panel: HTMLElement; chart: Chart; note: HTMLElement; box: HTMLElement } {
  const box = el("div", { class: "chart", ...attrs });
  const note = el("p", { class: "note" });
  const panel = el("section", { class: "panel" }, el("h2", {}, title), note, box);
  const chart = echarts.init(box, undefined, { renderer: "svg" });
  const observer = new ResizeObserver(() => chart.resize());
  observer.observe(box);
  signal.addEventListener("abort", () => {
    observer.disconnect();
    chart.dispose();
  });
  return { panel, chart, note, box };
}

/** Text colours for the current theme. */
export function themeText(): { color: string } {
  return { color: cssVar("--fg") };
}

function tooltipBox(title: string, rows: [string, string, string?][]): HTMLElement {
  return el(
    "div",
    { class: "tip" },
    el("div", { class: "tip-title" }, title),
    ...rows.map(([name, value, color]) =>
      el(
        "div",
        { class: "tip-row" },
        el("span", { class: "dot", style: `background:${color ?? "transparent"}` }),
        el("span", { class: "tip-name" }, name),
        el("b", {}, value),
      ),
    ),
  );
}

export function tooltipStyle() {
  return {
    backgroundColor: cssVar("--card"),
    borderColor: cssVar("--border"),
    textStyle: { color: cssVar("--fg") },
    confine: true,
  };
}

export interface ChartPanel {
  chart: Chart;
  note: HTMLElement;
}

/** Draws lines over time; `unit` is appended to values in the tooltip. The panel's note says
 *  when the time range holds no stored points. */
export function drawLines(panel: ChartPanel, lines: Line[], unit: string, span?: { from: number; to: number }): void {
  const chart = panel.chart;
  panel.note.textContent = hasData(lines) ? "" : "No stored points in this time range yet.";
  const fg = cssVar("--fg");
  const muted = cssVar("--muted");
  const grid = cssVar("--border");
  chart.setOption(
    {
      animation: false,
      grid: { left: 8, right: 16, top: lines.length > 1 ? 48 : 16, bottom: 8, containLabel: true },
      legend: {
        show: lines.length > 1,
        type: "scroll",
        top: 0,
        textStyle: { color: fg },
        pageTextStyle: { color: fg },
      },
      tooltip: {
        trigger: "axis",
        ...tooltipStyle(),
        formatter: (params: unknown) => {
          const list = (Array.isArray(params) ? params : [params]) as {
            seriesName: string;
            value: [number, number | null];
            color: string;
          }[];
          const at = list[0] ? new Date(list[0].value[0]).toLocaleTimeString() : "";
          return tooltipBox(
            at,
            list.map((p) => [p.seriesName, p.value[1] === null ? "–" : `${count(p.value[1])} ${unit}`, p.color]),
          );
        },
      },
      xAxis: {
        type: "time",
        min: span?.from,
        max: span?.to,
        axisLabel: { color: muted, hideOverlap: true },
        axisLine: { lineStyle: { color: grid } },
      },
      yAxis: {
        type: "value",
        axisLabel: { color: muted },
        splitLine: { lineStyle: { color: grid } },
      },
      series: lines.map((l) => ({
        name: l.name,
        type: "line",
        showSymbol: false,
        connectNulls: true,
        data: l.points,
      })),
    },
    { notMerge: true },
  );
}

/** One line per series of a query answer, named by `nameOf(labels)`. */
export function linesOf(answer: RangeAnswer, nameOf: (labels: Record<string, string>) => string): Line[] {
  return answer.series
    .map((s) => ({ name: nameOf(s.labels), points: s.points }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Sums the series of a query answer that share `nameOf(labels)`, point by point in time. */
export function sumBy(answer: RangeAnswer, nameOf: (labels: Record<string, string>) => string): Line[] {
  return combineBy(answer, nameOf, (a, b) => a + b);
}

/** Like sumBy, with the largest value instead of the sum. */
export function maxBy(answer: RangeAnswer, nameOf: (labels: Record<string, string>) => string): Line[] {
  return combineBy(answer, nameOf, Math.max);
}

function combineBy(
  answer: RangeAnswer,
  nameOf: (labels: Record<string, string>) => string,
  combine: (a: number, b: number) => number,
): Line[] {
  const groups = new Map<string, Map<number, number>>();
  for (const s of answer.series) {
    const name = nameOf(s.labels);
    const sums = groups.get(name) ?? new Map<number, number>();
    groups.set(name, sums);
    for (const [t, v] of s.points) {
      if (v === null || !Number.isFinite(v)) continue;
      const had = sums.get(t);
      sums.set(t, had === undefined ? v : combine(had, v));
    }
  }
  return [...groups.entries()]
    .map(([name, sums]) => ({
      name,
      points: [...sums.entries()].sort((a, b) => a[0] - b[0]) as Points,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Per-minute rate of a counter, from consecutive points (a counter reset gives no point). */
export function perMinute(points: Points): Points {
  const out: Points = [];
  for (let i = 1; i < points.length; i++) {
    const [t0, v0] = points[i - 1];
    const [t1, v1] = points[i];
    if (v0 === null || v1 === null || t1 <= t0 || v1 < v0) continue;
    out.push([t1, ((v1 - v0) * 60_000) / (t1 - t0)]);
  }
  return out;
}

export function hasData(lines: Line[]): boolean {
  return lines.some((l) => l.points.some((p) => p[1] !== null));
}
