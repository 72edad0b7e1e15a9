// First page load of each portal page in Chromium, against a fresh `pipescope demo`:
// time from navigation to the page's data on screen (table filled / chart drawn), cold (new
// browser context, empty cache) and warm (a reload, assets cached). After
// `scripts/build-web && cargo build -p pipescope`:
//   (cd web && node bench/page-load.mjs [rounds])      (PIPESCOPE_BIN, CHROMIUM as in the browser tests)

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const repo = path.resolve(import.meta.dirname, "../..");
const bin = process.env.PIPESCOPE_BIN ?? path.join(repo, "target/debug/pipescope");
const rounds = Number(process.argv[2] ?? 5);

const PAGES = [
  ["overview", "/", '[data-testid="card-pipescope"]'],
  ["topics", "/topics", "line:chart-topic-rates"],
  ["topic", "/topics/demo/calls", '[data-testid="partitions-table"] tbody tr'],
  ["groups", "/groups", '[data-testid="groups-table"] tbody tr'],
  ["group", "/groups/demo/pipescope-demo-laggard", '[data-testid="group-partitions"] tbody tr'],
  ["mqtt", "/mqtt", '[data-testid="mqtt-topics"]'],
  ["flow", "/flow", "shape:flow-graph"],
];

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function until(what, ms, f) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await f()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`no ${what} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `line:<testid>`: a series line drawn; `shape:<testid>`: filled shapes drawn; else a selector. */
async function drawn(page, ready) {
  const [kind, id] = ready.split(":");
  if (kind !== "line" && kind !== "shape") {
    await page.locator(ready).first().waitFor({ state: "attached", timeout: 30_000 });
    return;
  }
  await page.waitForFunction(
    ([k, testid]) => {
      const paths = [...document.querySelectorAll(`[data-testid="${testid}"] svg path`)];
      return k === "line"
        ? paths.some((p) => p.getAttribute("fill") === "none" && ((p.getAttribute("d") ?? "").match(/[LC]/g) ?? []).length >= 2)
        : paths.filter((p) => (p.getAttribute("fill") ?? "none") !== "none").length >= 3;
    },
    [kind, id],
    { timeout: 30_000, polling: 20 },
  );
}

const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

const dataDir = mkdtempSync(path.join(os.tmpdir(), "pipescope-bench-portal-"));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const demo = spawn(bin, ["demo", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--log", "warn"], { stdio: "ignore" });
let browser;
try {
  await until("/health", 60_000, async () => (await fetch(`${base}/health`)).ok);
  await until("consumer groups with a verdict", 90_000, async () => {
    const groups = await (await fetch(`${base}/api/v1/kafka/clusters/demo/groups`)).json();
    return groups.filter((g) => g.verdict !== null).length >= 2;
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  console.log(`portal page load, ${rounds} rounds, load average ${(await import("node:fs")).readFileSync("/proc/loadavg", "utf8").trim()}`);
  console.log("page        cold median  cold p95   warm median  warm p95   (ms, navigation → data on screen)");
  for (const [name, hash, ready] of PAGES) {
    const cold = [];
    const warm = [];
    for (let i = 0; i < rounds; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      for (const into of [cold, warm]) {
        const started = performance.now();
        if (into === cold) await page.goto(`${base}/#${hash}`);
        else await page.reload();
        await drawn(page, ready);
        into.push(performance.now() - started);
      }
      await context.close();
    }
    const f = (x) => x.toFixed(0).padStart(8);
    console.log(`${name.padEnd(10)} ${f(pct(cold, 50))}    ${f(pct(cold, 95))}   ${f(pct(warm, 50))}    ${f(pct(warm, 95))}`);
  }
} finally {
  await browser?.close();
  demo.kill("SIGTERM");
  await new Promise((r) => demo.once("exit", r));
  rmSync(dataDir, { recursive: true, force: true });
}
