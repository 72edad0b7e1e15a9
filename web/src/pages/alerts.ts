// Alerts the monitor evaluates itself ([alerts.rules.X], docs/alerts.md): firing, pending and
// recently resolved alerts with their labels and summaries, the silences (added and expired
// here), the rules, and the health of what the monitor watches (/ready's sources, the watched
// pipeline parts).

import { getJson, sendJson } from "../api";
import type { components } from "../api-types";
import { el } from "../dom";
import { ago, count } from "../format";
import type { Page } from "../router";
import { badge, card, fill, section, table } from "../ui";

type Schemas = components["schemas"];
type AlertsView = Schemas["AlertsView"];
type AlertInstance = Schemas["AlertView"];
type SilencesView = Schemas["SilencesView"];
type SilenceView = Schemas["SilenceView"];
type SilenceMatcher = Schemas["SilenceMatcher"];
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

/** `alertname=lag, group=~pay.*` → matchers; `=~` makes a regex matcher. */
export function parseMatchers(text: string): SilenceMatcher[] {
  return text
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const regex = part.includes("=~");
      const [name, ...rest] = part.split(regex ? "=~" : "=");
      return { name: name.trim(), value: rest.join(regex ? "=~" : "=").trim(), is_regex: regex };
    });
}

function matcherText(matchers: SilenceMatcher[]): string {
  return matchers.map((m) => `${m.name}${m.is_regex ? "=~" : "="}${m.value}`).join(", ");
}

/** An alert's labels as the matchers of a silence for it alone. */
function matchersFor(alert: AlertInstance): string {
  const labels = alert.labels as unknown as Record<string, string>;
  return Object.entries(labels)
    .filter(([k]) => k !== "severity")
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

function alertsTable(alerts: AlertInstance[], testid: string, silence?: (a: AlertInstance) => void): HTMLElement {
  if (alerts.length === 0) return el("p", { class: "muted" }, "None.");
  return table(
    ["state", "rule", "severity", "labels", "summary", "value", "since", ...(silence ? ["silence"] : [])],
    alerts.map((a) => {
      const labels = a.labels as unknown as Record<string, string>;
      const silenced = a.silenced_by.length > 0;
      let action: HTMLElement | null = null;
      if (silence) {
        if (silenced) {
          action = badge("silenced", "warn");
        } else {
          action = el("button", { type: "button", "data-testid": "silence-alert" }, "silence…");
          action.addEventListener("click", () => silence(a));
        }
      }
      return [
        badge(a.state, STATE_KIND[a.state]),
        a.rule,
        labels.severity ?? "–",
        labelText(labels),
        a.annotations.summary ?? "",
        a.value === null || a.value === undefined ? "–" : count(Math.round(a.value * 100) / 100),
        ago(a.state === "resolved" ? (a.resolved_at_ms ?? a.since_ms) : a.active_since_ms),
        ...(action ? [action] : []),
      ];
    }),
    { "data-testid": testid },
  );
}

const DURATIONS: [string, number][] = [
  ["1 hour", 3_600_000],
  ["4 hours", 4 * 3_600_000],
  ["1 day", 24 * 3_600_000],
  ["1 week", 7 * 24 * 3_600_000],
];

/** The form that adds a silence; `prefill` puts an alert's labels in it. */
function silenceForm(onAdded: () => void): { form: HTMLElement; prefill: (matchers: string) => void } {
  const matchers = el("input", {
    type: "text",
    size: "60",
    placeholder: "alertname=group_lag, group=~payments.*",
    "aria-label": "matchers",
    "data-testid": "silence-matchers",
  });
  const duration = el("select", { "aria-label": "duration", "data-testid": "silence-duration" });
  for (const [label, ms] of DURATIONS) duration.append(el("option", { value: String(ms) }, label));
  const by = el("input", { type: "text", size: "12", placeholder: "who", "aria-label": "created by", "data-testid": "silence-by" });
  const comment = el("input", { type: "text", size: "30", placeholder: "why", "aria-label": "comment", "data-testid": "silence-comment" });
  const submit = el("button", { type: "submit", "data-testid": "silence-add" }, "add silence");
  const message = el("span", { class: "muted", role: "status", "data-testid": "silence-message" });
  const form = el("form", { class: "silence-form", "data-testid": "silence-form" }, "matchers ", matchers, " for ", duration, " by ", by, " because ", comment, " ", submit, " ", message);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = {
      matchers: parseMatchers(matchers.value),
      ends_at_ms: Date.now() + Number(duration.value),
      created_by: by.value,
      comment: comment.value,
    };
    sendJson<SilenceView>("POST", "/api/v1/silences", body)
      .then((made) => {
        message.textContent = `silence ${made.id} added, until ${new Date(made.ends_at_ms).toLocaleString()}`;
        matchers.value = "";
        onAdded();
      })
      .catch((e: unknown) => {
        message.textContent = e instanceof Error ? e.message : String(e);
      });
  });
  return {
    form,
    prefill: (text) => {
      matchers.value = text;
      matchers.focus();
    },
  };
}

