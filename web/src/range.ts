// The time-range picker: a preset span ending now (the charts follow the clock) or a fixed
// from–to over the stored history. Its choice drives every /api/v1/query the pages make.

import { el } from "./dom";

const KEY = "pipescope-range";
const PRESETS: [string, number][] = [
  ["5 min", 5 * 60_000],
  ["15 min", 15 * 60_000],
  ["1 h", 3_600_000],
  ["6 h", 6 * 3_600_000],
  ["24 h", 24 * 3_600_000],
  ["7 d", 7 * 24 * 3_600_000],
];

interface Choice {
  span: number;
  /** Fixed range when set; otherwise the span ends now. */
  from?: number;
  to?: number;
}

let choice: Choice = load();

function load(): Choice {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) ?? "") as Choice;
    if (typeof saved.span === "number") return saved;
  } catch {
    // nothing saved
  }
  return { span: 15 * 60_000 };
}

function save(next: Choice): void {
  choice = next;
  sessionStorage.setItem(KEY, JSON.stringify(next));
  window.dispatchEvent(new Event("pipescope-range"));
}

export interface Range {
  from: number;
  to: number;
  step: number;
  live: boolean;
}

/** The range to query now, with a step that gives about 240 points (at least 5 s). */
export function currentRange(now = Date.now()): Range {
  const live = choice.from === undefined || choice.to === undefined;
  const to = live ? now : choice.to!;
  const from = live ? now - choice.span : choice.from!;
  const step = niceStep(Math.max(5_000, (to - from) / 240));
  return { from, to, step, live };
}

function niceStep(ms: number): number {
  const steps = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400].map((s) => s * 1000);
  return steps.find((s) => s >= ms) ?? Math.ceil(ms / 86_400_000) * 86_400_000;
}

/** Query parameters for /api/v1/query. */
export function rangeParams(r: Range = currentRange()): string {
  return `from=${Math.floor(r.from)}&to=${Math.floor(r.to)}&step=${r.step}`;
}

function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function rangePicker(): HTMLElement {
  const select = el("select", { "aria-label": "time range", "data-testid": "range" });
  for (const [label, span] of PRESETS) {
    select.append(el("option", { value: String(span) }, `last ${label}`));
  }
  select.append(el("option", { value: "custom" }, "from – to…"));
  const from = el("input", { type: "datetime-local", "aria-label": "from" });
  const to = el("input", { type: "datetime-local", "aria-label": "to" });
  const apply = el("button", { type: "button" }, "Show");
  const custom = el("span", { class: "custom-range" }, from, "–", to, apply);
  const sync = () => {
    const isCustom = choice.from !== undefined;
    select.value = isCustom ? "custom" : String(choice.span);
    custom.hidden = !isCustom;
    const r = currentRange();
    from.value = localInput(r.from);
    to.value = localInput(r.to);
  };
  select.addEventListener("change", () => {
    if (select.value === "custom") {
      const r = currentRange();
      custom.hidden = false;
      from.value = localInput(r.from);
      to.value = localInput(r.to);
      return;
    }
    save({ span: Number(select.value) });
    sync();
  });
  apply.addEventListener("click", () => {
    const f = new Date(from.value).getTime();
    const t = new Date(to.value).getTime();
    if (!Number.isFinite(f) || !Number.isFinite(t) || f >= t) {
      apply.setCustomValidity("from must be before to");
      apply.reportValidity();
      return;
    }
    save({ span: t - f, from: f, to: t });
  });
  sync();
  return el("span", { class: "range" }, select, custom);
}
