// The portal reads the same public JSON API that users script against. When the server asks
// for a token (401), the user types it once; it stays in sessionStorage and goes out as a
// bearer token on every request (and as ?access_token= on the live stream, which EventSource
// cannot send headers for).

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

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    const headers: Record<string, string> = { Accept: "application/json" };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    try {
      response = await fetch(path, { signal, headers });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new ApiError(path, 0, `cannot reach pipescope (${String(e)}) — is it still running?`);
    }
    if (response.status === 401 && attempt < 3) {
      setToken(null);
      await askForToken(t ? "That token was refused; try again." : "This pipescope asks for an access token.");
      continue;
    }
    if (!response.ok) {
      const body = await response.text();
      let detail = body.slice(0, 300);
      try {
        const parsed = JSON.parse(body) as { error?: unknown };
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

export interface Health {
  status: string;
  version: string;
  uptime_s: number;
}

export interface ClusterSummary {
  name: string;
  cluster_id: string | null;
  controller_id: number | null;
  scraped_at_ms: number;
  age_ms: number;
  staleness_ms: number | null;
  error: string | null;
  brokers: number;
  brokers_up: number;
  topics: number;
  partitions: number;
  offline_partitions: number;
  under_replicated_partitions: number;
  groups: number;
  group_list_errors: string[];
}

export interface KafkaBroker {
  id: number;
  host: string;
  port: number;
  rack: string | null;
  up: boolean;
  error: string | null;
}

export interface TopicSummary {
  name: string;
  internal: boolean;
  error: string | null;
  partitions: number;
  offline_partitions: number;
  under_replicated_partitions: number;
  end_offset_sum: number;
  partitions_with_errors: number;
  messages_per_second: number | null;
  messages_per_minute: number | null;
  partitions_with_rate: number;
}

/** A value the broker may have failed to give: the value, or `{"error": why}`. */
export type Item<T> = T | { error: string };

export function itemError<T>(item: Item<T>): string | null {
  return item !== null && typeof item === "object" && "error" in (item as object)
    ? String((item as { error: unknown }).error)
    : null;
}

export interface PartitionDetail {
  partition: number;
  leader: number | null;
  replicas: number[];
  isr: number[];
  offline_replicas: number[];
  offline: boolean;
  under_replicated: boolean;
  earliest: Item<number>;
  latest: Item<number>;
  error: string | null;
  messages_per_second: number | null;
  messages_per_minute: number | null;
  rate_note: string | null;
}

export interface TopicDetail {
  name: string;
  internal: boolean;
  error: string | null;
  messages_per_minute: number | null;
  partitions: PartitionDetail[];
}

export type Verdict = "OK" | "WARN" | "STALLED" | "STOPPED" | "REWOUND" | string;

export interface GroupLag {
  verdict: Verdict | null;
  lag_offsets: number | null;
  partitions_lag_unknown: number;
  partitions_beyond_end: number;
  max_lag_seconds: number | null;
  max_lag_seconds_estimated: boolean;
}

export interface GroupSummary extends GroupLag {
  name: string;
  coordinator: number | null;
  protocol_type: string;
  state: string | null;
  members: number | null;
  committed_partitions: number | null;
  description_error: string | null;
  offsets_error: string | null;
}

export interface CatchUp {
  state: "caught_up" | "in_seconds" | "falling_behind" | "unknown" | string;
  seconds?: number;
}

export interface GroupPartition {
  topic: string;
  partition: number;
  committed: number;
  latest: number | null;
  lag_offsets: number | null;
  lag_note: string | null;
  lag_seconds: number | null;
  lag_seconds_basis: string;
  catch_up: CatchUp;
  verdict: Verdict;
  window_complete: boolean;
  last_commit_seen_ms: number | null;
  reported_this_scrape: boolean;
}

export interface Member {
  member_id: string;
  group_instance_id: string | null;
  client_id: string;
  client_host: string;
  assignment: { topic: string; partitions: number[] }[];
  assignment_error: string | null;
}

export interface GroupDetail extends GroupLag {
  name: string;
  coordinator: Item<number>;
  protocol_type: string;
  description: Item<{ state: string; protocol_type: string; protocol: string; members: Member[] }>;
  offsets: Item<{ topic: string; partition: number; committed: number }[]>;
  topics: { topic: string; lag_offsets: number; max_lag_seconds: number | null; verdict: Verdict }[];
  partitions: GroupPartition[];
}

export interface MqttConnection {
  state: string;
  since_ms: number | null;
  connects: number;
  outages: number;
  last_error: string | null;
  events: { time_ms: number; state: string; message: string }[];
}

export interface TreeSummary {
  topics: number;
  max_topics: number;
  nodes: number;
  other_nodes: number;
  folded_messages: number;
  messages: number;
}

export interface MqttBroker {
  name: string;
  url: string;
  protocol: string;
  filters: string[];
  connection: MqttConnection;
  sys_status: string;
  sys_messages: number;
  version: string | null;
  tree: TreeSummary;
}

export interface TreeNode {
  name: string;
  topic: string;
  value: number;
  messages: number;
  bytes: number;
  topics: number;
  rate_1m: number;
  rate_5m: number;
  rate_15m: number;
  last_seen_ms: number | null;
  seconds_since_last: number | null;
  is_topic: boolean;
  retained?: boolean;
  preview?: { encoding: string; text: string; size: number; truncated: boolean };
  folded: boolean;
  children?: TreeNode[];
  children_count: number;
}

export interface TreeAnswer {
  broker: string;
  summary: TreeSummary;
  depth: number;
  tree: TreeNode;
}

export interface RangeAnswer {
  metric: string;
  from: number;
  to: number;
  step_ms: number;
  series: { labels: Record<string, string>; points: [number, number | null][] }[];
}

export interface SeriesAnswer {
  series: { metric: string; labels: Record<string, string> }[];
}

export interface PipelineEvent {
  at: number;
  kind: string;
  source: string;
  subject: string;
  message: string;
}

export interface FlowNode {
  id: string;
  kind: "producer" | "topic" | "group" | string;
  label: string;
  cluster: string;
  rate_per_min: number | null;
  verdict: string | null;
}

export interface Flow {
  nodes: FlowNode[];
  edges: { source: string; target: string; rate_per_min: number | null }[];
}

/** A label matcher set for /api/v1/query, values quoted and escaped. */
export function selector(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`,
  );
  return `{${parts.join(",")}}`;
}
