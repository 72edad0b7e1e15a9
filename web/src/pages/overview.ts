import { getJson, type Health } from "../api";
import { el } from "../dom";
import { duration } from "../format";
import type { Page } from "../router";

export const overview: Page = {
  title: "Overview",
  async render(root, signal) {
    const health = await getJson<Health>("/health", signal);
    root.append(
      el("h1", {}, "Overview"),
      el(
        "section",
        { class: "cards" },
        card("pipescope", health.version, "version"),
        card("status", health.status, "health"),
        card("uptime", duration(health.uptime_s), "since start"),
      ),
    );
  },
};

function card(label: string, value: string, note: string): HTMLElement {
  return el(
    "div",
    { class: "card" },
    el("div", { class: "label" }, label),
    el("div", { class: "value", "data-testid": `card-${label}` }, value),
    el("div", { class: "note" }, note),
  );
}
