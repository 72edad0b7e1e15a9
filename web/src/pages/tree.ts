// The MQTT topic-tree browser: an indented table with expandable levels and a filter on the
// topic. Names are shown as text.

import type { TreeNode } from "../api";
import { el } from "../dom";
import { ago, bytes, count, windowRate } from "../format";

export interface TreeState {
  expanded: Set<string>;
  filter: string;
}

function matches(n: TreeNode, filter: string): boolean {
  return n.topic.toLowerCase().includes(filter) || (n.children ?? []).some((c) => matches(c, filter));
}

export function treeTable(root: TreeNode, state: TreeState, now: number, redraw: () => void): HTMLElement {
  const filter = state.filter.trim().toLowerCase();
  const rows: HTMLElement[] = [];
  const walk = (n: TreeNode, depth: number) => {
    for (const c of n.children ?? []) {
      if (filter && !matches(c, filter)) continue;
      const open = filter ? true : state.expanded.has(c.topic);
      const hasChildren = c.children_count > 0;
      const toggle = hasChildren
        ? el("button", { type: "button", class: "toggle", "aria-expanded": String(open), "aria-label": open ? "collapse" : "expand" }, open ? "▾" : "▸")
        : el("span", { class: "toggle" });
      toggle.addEventListener("click", () => {
        if (state.expanded.has(c.topic)) state.expanded.delete(c.topic);
        else state.expanded.add(c.topic);
        redraw();
      });
      const preview = c.preview ? `${c.preview.text}${c.preview.truncated ? "…" : ""}` : "";
      rows.push(
        el(
          "tr",
          { "data-topic": c.topic },
          el(
            "td",
            { class: "topic-cell", style: `padding-left:${0.5 + depth * 1.1}rem` },
            toggle,
            el("span", { class: c.folded ? "muted" : "" }, c.name),
            hasChildren && !c.children?.length ? el("span", { class: "muted small" }, ` (${c.children_count} below)`) : "",
          ),
          el("td", {}, count(c.topics)),
          el("td", {}, count(c.messages)),
          el("td", {}, windowRate(c.rates["1m"])),
          el("td", {}, bytes(c.bytes)),
          el("td", {}, ago(c.last_seen_ms, now)),
          el("td", { class: "preview" }, preview),
        ),
      );
      if (open) walk(c, depth + 1);
    }
  };
  walk(root, 0);
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { "data-testid": "topic-tree", class: "wide" },
      el("thead", {}, el("tr", {}, ...["topic", "topics", "messages", "messages/min (last minute)", "bytes", "last seen", "last payload"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "7", class: "muted" }, filter ? "No topic matches the filter." : "No topics seen yet."))])),
    ),
  );
}
