// A table of one page of a server-side list (`/topics`, `/groups`: `{total, offset, limit,
// items}`): the server sorts and filters, the page holds at most `pageSize` rows whatever the
// cluster's size. Sortable headers, a name filter and previous/next; the state survives the
// page's live refreshes.

import { getJson } from "./api";
import { el } from "./dom";
import { count } from "./format";

type Cell = Node | string | number | null | undefined;

interface ListPage<T> {
  total: number;
  offset: number;
  limit: number;
  sort: string;
  order: string;
  items: T[];
}

export interface Column<T> {
  title: string;
  /** The server's sort key for this column; not sortable when absent. */
  sort?: string;
  cell: (item: T) => Cell;
}

export interface PagedTable {
  element: HTMLElement;
  /** Loads the current page again (call it on each refresh of the page). */
  refresh: () => Promise<void>;
}

export function pagedTable<T>(opts: {
  path: string;
  columns: Column<T>[];
  testid: string;
  signal: AbortSignal;
  what: string;
  pageSize?: number;
  sort?: string;
  order?: "asc" | "desc";
}): PagedTable {
  const pageSize = opts.pageSize ?? 100;
  let offset = 0;
  let sort = opts.sort ?? "name";
  let order = opts.order ?? "asc";
  let q = "";
  const filter = el("input", { type: "search", placeholder: `filter ${opts.what} by name`, "aria-label": `filter ${opts.what}`, "data-testid": `${opts.testid}-filter` });
  const status = el("span", { class: "muted", "data-testid": `${opts.testid}-count` });
  const prev = el("button", { type: "button", "data-testid": `${opts.testid}-prev` }, "‹ previous");
  const next = el("button", { type: "button", "data-testid": `${opts.testid}-next` }, "next ›");
  // The headers sort on wide screens; phones show rows as cards without headers, so a select
  // and an order button do the same there (and everywhere).
  const sortBy = el("select", { "aria-label": `sort ${opts.what} by`, "data-testid": `${opts.testid}-sort` });
  for (const c of opts.columns) if (c.sort) sortBy.append(el("option", { value: c.sort }, c.title));
  const direction = el("button", { type: "button", "data-testid": `${opts.testid}-order` });
  const body = el("tbody");
  const head = el("tr");
  const tableEl = el("table", { class: "responsive", "data-testid": opts.testid }, el("thead", {}, head), body);
  const element = el(
    "div",
    {},
    el("div", { class: "pager" }, filter, " sort by ", sortBy, " ", direction),
    el("div", { class: "table-wrap" }, tableEl),
    el("p", { class: "pager" }, prev, " ", status, " ", next),
  );

  const sortOn = (key: string) => {
    // Names read A→Z first; figures biggest first.
    if (sort === key) order = order === "asc" ? "desc" : "asc";
    else order = key === "name" ? "asc" : "desc";
    sort = key;
    offset = 0;
    void refresh();
  };

  const drawHead = () => {
    head.replaceChildren(
      ...opts.columns.map((c) => {
        if (!c.sort) return el("th", {}, c.title);
        const arrow = c.sort === sort ? (order === "asc" ? " ▲" : " ▼") : "";
        const button = el("button", { type: "button", class: "sort", "data-sort": c.sort, "aria-sort": c.sort === sort ? (order === "asc" ? "ascending" : "descending") : "none" }, c.title + arrow);
        button.addEventListener("click", () => sortOn(c.sort ?? "name"));
        return el("th", {}, button);
      }),
    );
    sortBy.value = sort;
    direction.textContent = order === "asc" ? "▲ ascending" : "▼ descending";
  };

  // A later request wins: an answer to an older one (a live refresh that started before the
  // user sorted) is dropped.
  let generation = 0;
  const refresh = async (): Promise<void> => {
    const mine = ++generation;
    const params = new URLSearchParams({ offset: String(offset), limit: String(pageSize), sort, order });
    if (q) params.set("q", q);
    const sep = opts.path.includes("?") ? "&" : "?";
    const page = await getJson<ListPage<T>>(`${opts.path}${sep}${params}`, opts.signal);
    if (mine !== generation) return;
    if (page.total > 0 && page.offset >= page.total) {
      // The list shrank under the page: back to its last page.
      offset = Math.max(0, Math.floor((page.total - 1) / pageSize) * pageSize);
      return refresh();
    }
    drawHead();
    body.replaceChildren(
      ...page.items.map((item) => el("tr", {}, ...opts.columns.map((c) => el("td", { "data-label": c.title }, c.cell(item) ?? "–")))),
    );
    const first = page.total === 0 ? 0 : page.offset + 1;
    status.textContent = page.total === 0 ? (q ? `no ${opts.what} match “${q}”` : `no ${opts.what}`) : `${count(first)}–${count(page.offset + page.items.length)} of ${count(page.total)} ${opts.what}`;
    prev.disabled = page.offset === 0;
    next.disabled = page.offset + page.items.length >= page.total;
  };

  sortBy.addEventListener("change", () => sortOn(sortBy.value));
  direction.addEventListener("click", () => {
    order = order === "asc" ? "desc" : "asc";
    offset = 0;
    void refresh();
  });
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - pageSize);
    void refresh();
  });
  next.addEventListener("click", () => {
    offset += pageSize;
    void refresh();
  });
  let typing: number | undefined;
  filter.addEventListener("input", () => {
    window.clearTimeout(typing);
    typing = window.setTimeout(() => {
      q = filter.value.trim();
      offset = 0;
      void refresh();
    }, 250);
  });
  drawHead();
  return { element, refresh };
}
