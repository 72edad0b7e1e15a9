import { enc, getJson, type ClusterSummary, type GroupSummary, type RangeAnswer } from "../api";
import { chartPanel, drawLines, maxBy, sumBy } from "../charts";
import { el } from "../dom";
import { count, duration } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, fill, link, section, table } from "../ui";
import { eta } from "./eta";

export const groups: Page = {
  title: "Groups",
  nav: true,
  mount(root, { signal }) {
    const lag = chartPanel("Lag per group (offsets)", signal, { "data-testid": "chart-group-lag" });
    const seconds = chartPanel("Largest lag per group (seconds)", signal, { "data-testid": "chart-group-lag-seconds" });
    const tables = el("div");
    root.append(el("h1", {}, "Consumer groups"), tables, el("div", { class: "grid2" }, lag.panel, seconds.panel));

    return async () => {
      const clusters = await getJson<ClusterSummary[]>("/api/v1/kafka/clusters", signal);
      const range = rangeParams();
      const [lists, lagAnswer, secondsAnswer] = await Promise.all([
        Promise.all(clusters.map((c) => getJson<GroupSummary[]>(`/api/v1/kafka/clusters/${enc(c.name)}/groups`, signal))),
        getJson<RangeAnswer>(`/api/v1/query?metric=pipescope_kafka_group_lag_offsets&${range}`, signal),
        getJson<RangeAnswer>(`/api/v1/query?metric=pipescope_kafka_group_lag_seconds&${range}`, signal),
      ]);
      const name = (l: Record<string, string>) => (clusters.length > 1 ? `${l.cluster}/${l.group}` : l.group);
      drawLines(lag, sumBy(lagAnswer, name), "offsets", lagAnswer);
      drawLines(seconds, maxBy(secondsAnswer, name), "s", secondsAnswer);

      fill(
        tables,
        ...clusters.map((c, i) =>
          section(
            clusters.length > 1 ? `Cluster ${c.name}` : `Groups of cluster ${c.name}`,
            ...c.group_list_errors.map((e) => el("p", { class: "error" }, e)),
            lists[i].length === 0
              ? el("p", { class: "muted" }, "No consumer groups.")
              : table(
                  ["group", "state", "members", "lag (offsets)", "max lag", "ETA", "verdict"],
                  [...lists[i]]
                    .sort((a, b) => a.name.localeCompare(b.name))
                    .map((g) => {
                      const e = eta(g.catch_up);
                      return [
                        link(`#/groups/${enc(c.name)}/${enc(g.name)}`, g.name),
                        g.state ?? el("span", { class: "muted", title: g.description_error ?? "" }, "not described"),
                        g.members ?? "–",
                        el("span", { "data-testid": `lag-${g.name}` }, count(g.lag_offsets)),
                        `${duration(g.max_lag_seconds)}${g.max_lag_seconds_estimated ? " (est.)" : ""}`,
                        badge(e.text, e.kind),
                        badge(g.verdict),
                      ];
                    }),
                  { "data-testid": "groups-table" },
                ),
          ),
        ),
      );
    };
  },
};
