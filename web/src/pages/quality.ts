// Data quality ([quality.X], docs/quality-rules.md and docs/quality.md): per observed topic, the
// records that are not JSON, the records breaking a rule (errors per minute per rule, with the
// newest failing records), the fields' profile over the last window, 15 minutes and hour, and
// the schema drift events.

import { enc, getJson, selector, type RangeAnswer } from "../api";
import type { components } from "../api-types";
import { chartPanel, drawLines, perMinute } from "../charts";
import { el } from "../dom";
import { ago, bytes, count } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, card, fill, link, section, table } from "../ui";

type Schemas = components["schemas"];
type QualityTopic = Schemas["QualityTopicView"];
type QualityDetail = Schemas["QualityTopicDetail"];
type Preview = Schemas["FailingRecord"];
type Report = Schemas["ReportEntry"];

/** The periodic HTML reports ([quality.X] report_every), newest first, each opened in a tab. */
function reportsTable(reports: Report[]): HTMLElement {
  if (reports.length === 0) {
    return el("p", { class: "muted" }, "No reports yet: set [quality.<name>] report_every (docs/quality.md \"Reports\").");
  }
  return table(
    ["topic", "report", "written", "records", "size"],
    reports.map((r) => [
      r.quality,
      link(`/api/v1/quality/reports/${enc(r.file)}`, r.file, { target: "_blank", rel: "noopener" }),
      ago(r.written_at_ms),
      r.records === null || r.records === undefined ? "–" : count(r.records),
      bytes(r.bytes),
    ]),
    { "data-testid": "quality-reports" },
  );
}

/** The profile summary of one view (docs/quality.md); the API document leaves it untyped. */
interface FieldProfile {
  path: string;
  present: number;
  missing: number;
  nulls: number;
  empties: number;
  dominant_type: string | null;
  distinct: number;
  distinct_exact: boolean;
  numbers: { min: number; max: number; mean: number } | null;
  top_values: { value: string; count: number }[];
  alerts: (string | { kind?: string; alert?: string })[];
}
interface ProfileSummary {
  records: number;
  valid: number;
  invalid: number;
  fields: number;
  field_profiles: FieldProfile[];
}

/** A count that should be 0, marked when it is not. */
function bad(n: number | null | undefined): Node | string {
  return n !== null && n !== undefined && n > 0 ? badge(count(n), "bad") : count(n);
}

function perMin(v: number | null | undefined): string {
  return v === null || v === undefined ? "–" : `${count(Math.round(v * 10) / 10)}/min`;
}

function number(v: number | null | undefined): string {
  if (v === null || v === undefined) return "–";
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? count(Math.round(v)) : v.toPrecision(4);
}

function alertText(a: FieldProfile["alerts"][number]): string {
  return typeof a === "string" ? a : (a.kind ?? a.alert ?? JSON.stringify(a));
}

function previewsTable(previews: Preview[], testid: string): HTMLElement {
  if (previews.length === 0) return el("p", { class: "muted" }, "None kept.");
  // Record text is shown as text (never as markup): payloads are hostile input.
  return table(
    ["when", "why", "record"],
    previews.map((p) => [ago(p.at_ms), p.reason, el("code", {}, p.record)]),
    { "data-testid": testid },
  );
}

function fieldsTable(profile: ProfileSummary | null | undefined): HTMLElement {
  if (!profile || !Array.isArray(profile.field_profiles)) {
    return el("p", { class: "muted" }, "No window closed yet.");
  }
  return table(
    ["field", "type", "present", "missing", "null", "empty", "distinct", "min", "mean", "max", "top values", "alerts"],
    profile.field_profiles.map((f) => [
      f.path,
      f.dominant_type ?? "–",
      count(f.present),
      bad(f.missing),
      bad(f.nulls),
      bad(f.empties),
      `${f.distinct_exact ? "" : "≈"}${count(f.distinct)}`,
      number(f.numbers?.min),
      number(f.numbers?.mean),
      number(f.numbers?.max),
      f.top_values
        .slice(0, 3)
        .map((t) => `${t.value} (${count(t.count)})`)
        .join(", "),
      f.alerts.map(alertText).join(", "),
    ]),
    { "data-testid": "quality-fields" },
  );
}

