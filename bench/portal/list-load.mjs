// Cold loads of a portal list page in Chromium until its table shows rows: a fresh context each
// run (nothing cached), timed from navigation start to the first row of `SELECTOR` in the DOM.
// Prints {"runs_ms": [...], "p50_ms", "p95_ms", "rows"} as JSON.
// Usage: node bench/portal/list-load.mjs URL SELECTOR [RUNS]
import { createRequire } from "node:module";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [url, selector] = [process.argv[2], process.argv[3]];
const runs = Number(process.argv[4] ?? 20);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const times = [];
let rows = 0;
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(url, { waitUntil: "commit" });
    await page.locator(selector).first().waitFor({ state: "attached", timeout: 60_000 });
    times.push(await page.evaluate(() => performance.now()));
    rows = await page.locator(selector).count();
    await context.close();
  }
} finally {
  await browser.close();
}
const sorted = [...times].sort((a, b) => a - b);
const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
console.log(JSON.stringify({ runs_ms: times.map(Math.round), p50_ms: at(0.5), p95_ms: at(0.95), rows }));
