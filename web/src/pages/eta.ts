// When a group catches up, from its partitions' catch-up estimates.

import type { CatchUp } from "../api";
import { duration } from "../format";

export function eta(catchUps: CatchUp[]): { text: string; kind: string } {
  if (catchUps.length === 0) return { text: "–", kind: "muted" };
  if (catchUps.some((c) => c.state === "falling_behind")) return { text: "falling behind", kind: "bad" };
  if (catchUps.every((c) => c.state === "caught_up")) return { text: "caught up", kind: "ok" };
  const seconds = catchUps.filter((c) => c.state === "in_seconds").map((c) => c.seconds ?? 0);
  if (seconds.length === 0) return { text: "unknown", kind: "muted" };
  return { text: `in ${duration(Math.max(...seconds))}`, kind: "warn" };
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
