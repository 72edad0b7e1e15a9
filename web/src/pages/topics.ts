import { enc, getJson, selector, type ClusterSummary, type RangeAnswer, type TopicSummary } from "../api";
import { chartPanel, drawLines, linesOf, sumBy } from "../charts";
import { el } from "../dom";
import { count, windowRate } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, fill, link, section, table } from "../ui";

export const topics: Page = {
  title: "Topics",
  nav: true,
  mount(root, { signal }) {
    const rates = chartPanel("Messages/min per topic (over the last minute)", signal, { "data-testid": "chart-topic-rates" });
    const offsets = chartPanel("End offset per topic (sum over partitions)", signal, { "data-testid": "chart-end-offsets" });
    const tables = el("div");
    root.append(el("h1", {}, "Kafka topics"), el("div", { class: "grid2" }, rates.panel, offsets.panel), tables);

    return async () => {
      const clusters = await getJson<ClusterSummary[]>("/api/v1/kafka/clusters", signal);
      const range = rangeParams();
      const [lists, rateAnswer, offsetAnswer] = await Promise.all([
        Promise.all(clusters.map((c) => getJson<TopicSummary[]>(`/api/v1/kafka/clusters/${enc(c.name)}/topics`, signal))),
        getJson<RangeAnswer>(`/api/v1/query?metric=pipescope_kafka_topic_messages_per_minute&match=${enc(selector({ window: "1m" }))}&${range}`, signal),
        getJson<RangeAnswer>(`/api/v1/query?metric=pipescope_kafka_partition_end_offset&${range}`, signal),
      ]);
      const name = (l: Record<string, string>) => (clusters.length > 1 ? `${l.cluster}/${l.topic}` : l.topic);
      drawLines(rates, linesOf(rateAnswer, name), "msg/min", rateAnswer);
      drawLines(offsets, sumBy(offsetAnswer, name), "", offsetAnswer);

      fill(
        tables,
        ...clusters.map((c, i) =>
          section(
            clusters.length > 1 ? `Cluster ${c.name}` : `Topics of cluster ${c.name}`,
            c.error ? el("p", { class: "error" }, c.error) : null,
            table(
              ["topic", "partitions", "messages/min (last minute)", "end offsets (sum)", "under-replicated", "offline", "notes"],
              lists[i]
                .slice()
                .sort((a, b) => a.name.localeCompare(b.name))
                .map((t) => [
                  link(`#/topics/${enc(c.name)}/${enc(t.name)}`, t.name),
                  t.partitions,
                  el("span", { "data-testid": `rate-${t.name}` }, windowRate(t.rates?.["1m"])),
                  el("span", { "data-testid": `offsets-${t.name}` }, count(t.end_offset_sum)),
                  t.under_replicated_partitions ? badge(String(t.under_replicated_partitions), "warn") : "0",
                  t.offline_partitions ? badge(String(t.offline_partitions), "bad") : "0",
                  [
                    t.internal ? "internal" : "",
                    t.error ?? "",
                    t.partitions_with_errors ? `${t.partitions_with_errors} partition(s) without offsets` : "",
                  ]
                    .filter(Boolean)
                    .join("; "),
                ]),
              { "data-testid": "topics-table" },
            ),
          ),
        ),
      );
    };
  },
};
