// When a group or partition catches up, as the API estimates it.

import type { CatchUp } from "../api";
import { duration } from "../format";

/** A group's ETA (its `catch_up`; `null` when it has no analysed partition) as a badge. */
export function eta(catchUp: CatchUp | null | undefined): { text: string; kind: string } {
  if (!catchUp) return { text: "–", kind: "muted" };
  switch (catchUp.state) {
    case "falling_behind":
      return { text: "falling behind", kind: "bad" };
    case "caught_up":
      return { text: "caught up", kind: "ok" };
    case "in_seconds":
      return { text: `in ${duration(catchUp.seconds)}`, kind: "warn" };
    default:
      return { text: "unknown", kind: "muted" };
  }
}

export function catchUpText(c: CatchUp): string {
  switch (c.state) {
    case "caught_up":
      return "caught up";
    case "in_seconds":
      return `in ${duration(c.seconds ?? 0)}`;
    case "falling_behind":
      return "falling behind";
    default:
      return c.state.replace(/_/g, " ");
  }
}

/** What an ETA is computed from: "from rates over 45 s" (the consume and produce rates it used). */
export function etaBasis(c: CatchUp | null | undefined): string {
  if (!c || (c.state !== "in_seconds" && c.state !== "falling_behind") || c.rates_over_s === undefined || c.rates_over_s === null) return "";
  const one = c.rates_over_intervals === 1 ? ", one scrape interval" : "";
  return `from rates over ${duration(c.rates_over_s)}${one}`;
}
