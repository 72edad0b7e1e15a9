// The token prompt: an in-page form (a browser prompt() would be a dialog and block the page).

import { el } from "./dom";
import { setToken } from "./api";

let pending: Promise<void> | null = null;

export function askForToken(reason: string): Promise<void> {
  if (pending) return pending;
  pending = new Promise<void>((resolve) => {
    const input = el("input", { type: "password", name: "token", autocomplete: "off", "aria-label": "access token" });
    const form = el(
      "form",
      { class: "token-form card", "data-testid": "token-form" },
      el("strong", {}, "Access token"),
      el("p", {}, reason),
      input,
      el("button", { type: "submit" }, "Use token"),
    );
    const overlay = el("div", { class: "overlay" }, form);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      setToken(input.value.trim() || null);
      overlay.remove();
      pending = null;
      window.dispatchEvent(new Event("pipescope-token"));
      resolve();
    });
    document.body.append(overlay);
    input.focus();
  });
  return pending;
}
