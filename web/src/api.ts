// The portal reads the same public JSON API that users script against. When the server asks
// for a token (401), the user types it once; it stays in sessionStorage and goes out as a
// bearer token on every request (and as ?access_token= on the live stream, which EventSource
// cannot send headers for).

import type { components } from "./api-types";
import { askForToken } from "./auth";

export class ApiError extends Error {
  constructor(
    readonly path: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "pipescope-token";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The JSON answer at `path`; statuses in `alsoOk` (besides 2xx) answer JSON too (`/ready`'s 503). */
export async function getJson<T>(path: string, signal?: AbortSignal, alsoOk: number[] = []): Promise<T> {
  return requestJson<T>("GET", path, undefined, signal, alsoOk);
}

/** Sends `body` as JSON with `method` (POST, DELETE) and gives the JSON answer; a refusal throws
 * an ApiError carrying the server's `error` text. */
export async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  return requestJson<T>(method, path, body);
}

async function requestJson<T>(method: string, path: string, body: unknown, signal?: AbortSignal, alsoOk: number[] = []): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    try {
      response = await fetch(path, { method, signal, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new ApiError(path, 0, `cannot reach pipescope (${String(e)}) — is it still running?`);
    }
    if (response.status === 401 && attempt < 3) {
      setToken(null);
      await askForToken(t ? "That token was refused; try again." : "This pipescope asks for an access token.");
      continue;
    }
    if (!response.ok && !alsoOk.includes(response.status)) {
      const text = await response.text();
      let detail = text.slice(0, 300);
      try {
        const parsed = JSON.parse(text) as { error?: unknown };
        if (typeof parsed.error === "string") detail = parsed.error;
      } catch {
        // not JSON: keep the text
      }
      throw new ApiError(path, response.status, `${path}: ${response.status} ${detail}`);
    }
    return (await response.json()) as T;
  }
}

/** Like getJson, but an endpoint this server does not have (404) gives null. */
export async function getOptional<T>(path: string, signal?: AbortSignal): Promise<T | null> {
  try {
    return await getJson<T>(path, signal);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

export const enc = encodeURIComponent;

// The answers' types, generated from the server's OpenAPI document (./api-types.ts; see
// docs/portal-api.md): named here as the pages use them.
type Schemas = components["schemas"];

export type Health = Schemas["Health"];
export type ClusterSummary = Schemas["ClusterSummary"];
export type KafkaBroker = Schemas["KafkaBrokerState"];
export type TopicSummary = Schemas["TopicSummary"];
export type PartitionDetail = Schemas["PartitionDetail"];
export type TopicDetail = Schemas["TopicDetail"];
export type Verdict = Schemas["Verdict"];
export type CatchUp = Schemas["CatchUp"];
export type GroupSummary = Schemas["GroupSummary"];
export type TopicPage = Schemas["ListPage_TopicSummary"];
export type GroupPage = Schemas["ListPage_GroupSummary"];
export type GroupPartition = Schemas["GroupPartitionLag"];
export type Member = Schemas["MemberState"];
export type GroupDetail = Schemas["GroupDetail"];
export type MqttConnection = Schemas["MqttConnection"];
export type TreeSummary = Schemas["TreeSummary"];
export type MqttBroker = Schemas["MqttBroker"];
export type TreeNode = Schemas["NodeView"];
export type TreeAnswer = Schemas["MqttTree"];
export type RangeAnswer = Schemas["StoreRange"];
export type SeriesAnswer = Schemas["StoreSeries"];
export type ValuesAnswer = Schemas["StoreValues"];
export type PipelineEvent = Schemas["Event"];
export type FlowNode = Schemas["FlowNode"];
export type Flow = Schemas["FlowGraph"];
export type FlowEdge = Schemas["FlowEdge"];
export type ObservedFlow = Schemas["FlowView"];

/** A value the broker may have failed to give: the value, or `{"error": why}`. */
export type Item<T> = T | { error: string };

export function itemError<T>(item: Item<T>): string | null {
  return item !== null && typeof item === "object" && "error" in (item as object)
    ? String((item as { error: unknown }).error)
    : null;
}

const quoted = (v: string) => `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

/** A label matcher set for /api/v1/query, values quoted and escaped; `oneOf` adds a regex
 * matcher per label that keeps any of the given values exactly. */
export function selector(labels: Record<string, string>, oneOf: Record<string, string[]> = {}): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${quoted(v)}`);
  for (const [k, values] of Object.entries(oneOf)) {
    const alternatives = values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    parts.push(`${k}=~${quoted(alternatives.join("|"))}`);
  }
  return `{${parts.join(",")}}`;
}

const matchParam = (labels: Record<string, string>, oneOf: Record<string, string[]> = {}) =>
  Object.keys(labels).length + Object.keys(oneOf).length ? `&match=${enc(selector(labels, oneOf))}` : "";

/** The `most` values of `label` whose series of `metric` (matching `labels`) rank highest over
 * the range by their average: what a chart of a cluster of 10,000 groups draws, its worst few,
 * so the answer does not grow with the cluster. `range` is rangeParams()'s. */
export async function topValues(
  metric: string,
  label: string,
  range: string,
  signal: AbortSignal,
  { labels = {}, most = 10 }: { labels?: Record<string, string>; most?: number } = {},
): Promise<string[]> {
  const window = range.replace(/&?step=[^&]*/, "");
  // Series are per partition for some metrics: ask for more, keep the first `most` values.
  const top = await getJson<ValuesAnswer>(`/api/v1/top?metric=${metric}${matchParam(labels)}&n=${most * 5}&agg=avg&${window}`, signal);
  const values = top.series.map((s) => s.labels[label]).filter((v): v is string => v !== undefined);
  return [...new Set(values)].slice(0, most);
}

/** The history of `metric`'s series whose `label` is one of `values` (and that match `labels`). */
export async function historyOf(
  metric: string,
  label: string,
  values: string[],
  range: string,
  signal: AbortSignal,
  labels: Record<string, string> = {},
): Promise<RangeAnswer> {
  if (values.length === 0) {
    return { metric, resolution: "raw", from: 0, to: 0, step_ms: 0, series: [] };
  }
  return getJson<RangeAnswer>(`/api/v1/query?metric=${metric}${matchParam(labels, { [label]: values })}&${range}`, signal);
}