export const quality: Page = {
  title: "Quality",
  nav: true,
  mount(root, { signal }) {
    const list = el("div");
    const reports = el("div");
    root.append(
      el("h1", {}, "Data quality"),
      el("p", { class: "note" }, "Observed topics ([quality.<name>] in the configuration): every record's payload profiled and checked against the topic's rules."),
      list,
      section("Profile reports", reports),
    );
    return async () => {
      const [all, written] = await Promise.all([
        getJson<QualityTopic[]>("/api/v1/quality", signal),
        getJson<Report[]>("/api/v1/quality/reports", signal),
      ]);
      fill(reports, reportsTable(written));
      fill(
        list,
        all.length === 0
          ? el("p", { class: "muted" }, "No quality topics yet: configure [quality.<name>] (docs/quality-rules.md).")
          : table(
              ["topic", "source", "reading", "records", "not JSON", "error records", "errors/min", "rules broken", "updated"],
              all.map((q) => [
                link(`#/quality/${enc(q.name)}`, q.name),
                q.source,
                q.reader.connected ? badge("yes", "ok") : badge(q.reader.last_error ?? "no", "warn"),
                count(q.records_total),
                bad(q.invalid_total),
                bad(q.error_records_total),
                perMin(q.error_records["1m"].per_minute),
                q.rules_broken.map((r) => r.rule).join(", ") || "–",
                ago(q.updated_ms),
              ]),
              { "data-testid": "quality-topics" },
            ),
      );
    };
  },
};

export const qualityDetail: Page = {
  title: "Quality",
  mount(root, { signal, params }) {
    const name = params.name;
    const cards = el("section", { class: "cards" });
    const rules = el("div");
    const fields = el("div");
    const drift = el("div");
    const invalid = el("div");
    const errors = chartPanel("Errors per minute, per rule", signal, { "data-testid": "chart-rule-errors" });
    root.append(
      el("p", { class: "crumbs" }, link("#/quality", "Quality"), " / ", name),
      el("h1", {}, name),
      cards,
      errors.panel,
      section("Rules", rules),
      section("Fields (last 15 minutes)", fields),
      section("Schema drift", drift),
      section("Records that are not JSON", invalid),
    );
    return async () => {
      const [q, answer] = await Promise.all([
        getJson<QualityDetail>(`/api/v1/quality/${enc(name)}`, signal),
        getJson<RangeAnswer>(
          `/api/v1/query?metric=pipescope_quality_rule_errors_total&match=${enc(selector({ quality: name }))}&${rangeParams()}`,
          signal,
        ),
      ]);
      fill(
        cards,
        card("records", count(q.records_total), q.sample_every > 1 ? `profiled 1 in ${q.sample_every}` : "every one profiled"),
        card("error records", bad(q.error_records_total), `${perMin(q.error_records["1m"].per_minute)} over the last minute`, "quality-errors"),
        card("not JSON", bad(q.invalid_total), "counted, with previews below"),
        card("drift events", count(Object.values(q.drift.events_total).reduce((a, b) => a + b, 0)), `${count(q.drift.paths_followed)} fields followed`),
        card("updated", ago(q.updated_ms), q.reader.connected ? "reading" : (q.reader.last_error ?? "not reading")),
      );
      drawLines(
        errors,
        answer.series.map((s) => ({ name: s.labels.rule ?? "rule", points: perMinute(s.points) })),
        "/min",
        answer,
      );
      fill(
        rules,
        q.rules.rules.length === 0
          ? el("p", { class: "muted" }, "No rules configured.")
          : el(
              "div",
              {},
              table(
                ["rule", "field", "check", "broken", "last minute"],
                q.rules.rules.map((r) => [r.rule, r.field, r.check, bad(r.broken_total), count(r.errors["1m"].count)]),
                { "data-testid": "quality-rules" },
              ),
              ...q.rules.rules
                .filter((r) => r.previews.length > 0)
                .map((r) => section(`Newest records breaking ${r.rule}`, previewsTable(r.previews, "quality-previews"))),
            ),
      );
      const views = q.profiles as unknown as { fifteen_minutes?: ProfileSummary; window?: ProfileSummary | null };
      fill(fields, fieldsTable(views.fifteen_minutes ?? views.window));
      fill(
        drift,
        q.drift_events.length === 0
          ? el("p", { class: "muted" }, "No drift seen.")
          : table(
              ["when", "event", "field", "example"],
              q.drift_events.map((d) => [ago(d.at_ms), d.kind, d.path, el("code", {}, d.example ?? "")]),
              { "data-testid": "quality-drift" },
            ),
      );
      fill(invalid, previewsTable(q.invalid_previews, "quality-invalid"));
    };
  },
};
