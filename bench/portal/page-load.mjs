// First page load of the portal in Chromium (headless, a fresh context each run, so nothing is
// cached): prints {"runs": [...], "median_load_ms", "median_dcl_ms"} as JSON.
// Usage: node bench/portal/page-load.mjs URL [RUNS]
import { createRequire } from "node:module";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const url = process.argv[2];
const runs = Number(process.argv[3] ?? 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const results = [];
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(url, { waitUntil: "load" });
    const nav = await page.evaluate(() => {
      const [n] = performance.getEntriesByType("navigation");
      return { load_ms: n.loadEventEnd - n.startTime, dcl_ms: n.domContentLoadedEventEnd - n.startTime };
    });
    results.push(nav);
    await context.close();
  }
} finally {
  await browser.close();
}
const median = (key) => {
  const v = results.map((r) => r[key]).sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
};
console.log(JSON.stringify({ runs: results, median_load_ms: median("load_ms"), median_dcl_ms: median("dcl_ms") }));
