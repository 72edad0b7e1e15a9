// A hash router: each page renders into a fresh container and re-renders on a timer until
// the user navigates away (the signal aborts then, cancelling its requests).

import { clear, el } from "./dom";

export interface Page {
  title: string;
  /** Draws the page into `root`; called again every `refreshMs` while the page is shown. */
  render(root: HTMLElement, signal: AbortSignal): Promise<void>;
  refreshMs?: number;
}

export function startRouter(pages: Record<string, Page>, main: HTMLElement, nav: HTMLElement): void {
  for (const [path, page] of Object.entries(pages)) {
    nav.append(el("a", { href: `#${path}`, "data-path": path }, page.title));
  }
  let controller = new AbortController();
  let timer: number | undefined;

  const show = async () => {
    controller.abort();
    window.clearTimeout(timer);
    controller = new AbortController();
    const signal = controller.signal;
    const path = location.hash.replace(/^#/, "") || "/";
    const page = pages[path] ?? pages["/"];
    for (const link of nav.querySelectorAll("a")) {
      link.classList.toggle("active", link.dataset.path === path);
    }
    document.title = `${page.title} · pipescope`;
    const draw = async () => {
      const fresh = el("div", { class: "page" });
      try {
        await page.render(fresh, signal);
      } catch (e) {
        if (signal.aborted) return;
        fresh.append(el("p", { class: "error", role: "alert" }, String(e instanceof Error ? e.message : e)));
      }
      if (signal.aborted) return;
      clear(main);
      main.append(fresh);
      timer = window.setTimeout(draw, page.refreshMs ?? 5000);
    };
    await draw();
  };
  window.addEventListener("hashchange", show);
  void show();
}
