import { alertStateCard, alertsMatching } from "./alerts";
import { enc, getJson, itemError, selector, type GroupDetail, type RangeAnswer } from "../api";
import { chartPanel, drawLines, type Line } from "../charts";
import { el } from "../dom";
import { ago, count, duration } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, card, fill, link, section, table, unavailable } from "../ui";
import { catchUpText, eta, etaBasis } from "./eta";

export const group: Page = {
  title: "Group",
  mount(root, { signal, params }) {
    const { cluster, group: name } = params;
    const cards = el("section", { class: "cards" });
    const lag = chartPanel("Lag per partition (offsets)", signal, { "data-testid": "chart-partition-lag" });
    const seconds = chartPanel("Lag per partition (seconds)", signal, { "data-testid": "chart-partition-lag-seconds" });
    const parts = el("div");
    const members = el("div");
    root.append(
      el("p", { class: "crumbs" }, link("#/groups", "Groups"), " / ", cluster),
      el("h1", {}, name),
      cards,
      el("div", { class: "grid2" }, lag.panel, seconds.panel),
      section("Partitions", parts),
      section("Members and assignments", members),
    );

    return async () => {
      const range = rangeParams();
      const match = enc(selector({ cluster, group: name }));
      const [g, lagAnswer, secondsAnswer, matching] = await Promise.all([
        getJson<GroupDetail>(`/api/v1/kafka/clusters/${enc(cluster)}/groups/${enc(name)}`, signal),
        getJson<RangeAnswer>(`/api/v1/query?metric=pipescope_kafka_group_lag_offsets&match=${match}&${range}`, signal),
        getJson<RangeAnswer>(`/api/v1/query?metric=pipescope_kafka_group_lag_seconds&match=${match}&${range}`, signal),
        alertsMatching(signal, { cluster, group: name }),
      ]);
      const lines = (a: RangeAnswer): Line[] =>
        a.series
          .map((s) => ({ name: `${s.labels.topic}[${s.labels.partition}]`, points: s.points }))
          .sort((x, y) => x.name.localeCompare(y.name, undefined, { numeric: true }));
      drawLines(lag, lines(lagAnswer), "offsets", lagAnswer);
      drawLines(seconds, lines(secondsAnswer), "s", secondsAnswer);

      const description = itemError(g.description) === null ? (g.description as Exclude<GroupDetail["description"], { error: string }>) : null;
      const e = eta(g.catch_up);
      fill(
        cards,
        card("verdict", badge(g.verdict), g.verdict_reason ?? "worst partition", "group-verdict"),
        alertStateCard(matching, "group-alerts"),
        card("lost", count(g.lost_to_retention), "deleted before the group read them", "group-lost"),
        card("lag", count(g.lag_offsets), "offsets, all partitions", "group-lag"),
        card("max lag", duration(g.max_lag_seconds), g.max_lag_seconds_estimated ? "estimated" : "seconds behind"),
        card("ETA", badge(e.text, e.kind), ["to catch up", etaBasis(g.catch_up)].filter(Boolean).join(", ")),
        card(
          "skew",
          g.lag_skew ? count(g.lag_skew.offsets) : "–",
          g.lag_skew
            ? `worst ${g.lag_skew.worst_topic}[${g.lag_skew.worst_partition}] ${count(g.lag_skew.worst_lag_offsets)} against a median of ${count(g.lag_skew.median_lag_offsets)}`
            : "one partition or no lag known",
          "group-skew",
        ),
        card("state", description?.state ?? "–", description ? description.protocol : "not described"),
        card("members", description ? description.members.length : "–", ""),
      );
      fill(
        parts,
        table(
          ["topic", "partition", "committed", "end offset", "lag", "lag (s)", "catch-up", "verdict", "last commit"],
          g.partitions.map((p) => [
            link(`#/topics/${enc(cluster)}/${enc(p.topic)}`, p.topic),
            p.partition,
            count(p.committed),
            count(p.latest),
            p.lag_offsets === null ? (p.lag_note ?? "–") : count(p.lag_offsets),
            p.lag_seconds === null
              ? "–"
              : `${duration(p.lag_seconds)}${p.lag_seconds_basis === "estimated" ? estimatedNote(p.lag_seconds_interpolated_over_s) : ""}`,
            catchUpText(p.catch_up),
            badge(p.verdict),
            ago(p.last_commit_seen_ms),
          ]),
          { "data-testid": "group-partitions" },
        ),
      );
      const why = itemError(g.description);
      fill(
        members,
        why !== null
          ? unavailable("Members", why)
          : description && description.members.length === 0
            ? el("p", { class: "muted" }, "No members: the group is empty.")
            : table(
                ["client id", "host", "member id", "assigned partitions"],
                (description?.members ?? []).map((m) => [
                  m.client_id,
                  m.client_host,
                  el("span", { class: "small" }, m.group_instance_id ? `${m.member_id} (${m.group_instance_id})` : m.member_id),
                  m.assignment_error ?? m.assignment.map((a) => `${a.topic} [${a.partitions.join(", ")}]`).join("; "),
                ]),
              ),
      );
    };
  },
};

/** An estimated lag in seconds is interpolated between two end-offset readings: say how far apart. */
function estimatedNote(overS: number | null | undefined): string {
  return overS === null || overS === undefined ? " (est.)" : ` (est. from readings ${duration(overS)} apart)`;
}