function silencesTable(silences: SilenceView[], onChange: () => void): HTMLElement {
  if (silences.length === 0) return el("p", { class: "muted" }, "None.");
  const kind: Record<string, string> = { active: "warn", pending: "", expired: "ok" };
  return table(
    ["state", "matchers", "from", "until", "by", "comment", ""],
    silences.map((s) => {
      let action: HTMLElement | string = "";
      if (s.state !== "expired") {
        action = el("button", { type: "button", "data-testid": "silence-expire" }, "expire");
        action.addEventListener("click", () => {
          sendJson<SilenceView>("DELETE", `/api/v1/silences/${encodeURIComponent(s.id)}`).then(onChange, onChange);
        });
      }
      return [
        badge(s.state, kind[s.state]),
        matcherText(s.matchers),
        new Date(s.starts_at_ms).toLocaleString(),
        new Date(s.ends_at_ms).toLocaleString(),
        s.created_by,
        s.comment,
        action,
      ];
    }),
    { "data-testid": "silences" },
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
    const silenceList = el("div");
    let refresh: () => Promise<void> = async () => {};
    const again = () => {
      void refresh();
    };
    const { form, prefill } = silenceForm(again);
    root.append(
      el("h1", {}, "Alerts"),
      el("p", { class: "note" }, "Rules the monitor evaluates itself ([alerts.rules.<name>], docs/alerts.md); notifications go to the configured receivers."),
      cards,
      section("Firing", firing),
      section("Pending", pending),
      section("Resolved recently", resolved),
      section("Silences", el("p", { class: "note" }, "While a silence is active, receivers are not told that alerts matching all its matchers fire; resolutions still go out."), form, silenceList),
      section("Rules", rules),
      section("Sources (/ready)", sources),
      section("Watched parts", parts),
    );
    refresh = async () => {
      const [view, ready, watched, silences] = await Promise.all([
        getJson<AlertsView>("/api/v1/alerts", signal),
        getJson<Ready>("/ready", signal, [503]),
        getJson<PartStatus[]>("/api/v1/parts", signal),
        getJson<SilencesView>("/api/v1/silences", signal),
      ]);
      const by = (state: string) => view.alerts.filter((a) => a.state === state);
      const dropped = Object.values(view.dropped).reduce((a, b) => a + b, 0);
      fill(
        cards,
        card("firing", by("firing").length > 0 ? badge(count(by("firing").length), "bad") : "0", "", "alerts-firing"),
        card("pending", count(by("pending").length), "holding for less than their rule's for"),
        card("rules", count(view.rules.length), `evaluated every ${view.evaluate_every_s} s${view.evaluated_at_ms ? `, last ${ago(view.evaluated_at_ms)}` : ""}`),
        card("silences", count(silences.silences.filter((x) => x.state === "active").length), "active", "alerts-silences"),
        card("ready", ready.ready ? badge("yes", "ok") : badge("no", "warn"), ready.waiting_for.join(", ") || "every source reached"),
        ...(dropped > 0 ? [card("dropped", badge(count(dropped), "warn"), "alerts over a rule's cap")] : []),
      );
      const silenceIt = (a: AlertInstance) => prefill(matchersFor(a));
      fill(firing, alertsTable(by("firing"), "alerts-firing-table", silenceIt));
      fill(pending, alertsTable(by("pending"), "alerts-pending-table", silenceIt));
      fill(silenceList, silencesTable(silences.silences, again));
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
    return refresh;
  },
};
