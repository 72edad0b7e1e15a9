// Light and dark: follows the system until the user picks one, then remembers the pick.

const KEY = "pipescope-theme";

export function currentTheme(): "light" | "dark" {
  const saved = localStorage.getItem(KEY);
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function setupTheme(button: HTMLElement): void {
  const apply = (theme: "light" | "dark") => {
    document.documentElement.dataset.theme = theme;
  };
  apply(currentTheme());
  button.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    localStorage.setItem(KEY, next);
    apply(next);
    window.dispatchEvent(new Event("pipescope-theme"));
  });
}
