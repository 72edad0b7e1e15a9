// Small building blocks shared by the pages: cards, tables, verdict badges, notes.

import { el } from "./dom";

type Cell = Node | string | number | null | undefined;

export function card(label: string, value: Cell, note: Cell = "", testid?: string): HTMLElement {
  return el(
    "div",
    { class: "card" },
    el("div", { class: "label" }, label),
    el("div", { class: "value", ...(testid ? { "data-testid": testid } : {}) }, value ?? "–"),
    el("div", { class: "note" }, note ?? ""),
  );
}

export function table(headers: string[], rows: Cell[][], attrs: Record<string, string> = {}): HTMLElement {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { class: "responsive", ...attrs },
      el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c, i) => el("td", { "data-label": headers[i] ?? "" }, c ?? "–"))))),
    ),
  );
}

const VERDICT_CLASS: Record<string, string> = {
  OK: "ok",
  WARN: "warn",
  STALLED: "bad",
  STOPPED: "bad",
  REWOUND: "warn",
  LOST: "bad",
};

export function verdictColor(verdict: string | null | undefined): string {
  const cls = VERDICT_CLASS[verdict ?? ""] ?? "muted";
  const names: Record<string, string> = { ok: "--ok", warn: "--warn", bad: "--bad", muted: "--muted" };
  return getComputedStyle(document.documentElement).getPropertyValue(names[cls]).trim();
}

export function badge(text: string | null | undefined, kind?: string): HTMLElement {
  const cls = kind ?? VERDICT_CLASS[text ?? ""] ?? "muted";
  return el("span", { class: `badge ${cls}` }, text ?? "–");
}

/** A visible note that part of the page cannot be shown, and why. */
export function unavailable(what: string, why: string): HTMLElement {
  return el("p", { class: "unavailable", role: "note" }, `${what} not available: ${why}`);
}

export function link(href: string, text: string, attrs: Record<string, string> = {}): HTMLElement {
  return el("a", { href, ...attrs }, text);
}

export function section(title: string, ...children: (Node | null)[]): HTMLElement {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}

/** Replaces the children of `node`. */
export function fill(node: HTMLElement, ...children: (Node | string | null)[]): void {
  node.replaceChildren(...children.filter((c): c is Node | string => c !== null));
}
