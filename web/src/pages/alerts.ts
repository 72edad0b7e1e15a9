// Alerts the monitor evaluates itself ([alerts.rules.X], docs/alerts.md): firing, pending and
// recently resolved alerts with their labels and summaries, the rules, and the health of what
// the monitor watches (/ready's sources, the watched pipeline parts).

import { getJson } from "../api";
import type { components } from "../api-types";
import { el } from "../dom";
import { ago, count } from "../format";
import type { Page } from "../router";
import { badge, card, fill, section, table } from "../ui";

type Schemas = components["schemas"];
type AlertsView = Schemas["AlertsView"];
type AlertInstance = Schemas["AlertInstance"];
type Ready = Schemas["Ready"];
type PartStatus = Schemas["PartStatus"];

const STATE_KIND: Record<string, string> = { firing: "bad", pending: "warn", resolved: "ok" };

/** Labels other than the rule's name and severity, as `key=value` (text, never markup). */
function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .filter(([k]) => k !== "alertname" && k !== "severity")
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

function alertsTable(alerts: AlertInstance[], testid: string): HTMLElement {
  if (alerts.length === 0) return el("p", { class: "muted" }, "None.");
  return table(
    ["state", "rule", "severity", "labels", "summary", "value", "since"],
    alerts.map((a) => {
      const labels = a.labels as unknown as Record<string, string>;
      return [
        badge(a.state, STATE_KIND[a.state]),
        a.rule,
        labels.severity ?? "–",
        labelText(labels),
        a.annotations.summary ?? "",
        a.value === null || a.value === undefined ? "–" : count(Math.round(a.value * 100) / 100),
        ago(a.state === "resolved" ? (a.resolved_at_ms ?? a.since_ms) : a.active_since_ms),
      ];
    }),
    { "data-testid": testid },
  );
}

/** The alerts whose labels include every one of `labels` (a group's, a topic's). */
export async function alertsMatching(signal: AbortSignal, labels: Record<string, string>): Promise<AlertInstance[]> {
  const view = await getJson<AlertsView>("/api/v1/alerts", signal);
  return view.alerts.filter((a) => {
    const own = a.labels as unknown as Record<string, string>;
    return Object.entries(labels).every(([k, v]) => own[k] === v);
  });
}

/** A card with the firing and pending alerts of one group or topic, linking to the Alerts page. */
export function alertStateCard(matching: AlertInstance[], testid: string): HTMLElement {
  const firing = matching.filter((a) => a.state === "firing");
  const pending = matching.filter((a) => a.state === "pending");
  const value = firing.length > 0 ? badge(`${firing.length} firing`, "bad") : pending.length > 0 ? badge(`${pending.length} pending`, "warn") : badge("none", "ok");
  const rules = [...firing, ...pending].map((a) => a.rule).join(", ");
  return card("alerts", value, el("a", { href: "#/alerts" }, rules || "no rule holds"), testid);
}

/** The alerts' counts by state, for the overview. */
export async function alertCounts(signal: AbortSignal): Promise<Record<string, number>> {
  const view = await getJson<AlertsView>("/api/v1/alerts", signal);
  const counts: Record<string, number> = { firing: 0, pending: 0, resolved: 0 };
  for (const a of view.alerts) counts[a.state] += 1;
  return counts;
}

export const alerts: Page = {
  title: "Alerts",
  nav: true,
  mount(root, { signal }) {
    const cards = el("section", { class: "cards" });
    const firing = el("div");
    const pending = el("div");
    const resolved = el("div");
    const rules = el("div");
    const sources = el("div");
    const parts = el("div");
    root.append(
      el("h1", {}, "Alerts"),
      el("p", { class: "note" }, "Rules the monitor evaluates itself ([alerts.rules.<name>], docs/alerts.md); notifications go to the configured receivers."),
      cards,
      section("Firing", firing),
      section("Pending", pending),
      section("Resolved recently", resolved),
      section("Rules", rules),
      section("Sources (/ready)", sources),
      section("Watched parts", parts),
    );
    return async () => {
      const [view, ready, watched] = await Promise.all([
        getJson<AlertsView>("/api/v1/alerts", signal),
        getJson<Ready>("/ready", signal, [503]),
        getJson<PartStatus[]>("/api/v1/parts", signal),
      ]);
      const by = (state: string) => view.alerts.filter((a) => a.state === state);
      const dropped = Object.values(view.dropped).reduce((a, b) => a + b, 0);
      fill(
        cards,
        card("firing", by("firing").length > 0 ? badge(count(by("firing").length), "bad") : "0", "", "alerts-firing"),
        card("pending", count(by("pending").length), "holding for less than their rule's for"),
        card("rules", count(view.rules.length), `evaluated every ${view.evaluate_every_s} s${view.evaluated_at_ms ? `, last ${ago(view.evaluated_at_ms)}` : ""}`),
        card("ready", ready.ready ? badge("yes", "ok") : badge("no", "warn"), ready.waiting_for.join(", ") || "every source reached"),
        ...(dropped > 0 ? [card("dropped", badge(count(dropped), "warn"), "alerts over a rule's cap")] : []),
      );
      fill(firing, alertsTable(by("firing"), "alerts-firing-table"));
      fill(pending, alertsTable(by("pending"), "alerts-pending-table"));
      fill(resolved, alertsTable(by("resolved"), "alerts-resolved-table"));
      fill(
        rules,
        view.rules.length === 0
          ? el("p", { class: "muted" }, "No rules configured: add [alerts.rules.<name>] (docs/alerts.md).")
          : table(
              ["rule", "kind", "severity", "for"],
              view.rules.map((r) => [r.name, r.kind, r.severity, `${r.for_s} s`]),
              { "data-testid": "alert-rules" },
            ),
      );
      fill(
        sources,
        table(
          ["kind", "name", "state", "since", "last error"],
          ready.sources.map((s) => [
            s.kind,
            s.name,
            badge(s.state.replace("_", " "), s.state === "up" ? "ok" : "warn"),
            ago(s.since_ms),
            s.last_error ?? "",
          ]),
          { "data-testid": "ready-sources" },
        ),
      );
      fill(
        parts,
        watched.length === 0
          ? el("p", { class: "muted" }, "No parts watched: add [watched_parts.<name>] url = \"http://host:port\" (docs/operations.md).")
          : table(
              ["part", "address", "up", "healthy", "since", "last seen", "error"],
              watched.map((p) => [
                p.name,
                p.url,
                p.up ? badge("up", "ok") : badge("down", "bad"),
                p.healthy ? badge("healthy", "ok") : badge("unhealthy", "bad"),
                ago(p.since_ms),
                p.last_seen_ms ? ago(p.last_seen_ms) : "never",
                p.last_error ?? "",
              ]),
              { "data-testid": "watched-parts" },
            ),
      );
    };
  },
};
