// Live updates: one EventSource on /api/v1/live for the whole portal. `update` events make the
// shown page refresh its data; `event` events feed the overview's event stream. When the server
// has no live stream (404, or the stream keeps failing), pages fall back to a timer and the
// header says so.

import { token, type PipelineEvent } from "./api";

type Listener<T> = (value: T) => void;

const updateListeners = new Set<Listener<{ at: number; source: string }>>();
const eventListeners = new Set<Listener<PipelineEvent>>();
const statusListeners = new Set<Listener<LiveStatus>>();

export type LiveStatus = "connecting" | "live" | "polling";
let status: LiveStatus = "connecting";
let source: EventSource | null = null;
let failures = 0;

function setStatus(next: LiveStatus): void {
  if (status === next) return;
  status = next;
  for (const l of statusListeners) l(status);
}

export function liveStatus(): LiveStatus {
  return status;
}

export function onUpdate(l: Listener<{ at: number; source: string }>): () => void {
  updateListeners.add(l);
  return () => updateListeners.delete(l);
}

export function onEvent(l: Listener<PipelineEvent>): () => void {
  eventListeners.add(l);
  return () => eventListeners.delete(l);
}

export function onStatus(l: Listener<LiveStatus>): () => void {
  statusListeners.add(l);
  l(status);
  return () => statusListeners.delete(l);
}

function parse<T>(data: string): T | null {
  try {
    return JSON.parse(data) as T;
  } catch {
    return null;
  }
}

export function startLive(): void {
  source?.close();
  const t = token();
  const url = t ? `/api/v1/live?access_token=${encodeURIComponent(t)}` : "/api/v1/live";
  const es = new EventSource(url);
  source = es;
  es.addEventListener("open", () => {
    failures = 0;
    setStatus("live");
  });
  es.addEventListener("update", (m) => {
    const data = parse<{ at: number; source: string }>((m as MessageEvent).data);
    if (data) for (const l of updateListeners) l(data);
  });
  es.addEventListener("event", (m) => {
    const data = parse<PipelineEvent>((m as MessageEvent).data);
    if (data) for (const l of eventListeners) l(data);
  });
  es.addEventListener("error", () => {
    // A non-200 answer (404: no live stream on this server) closes the source for good;
    // a dropped connection is retried by the browser.
    if (es.readyState === EventSource.CLOSED || ++failures >= 3) {
      es.close();
      setStatus("polling");
      // Try again later: the server may be restarted with the stream.
      window.setTimeout(() => {
        if (source === es) startLive();
      }, 60_000);
    }
  });
}

// A new token: reconnect with it.
window.addEventListener("pipescope-token", () => startLive());
