import { enc, getJson, historyOf, topValues, type ClusterSummary, type GroupSummary } from "../api";
import { chartPanel, drawLines, maxBy, sumBy } from "../charts";
import { el } from "../dom";
import { count, duration } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, fill, link, section } from "../ui";
import { pagedTable, type PagedTable } from "../paged";
import { eta } from "./eta";

/** Groups a lag chart draws: the worst over the range. */
const CHARTED_GROUPS = 10;

export const groups: Page = {
  title: "Groups",
  nav: true,
  mount(root, { signal }) {
    const lag = chartPanel(`Lag of the ${CHARTED_GROUPS} groups with the most (offsets)`, signal, { "data-testid": "chart-group-lag" });
    const seconds = chartPanel(`Largest lag in seconds, ${CHARTED_GROUPS} worst groups`, signal, { "data-testid": "chart-group-lag-seconds" });
    const tables = el("div");
    root.append(el("h1", {}, "Consumer groups"), tables, el("div", { class: "grid2" }, lag.panel, seconds.panel));

    // One paged table per cluster, kept across refreshes (its sort, filter and page stay).
    const lists = new Map<string, PagedTable>();
    const listOf = (cluster: string) => {
      let list = lists.get(cluster);
      if (!list) {
        list = pagedTable<GroupSummary>({
          path: `/api/v1/kafka/clusters/${enc(cluster)}/groups`,
          what: "groups",
          testid: "groups-table",
          signal,
          columns: [
            { title: "group", sort: "name", cell: (g) => link(`#/groups/${enc(cluster)}/${enc(g.name)}`, g.name) },
            { title: "state", sort: "state", cell: (g) => g.state ?? el("span", { class: "muted", title: g.description_error ?? "" }, "not described") },
            { title: "members", sort: "members", cell: (g) => g.members ?? "–" },
            { title: "lag (offsets)", sort: "lag", cell: (g) => el("span", { "data-testid": `lag-${g.name}` }, count(g.lag_offsets)) },
            { title: "max lag", sort: "lag_seconds", cell: (g) => `${duration(g.max_lag_seconds)}${g.max_lag_seconds_estimated ? " (est.)" : ""}` },
            {
              title: "ETA",
              cell: (g) => {
                const e = eta(g.catch_up);
                return badge(e.text, e.kind);
              },
            },
            { title: "verdict", sort: "verdict", cell: (g) => badge(g.verdict) },
          ],
        });
        lists.set(cluster, list);
      }
      return list;
    };

    return async () => {
      const clusters = await getJson<ClusterSummary[]>("/api/v1/kafka/clusters", signal);
      // The tables first: they do not wait for the charts' history queries.
      fill(
        tables,
        ...clusters.map((c) =>
          section(
            clusters.length > 1 ? `Cluster ${c.name}` : `Groups of cluster ${c.name}`,
            ...c.group_list_errors.map((e) => el("p", { class: "error" }, e)),
            c.groups === 0 ? el("p", { class: "muted" }, "No consumer groups.") : listOf(c.name).element,
          ),
        ),
      );
      const range = rangeParams();
      // The charts draw the groups with the most lag over the range, not all 10,000.
      const worst = async (metric: string) =>
        historyOf(metric, "group", await topValues(metric, "group", range, signal, { most: CHARTED_GROUPS }), range, signal);
      const [lagAnswer, secondsAnswer] = await Promise.all([
        worst("pipescope_kafka_group_lag_offsets"),
        worst("pipescope_kafka_group_lag_seconds"),
        ...clusters.map((c) => listOf(c.name).refresh()),
      ]);
      const name = (l: Record<string, string>) => (clusters.length > 1 ? `${l.cluster}/${l.group}` : l.group);
      drawLines(lag, sumBy(lagAnswer, name), "offsets", lagAnswer);
      drawLines(seconds, maxBy(secondsAnswer, name), "s", secondsAnswer);
    };
  },
};
