// A hash router. A page is built once per visit (`mount`) and returns its `refresh`, which the
// router calls again on every live update (at most once a second), when the time range or the
// theme changes, and on a timer when the server has no live stream. Leaving the page aborts its
// signal: requests are cancelled and charts disposed.

import { el } from "./dom";
import { liveStatus, onUpdate } from "./live";

export interface PageContext {
  signal: AbortSignal;
  /** The `:name` parts of the route, decoded. */
  params: Record<string, string>;
}

export interface Page {
  title: string;
  /** Shown in the top navigation. */
  nav?: boolean;
  mount(root: HTMLElement, ctx: PageContext): () => Promise<void>;
}

const MIN_INTERVAL_MS = 1_000;
const POLL_MS = 5_000;
const SAFETY_MS = 30_000;

function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split("/");
  const got = path.split("/");
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) {
      try {
        params[want[i].slice(1)] = decodeURIComponent(got[i]);
      } catch {
        return null;
      }
    } else if (want[i] !== got[i]) {
      return null;
    }
  }
  return params;
}

export function startRouter(pages: Record<string, Page>, main: HTMLElement, nav: HTMLElement): void {
  for (const [path, page] of Object.entries(pages)) {
    if (page.nav && !path.includes(":")) nav.append(el("a", { href: `#${path}`, "data-path": path }, page.title));
  }
  let controller = new AbortController();

  const show = () => {
    controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
    let found: [string, Page, Record<string, string>] | null = null;
    for (const [pattern, page] of Object.entries(pages)) {
      const params = match(pattern, path);
      if (params) {
        found = [pattern, page, params];
        break;
      }
    }
    const [pattern, page, params] = found ?? ["/", pages["/"], {}];
    const section = "/" + pattern.split("/")[1];
    for (const link of nav.querySelectorAll("a")) {
      link.classList.toggle("active", link.dataset.path === section);
    }
    document.title = `${page.title} · pipescope`;

    const status = el("p", { class: "error", role: "alert", hidden: "" });
    const root = el("div", { class: "page" });
    main.replaceChildren(status, root);
    const refresh = page.mount(root, { signal, params });

    let running = false;
    let again = false;
    let lastStart = 0;
    let timer: number | undefined;
    const run = async () => {
      if (signal.aborted) return;
      if (running) {
        again = true;
        return;
      }
      const wait = lastStart + MIN_INTERVAL_MS - Date.now();
      if (wait > 0) {
        window.clearTimeout(timer);
        timer = window.setTimeout(run, wait);
        return;
      }
      running = true;
      lastStart = Date.now();
      window.clearTimeout(timer);
      try {
        await refresh();
        status.hidden = true;
      } catch (e) {
        if (!signal.aborted) {
          status.textContent = e instanceof Error ? e.message : String(e);
          status.hidden = false;
        }
      } finally {
        running = false;
      }
      if (signal.aborted) return;
      if (again) {
        again = false;
        void run();
      } else {
        timer = window.setTimeout(run, liveStatus() === "live" ? SAFETY_MS : POLL_MS);
      }
    };
    const stopLive = onUpdate(() => void run());
    const onChange = () => void run();
    for (const name of ["pipescope-range", "pipescope-theme", "pipescope-token"]) {
      window.addEventListener(name, onChange);
    }
    signal.addEventListener("abort", () => {
      stopLive();
      window.clearTimeout(timer);
      for (const name of ["pipescope-range", "pipescope-theme", "pipescope-token"]) {
        window.removeEventListener(name, onChange);
      }
    });
    void run();
  };
  window.addEventListener("hashchange", show);
  show();
}
