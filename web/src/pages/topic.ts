import { alertStateCard, alertsMatching } from "./alerts";
import { enc, getJson, itemError, selector, type RangeAnswer, type TopicDetail } from "../api";
import { chartPanel, drawLines, type Line } from "../charts";
import { el } from "../dom";
import { count, windowRate } from "../format";
import { rangeParams } from "../range";
import type { Page } from "../router";
import { badge, card, fill, link, section, table } from "../ui";

export const topic: Page = {
  title: "Topic",
  mount(root, { signal, params }) {
    const { cluster, topic: name } = params;
    const cards = el("section", { class: "cards" });
    const rates = chartPanel("Messages/min per partition (instant: over each scrape interval)", signal, { "data-testid": "chart-partition-rates" });
    const offsets = chartPanel("End offset per partition", signal, { "data-testid": "chart-partition-offsets" });
    const parts = el("div");
    root.append(
      el("p", { class: "crumbs" }, link("#/topics", "Topics"), " / ", cluster),
      el("h1", {}, name),
      cards,
      section("Partitions", parts),
      el("div", { class: "grid2" }, rates.panel, offsets.panel),
    );
    const base = { cluster, topic: name };

    return async () => {
      const range = rangeParams();
      const match = enc(selector(base));
      const [t, rateAnswer, offsetAnswer, matching] = await Promise.all([
        getJson<TopicDetail>(`/api/v1/kafka/clusters/${enc(cluster)}/topics/${enc(name)}`, signal),
        getJson<RangeAnswer>(`/api/v1/query?metric=pipescope_kafka_partition_instant_messages_per_second&match=${match}&${range}`, signal),
        getJson<RangeAnswer>(`/api/v1/query?metric=pipescope_kafka_partition_end_offset&match=${match}&${range}`, signal),
        alertsMatching(signal, { cluster, topic: name }),
      ]);
      const byPartition = (a: RangeAnswer, scale: number): Line[] =>
        a.series
          .map((s) => ({
            name: `partition ${s.labels.partition}`,
            key: Number(s.labels.partition),
            points: s.points.map(([ts, v]) => [ts, v === null ? null : v * scale] as [number, number | null]),
          }))
          .sort((x, y) => x.key - y.key);
      drawLines(rates, byPartition(rateAnswer, 60), "msg/min", rateAnswer);
      drawLines(offsets, byPartition(offsetAnswer, 1), "", offsetAnswer);

      const ends = t.partitions.map((p) => (typeof p.latest === "number" ? p.latest : 0));
      fill(
        cards,
        card("messages/min", windowRate(t.rates?.["1m"]), `last minute, ${t.partitions.length} partitions`, "topic-rate"),
        card("end offsets", count(ends.reduce((a, b) => a + b, 0)), "sum over partitions", "topic-offsets"),
        card(
          "replication",
          t.partitions.some((p) => p.offline) ? badge("offline", "bad") : t.partitions.some((p) => p.under_replicated) ? badge("under-replicated", "warn") : badge("in sync", "ok"),
          t.error ?? "",
        ),
        alertStateCard(matching, "topic-alerts"),
      );
      fill(
        parts,
        table(
          ["partition", "leader", "replicas", "ISR", "start offset", "end offset", "messages/min (last minute)", "notes"],
          t.partitions.map((p) => [
            p.partition,
            p.leader == null || p.leader < 0 ? badge("none", "bad") : p.leader,
            p.replicas.join(", "),
            el("span", {}, p.isr.join(", "), p.under_replicated ? badge("URP", "warn") : ""),
            itemError(p.earliest) ?? count(p.earliest as number),
            el("span", { "data-testid": `end-${p.partition}` }, itemError(p.latest) ?? count(p.latest as number)),
            windowRate(p.rates?.["1m"]),
            [p.offline ? "offline" : "", p.error ?? "", p.rate_note && p.rate_note !== "measured" ? `rate: ${p.rate_note.replace(/_/g, " ")}` : ""]
              .filter(Boolean)
              .join("; "),
          ]),
          { "data-testid": "partitions-table" },
        ),
      );
    };
  },
};
