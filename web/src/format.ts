export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 10 && seconds > 0 && !Number.isInteger(seconds)) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function count(n: number | null | undefined): string {
  return n !== null && n !== undefined && Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: n < 10 ? 2 : 1 })
    : "–";
}

export function rate(perMinute: number | null | undefined): string {
  return perMinute === null || perMinute === undefined ? "–" : `${count(perMinute)}/min`;
}

export function ago(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined) return "never";
  return `${duration(Math.max(0, (now - ms) / 1000))} ago`;
}

export function time(ms: number): string {
  return new Date(ms).toLocaleTimeString();
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** One window's count as the API gives it (`rates["1m"]`, …): see docs/kafka-watcher.md. */
export interface WindowCount {
  count: number;
  covered_s: number;
  per_minute?: number | null;
}

/** "600/min" once the window is covered; until then what was seen and over how long: "42 in 34 s". */
export function windowRate(w: WindowCount | null | undefined): string {
  if (!w) return "–";
  if (w.per_minute !== null && w.per_minute !== undefined) return rate(w.per_minute);
  return `${count(w.count)} in ${duration(w.covered_s)}`;
}

/** For ordering and bar widths: the per-minute figure, or the count seen so far (never scaled up). */
export function windowValue(w: WindowCount | null | undefined): number {
  return w ? (w.per_minute ?? w.count) : 0;
}

/** The sum over topics: counts add, it covers what all cover, a per-minute figure only if all have one. */
export function sumWindows(ws: (WindowCount | null | undefined)[]): WindowCount | null {
  const known = ws.filter((w): w is WindowCount => !!w);
  if (known.length === 0) return null;
  return {
    count: known.reduce((n, w) => n + w.count, 0),
    covered_s: Math.min(...known.map((w) => w.covered_s)),
    per_minute: known.every((w) => w.per_minute !== null && w.per_minute !== undefined)
      ? known.reduce((n, w) => n + (w.per_minute ?? 0), 0)
      : null,
  };
}
