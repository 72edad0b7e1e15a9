import { enc, getJson, historyOf, topValues, type ClusterSummary, type TopicSummary } from "../api";
import { pagedTable, type PagedTable } from "../paged";
import { chartPanel, drawLines, linesOf, sumBy } from "../charts";
import { el } from "../dom";
import { count, windowRate } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, fill, link, section } from "../ui";

/** Topics a chart draws: those with the highest values over the range. */
const CHARTED_TOPICS = 10;

export const topics: Page = {
  title: "Topics",
  nav: true,
  mount(root, { signal }) {
    const rates = chartPanel(`Messages/min of the ${CHARTED_TOPICS} busiest topics (over the last minute)`, signal, { "data-testid": "chart-topic-rates" });
    const offsets = chartPanel(`End offset (sum over partitions) of the ${CHARTED_TOPICS} topics with the most records`, signal, { "data-testid": "chart-end-offsets" });
    const tables = el("div");
    root.append(el("h1", {}, "Kafka topics"), el("div", { class: "grid2" }, rates.panel, offsets.panel), tables);

    // One paged table per cluster, kept across refreshes (its sort, filter and page stay).
    const lists = new Map<string, PagedTable>();
    const listOf = (cluster: string) => {
      let list = lists.get(cluster);
      if (!list) {
        list = pagedTable<TopicSummary>({
          path: `/api/v1/kafka/clusters/${enc(cluster)}/topics`,
          what: "topics",
          testid: "topics-table",
          signal,
          columns: [
            { title: "topic", sort: "name", cell: (t) => link(`#/topics/${enc(cluster)}/${enc(t.name)}`, t.name) },
            { title: "partitions", sort: "partitions", cell: (t) => t.partitions },
            { title: "messages/min (last minute)", sort: "rate", cell: (t) => el("span", { "data-testid": `rate-${t.name}` }, windowRate(t.rates?.["1m"])) },
            { title: "end offsets (sum)", sort: "end_offsets", cell: (t) => el("span", { "data-testid": `offsets-${t.name}` }, count(t.end_offset_sum)) },
            { title: "under-replicated", sort: "under_replicated", cell: (t) => (t.under_replicated_partitions ? badge(String(t.under_replicated_partitions), "warn") : "0") },
            { title: "offline", sort: "offline", cell: (t) => (t.offline_partitions ? badge(String(t.offline_partitions), "bad") : "0") },
            {
              title: "notes",
              cell: (t) =>
                [t.internal ? "internal" : "", t.error ?? "", t.partitions_with_errors ? `${t.partitions_with_errors} partition(s) without offsets` : ""].filter(Boolean).join("; "),
            },
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
            clusters.length > 1 ? `Cluster ${c.name}` : `Topics of cluster ${c.name}`,
            c.error ? el("p", { class: "error" }, c.error) : null,
            listOf(c.name).element,
          ),
        ),
      );
      const range = rangeParams();
      // The charts draw the topics with the highest values over the range, not all 20,000.
      const highest = async (metric: string, labels: Record<string, string> = {}) =>
        historyOf(metric, "topic", await topValues(metric, "topic", range, signal, { labels, most: CHARTED_TOPICS }), range, signal, labels);
      const [rateAnswer, offsetAnswer] = await Promise.all([
        highest("pipescope_kafka_topic_messages_per_minute", { window: "1m" }),
        highest("pipescope_kafka_partition_end_offset"),
        ...clusters.map((c) => listOf(c.name).refresh()),
      ]);
      const name = (l: Record<string, string>) => (clusters.length > 1 ? `${l.cluster}/${l.topic}` : l.topic);
      drawLines(rates, linesOf(rateAnswer, name), "msg/min", rateAnswer);
      drawLines(offsets, sumBy(offsetAnswer, name), "", offsetAnswer);
    };
  },
};
