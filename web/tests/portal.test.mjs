// Browser tests of the portal against a running `pipescope demo`: Debian's Chromium driven by
// playwright-core. Run with `node --test tests/` from web/ (scripts/test does, after the cargo
// tests). The binary is $PIPESCOPE_BIN (default target/debug/pipescope); screenshots go to
// test-artifacts/ at the repository root. A topic named like markup is published into the demo's
// MQTT broker (mosquitto_pub): it must show as text, and no dialog may open on any page.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const repo = path.resolve(import.meta.dirname, "../..");
const bin = process.env.PIPESCOPE_BIN ?? path.join(repo, "target/debug/pipescope");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts = path.join(repo, "test-artifacts");

const VIEWPORTS = [
  { name: "desktop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
];
const SCHEMES = ["light", "dark"];

let demo;
let demoOutput = "";
let dataDir;
let baseUrl;
let browser;
let mqttPort;
let liveStream;

let plant;

const HOSTILE = "<img src=x onerror=alert(1)>";
const PLANT_TOPICS = ["line1", "line2", "line3"].flatMap((line, i) =>
  ["temperature", "pressure", "vibration", "state"].slice(0, 4 - i).map((m) => `plant/${line}/press-${i + 1}/${m}`),
);
const HOSTILE_TOPIC = `demo/${HOSTILE}`;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(what, timeoutMs, condition) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (demo.exitCode !== null) {
      throw new Error(`pipescope demo exited (${demo.exitCode}) while waiting for ${what}:\n${demoOutput}`);
    }
    try {
      const value = await condition();
      if (value) return value;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw new Error(`no ${what} after ${timeoutMs} ms:\n${demoOutput}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(path.join(os.tmpdir(), "pipescope-browser-"));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  mqttPort = await freePort();
  demo = spawn(bin, ["demo", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--mqtt-port", String(mqttPort)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  demo.stdout.on("data", (d) => (demoOutput += d));
  demo.stderr.on("data", (d) => (demoOutput += d));
  await waitFor("/health from the demo", 40_000, async () => (await fetch(`${baseUrl}/health`)).ok);
  // The pages need a Kafka rate, two groups and the hostile topic in the MQTT tree.
  // A per-minute figure exists once the monitor has watched a whole minute (before that the API
  // gives the count seen and the span it covers): about 70 s after the demo starts.
  await waitFor("a Kafka topic with a per-minute figure", 150_000, async () => {
    const topics = (await (await fetch(`${baseUrl}/api/v1/kafka/clusters/demo/topics`)).json()).items;
    return topics.some((t) => t.name === "calls" && t.rates["1m"].per_minute > 0);
  });
  await waitFor("the demo's consumer groups", 60_000, async () => {
    const groups = (await (await fetch(`${baseUrl}/api/v1/kafka/clusters/demo/groups`)).json()).items;
    return groups.filter((g) => g.verdict !== null).length >= 2;
  });
  await waitFor("the hostile topic in the MQTT tree", 30_000, async () => {
    await publish(HOSTILE_TOPIC, "<b>payload</b>");
    const tree = await (await fetch(`${baseUrl}/api/v1/mqtt/brokers/demo/tree?root=demo&depth=1`)).json();
    return tree.tree?.children?.some((c) => c.name === HOSTILE);
  });
  // A small plant publishing, so the tree and sunburst have some shape (one message a second).
  let next = 0;
  plant = setInterval(() => {
    const topic = PLANT_TOPICS[next++ % PLANT_TOPICS.length];
    publish(topic, String(20 + (next % 7))).catch(() => {});
  }, 1_000);
  // Whether this server has the live stream: the header must say which way it updates.
  const live = await fetch(`${baseUrl}/api/v1/live`, { signal: AbortSignal.timeout(2_000) }).catch(() => null);
  liveStream = live?.ok ?? false;
  await live?.body?.cancel().catch(() => {});
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
});

function publish(topic, payload) {
  return new Promise((resolve, reject) => {
    execFile(
      "mosquitto_pub",
      ["-h", "127.0.0.1", "-p", String(mqttPort), "-V", "mqttv311", "-q", "1", "-t", topic, "-m", payload],
      { timeout: 5_000 },
      (error, _stdout, stderr) => (error ? reject(new Error(`mosquitto_pub: ${error.message} ${stderr}`)) : resolve()),
    );
  });
}

after(async () => {
  clearInterval(plant);
  await browser?.close();
  if (demo && demo.exitCode === null) {
    const exited = new Promise((resolve) => demo.once("exit", (code) => resolve(code)));
    demo.kill("SIGTERM");
    const code = await exited;
    assert.equal(code, 0, `pipescope demo did not stop cleanly:\n${demoOutput}`);
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});


/** Opens `hash` in a fresh browser context; any dialog or page error fails the test. */
async function openPage(hash, viewport = VIEWPORTS[0], scheme = "light") {
  const context = await browser.newContext({
    viewport: { width: viewport.width, height: viewport.height },
    colorScheme: scheme,
  });
  const problems = [];
  const page = await context.newPage();
  page.on("dialog", async (dialog) => {
    problems.push(`a dialog opened: ${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss();
  });
  page.on("pageerror", (error) => problems.push(`the page threw: ${error}\n${error.stack ?? ""}`));
  await page.goto(`${baseUrl}/#${hash}`);
  return {
    page,
    problems,
    close: () => context.close(),
  };
}

/** Moves the mouse over the ring of the chart in [data-testid=id] (the hostile topic is the
 *  only child of the page's root, so the whole ring is its sector) until `tip` shows. The chart is
 *  scrolled into view first (on a phone it starts below the fold, where the mouse cannot reach),
 *  and the mouse moves again each round: a live refresh redraws the chart and drops the tooltip. */
/** Moves the mouse over the chart until `tip` shows, and returns its text (read at once: the
 *  chart redraws with each live update, which may hide the tooltip again). */
async function hoverUntilVisible(page, id, tip, timeout = 15_000) {
  const chart = page.getByTestId(id);
  const deadline = Date.now() + timeout;
  for (let round = 0; ; round++) {
    // Again each round: charts above it appear as the broker's $SYS topics arrive and push it down.
    await chart.scrollIntoViewIfNeeded();
    const box = await chart.boundingBox();
    const radius = Math.min(box.width, box.height) / 2;
    // Below the centre, three quarters out: inside the outer ring whatever the chart's size.
    const at = { x: box.x + box.width / 2 + (round % 2), y: box.y + box.height / 2 + radius * 0.75 };
    await page.mouse.move(at.x, at.y);
    try {
      return await tip.textContent({ timeout: 1_000 });
    } catch (error) {
      if (Date.now() > deadline) {
        const tips = await page.locator(".tip-title").allTextContents();
        const viewport = page.viewportSize();
        throw new Error(
          `no tooltip over ${id} after ${round + 1} moves (last at ${at.x},${at.y}; chart ${JSON.stringify(box)}; ` +
            `viewport ${viewport.width}x${viewport.height}; tooltips shown: ${JSON.stringify(tips)}): ${error.message}`,
        );
      }
    }
  }
}

/** Waits until the chart in [data-testid=id] has drawn data (the portal draws with ECharts' SVG
 *  renderer): a line through three points or more, or at least `shapes` filled shapes (sunburst
 *  sectors, graph nodes). */
async function chartDrawn(page, id, shapes = 0, timeout = 25_000) {
  await page.waitForFunction(
    ([testid, minShapes]) => {
      const box = document.querySelector(`[data-testid="${testid}"]`);
      if (!box) return false;
      const paths = [...box.querySelectorAll("svg path")];
      if (minShapes > 0) {
        return paths.filter((p) => (p.getAttribute("fill") ?? "none") !== "none" && (p.getAttribute("d") ?? "").length > 10).length >= minShapes;
      }
      // Grid and axis lines are single segments; a series line through three points has two.
      return paths.some((p) => p.getAttribute("fill") === "none" && ((p.getAttribute("d") ?? "").match(/[LC]/g) ?? []).length >= 2);
    },
    [id, shapes],
    { timeout },
  );
}

async function svgTexts(page, id) {
  return page.evaluate(
    (testid) => [...document.querySelectorAll(`[data-testid="${testid}"] svg text`)].map((t) => t.textContent),
    id,
  );
}

const PAGES = [
  {
    name: "overview",
    hash: "/",
    async check(page) {
      const health = await (await fetch(`${baseUrl}/health`)).json();
      const version = page.getByTestId("card-pipescope");
      await version.waitFor({ timeout: 10_000 });
      assert.equal((await version.textContent()).trim(), health.version);
      await page.getByText("pipescope-demo-laggard").first().waitFor({ timeout: 10_000 });
      await page.getByText("calls", { exact: true }).first().waitFor({ timeout: 10_000 });
      assert.match(await page.getByTestId("card-kafka-brokers").textContent(), /^1 \/ 1$/);
      // The event stream is either there or says it is not.
      await page.locator("section", { hasText: "Event stream" }).waitFor();
    },
  },
  {
    name: "topics",
    hash: "/topics",
    async check(page) {
      await page.getByTestId("rate-calls").waitFor({ timeout: 10_000 });
      assert.match(await page.getByTestId("rate-calls").textContent(), /^[\d,.]+\/min$/);
      await chartDrawn(page, "chart-topic-rates");
      await chartDrawn(page, "chart-end-offsets");
      assert.ok((await svgTexts(page, "chart-topic-rates")).includes("calls"), "legend names the topic");
      // The table is a page the server sorted and filtered: sort by rate, filter by name.
      const counted = async () => Number((await page.getByTestId("topics-table-count").textContent()).match(/of ([\d,]+) topics$/)[1].replace(/,/g, ""));
      const all = await counted();
      await page.getByTestId("topics-table-sort").selectOption("rate");
      await page.locator('[data-testid="topics-table"] th button[data-sort="rate"][aria-sort="descending"]').waitFor({ state: "attached" });
      assert.match(await page.getByTestId("topics-table-order").textContent(), /descending/);
      await page.getByTestId("topics-table-filter").fill("CALLS");
      await page.waitForFunction((n) => /of ([\d,]+) topics$/.test(document.querySelector('[data-testid="topics-table-count"]')?.textContent ?? "") && !document.querySelector('[data-testid="topics-table-count"]').textContent.endsWith(`of ${n} topics`), String(all), { timeout: 10_000 });
      const kept = await page.locator('[data-testid="topics-table"] tbody tr').allTextContents();
      assert.ok(kept.length > 0 && kept.every((r) => /calls/i.test(r)), kept.join("\n"));
      assert.ok((await counted()) < all);
      await page.getByTestId("topics-table-filter").fill("");
      await page.getByTestId("topics-table-count").filter({ hasText: `of ${all} topics` }).waitFor({ timeout: 10_000 });
    },
  },
  {
    name: "topic",
    hash: "/topics/demo/calls",
    async check(page) {
      await page.getByTestId("partitions-table").waitFor({ timeout: 10_000 });
      assert.equal(await page.locator('[data-testid="partitions-table"] tbody tr').count(), 3);
      await chartDrawn(page, "chart-partition-rates");
      await chartDrawn(page, "chart-partition-offsets");
      await page.getByTestId("topic-alerts").waitFor();
    },
  },
  {
    name: "groups",
    hash: "/groups",
    async check(page) {
      await page.getByTestId("lag-pipescope-demo-laggard").waitFor({ timeout: 10_000 });
      const rows = await page.locator('[data-testid="groups-table"] tbody tr').allTextContents();
      assert.ok(rows.some((r) => r.includes("pipescope-process-calls")), rows.join("\n"));
      assert.ok(rows.every((r) => /OK|WARN|STALLED|STOPPED|REWOUND/.test(r)), `every group has a verdict:\n${rows.join("\n")}`);
      await chartDrawn(page, "chart-group-lag");
      // The chart draws the groups with the most lag (its top 10 over the range).
      assert.ok((await svgTexts(page, "chart-group-lag")).includes("pipescope-demo-laggard"), "legend names the laggard");
    },
  },
  {
    name: "group",
    hash: "/groups/demo/pipescope-demo-laggard",
    async check(page) {
      await page.getByTestId("group-partitions").waitFor({ timeout: 10_000 });
      assert.equal(await page.locator('[data-testid="group-partitions"] tbody tr').count(), 3);
      assert.match(await page.getByTestId("group-verdict").textContent(), /OK|WARN|STALLED|STOPPED|REWOUND/);
      // The card shows the group's alerts as the API lists them (the demo's lag rule: above
      // 15 offsets; the laggard's lag comes and goes around it).
      const alerts = page.getByTestId("group-alerts");
      let text = "";
      let shown = false;
      for (const until = Date.now() + 30_000; !shown && Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
        const api = await (await fetch(`${baseUrl}/api/v1/alerts`)).json();
        const mine = api.alerts.filter((a) => a.labels.group === "pipescope-demo-laggard" && a.state !== "resolved");
        const want = mine.some((a) => a.state === "firing") ? /firing/ : mine.length > 0 ? /pending/ : /none/;
        text = await alerts.textContent();
        shown = want.test(text);
      }
      assert.ok(shown, `the group's alert card says ${text}`);
      // tansu cannot describe groups: the members section says so instead of breaking.
      await page.locator("section", { hasText: "Members and assignments" }).waitFor();
      await chartDrawn(page, "chart-partition-lag");
    },
  },
  {
    name: "mqtt",
    hash: "/mqtt/demo?root=demo",
    async check(page) {
      // The sunburst is sized by the last minute's messages: publish again, so the hostile
      // topic has a sector however long ago the first message was.
      await publish(HOSTILE_TOPIC, "<b>payload</b>");
      await page.getByTestId("topic-tree").waitFor({ timeout: 10_000 });
      await page.getByTestId("tree-filter").fill("onerror");
      const row = page.locator(`[data-testid="topic-tree"] tr[data-topic="${HOSTILE_TOPIC}"]`);
      await row.waitFor({ timeout: 10_000 });
      assert.ok((await row.textContent()).includes(HOSTILE), "the tree shows the topic's characters");
      assert.ok((await row.textContent()).includes("<b>payload</b>"), "the payload preview is text");
      await chartDrawn(page, "sunburst", 2);
      await page.waitForFunction(
        (name) => [...document.querySelectorAll('[data-testid="sunburst"] svg text')].some((t) => t.textContent === name),
        HOSTILE,
        { timeout: 10_000 },
      );
      // The tooltip of the topic's sector shows the name as text too.
      const tip = page.locator(".tip-title", { hasText: "onerror" });
      assert.equal((await hoverUntilVisible(page, "sunburst", tip)).trim(), HOSTILE_TOPIC);
      await chartDrawn(page, "sys-pipescope_mqtt_broker_uptime_seconds");
      assert.equal(await page.evaluate(() => document.querySelectorAll("img").length), 0, "no element made from a name");
    },
  },
  {
    name: "mqtt-tree",
    hash: "/mqtt/demo",
    async check(page) {
      await chartDrawn(page, "sunburst", 4);
      await page.getByTestId("topic-tree").getByText("plant", { exact: true }).waitFor({ timeout: 10_000 });
    },
  },
  {
    name: "flow",
    hash: "/flow",
    async check(page) {
      await chartDrawn(page, "flow-graph", 3);
      await page.waitForFunction(
        () => {
          const texts = [...document.querySelectorAll('[data-testid="flow-graph"] svg text')].map((t) => t.textContent);
          // On a phone a long group name is cut to its slot (the tooltip has it whole).
          return texts.includes("calls") && texts.some((t) => t.startsWith("pipescope-demo"));
        },
        undefined,
        { timeout: 10_000 },
      );
      // The demo's observed flows: the MQTT subtree, the origin kinds, and (on a wide screen;
      // a phone has them in the tooltips) edges labelled with loss.
      const wide = page.viewportSize().width >= 600;
      await page.waitForFunction(
        (wide) => {
          const texts = [...document.querySelectorAll('[data-testid="flow-graph"] svg text')].map((t) => t.textContent ?? "");
          return (
            texts.includes("machine/#") &&
            texts.some((t) => t.startsWith("origin demo-sim")) &&
            (!wide || texts.some((t) => /lost \d/.test(t)))
          );
        },
        wide,
        { timeout: 10_000 },
      );
    },
  },
  {
    name: "flows",
    hash: "/flows",
    async check(page) {
      const rows = page.locator('[data-testid="flows"] tbody tr');
      await rows.first().waitFor({ timeout: 10_000 });
      assert.deepEqual((await rows.allTextContents()).map((r) => r.split("mqtt")[0].split("kafka")[0]).sort(), ["calls", "machines"]);
    },
  },
  {
    name: "flow machines",
    hash: "/flows/machines",
    async check(page) {
      // A flow configured in the demo: MQTT machine/# → Kafka machine.data (both counting) →
      // process machines' output, machine.out, counted by the readings its windows name.
      const hops = page.locator('[data-testid="flow-hops"] tbody tr');
      await hops.first().waitFor({ timeout: 10_000 });
      const text = await hops.allTextContents();
      assert.equal(text.length, 3, text.join("\n"));
      assert.match(text[0], /^mqtt:demo:machine\/#/);
      assert.match(text[1], /^kafka:demo:machine\.data/);
      assert.match(text[2], /^kafka:demo:machine\.out/);
      const records = await page.locator('[data-testid="flow-hops"] tbody tr td[data-label="records"]').allTextContents();
      assert.ok(records.slice(0, 2).every((r) => /[1-9]/.test(r)), `the first two hops counted records: ${records}`);
      const edges = page.locator('[data-testid="flow-edges"] tbody tr');
      assert.equal(await edges.count(), 2);
      assert.match(await edges.first().textContent(), /mqtt:demo:machine\/# → kafka:demo:machine\.data/);
      assert.match(await edges.nth(1).textContent(), /kafka:demo:machine\.data → kafka:demo:machine\.out/);
      await page.getByTestId("chart-hop-p99").waitFor();
    },
  },
  {
    name: "quality",
    hash: "/quality",
    async check(page) {
      // The demo's visits, with empty, null and malformed records on purpose.
      const rows = page.locator('[data-testid="quality-topics"] tbody tr');
      await rows.first().waitFor({ timeout: 10_000 });
      const text = await rows.allTextContents();
      assert.equal(text.length, 1, text.join("\n"));
      assert.match(text[0], /^visits/);
    },
  },
  {
    name: "quality visits",
    hash: "/quality/visits",
    async check(page) {
      const rules = page.locator('[data-testid="quality-rules"] tbody tr');
      await rules.first().waitFor({ timeout: 10_000 });
      // user_id and page: required, not_null, not_empty; duration_ms: type and range.
      assert.equal(await rules.count(), 8, (await rules.allTextContents()).join("\n"));
      assert.match(await page.getByTestId("quality-errors").textContent(), /[1-9]/);
      await page.getByTestId("chart-rule-errors").waitFor();
    },
  },
  {
    name: "alerts",
    hash: "/alerts",
    async check(page) {
      // The demo's three rules; its visits break quality rules on purpose, so that rule fires
      // once it has held for its 10 s.
      const rules = page.locator('[data-testid="alert-rules"] tbody tr');
      await rules.first().waitFor({ timeout: 10_000 });
      assert.equal(await rules.count(), 3, (await rules.allTextContents()).join("\n"));
      const firing = page.locator('[data-testid="alerts-firing-table"] tbody tr');
      await firing.first().waitFor({ timeout: 60_000 });
      assert.match(await firing.first().textContent(), /firing.*visits_errors.*quality=visits/);
      // Silence the firing alert from its row: the form takes its labels, the API lists the
      // silence, the row says silenced; expiring it lifts that.
      await firing.first().getByTestId("silence-alert").click();
      assert.match(await page.getByTestId("silence-matchers").inputValue(), /alertname=visits_errors/);
      await page.getByTestId("silence-by").fill("browser test");
      await page.getByTestId("silence-add").click();
      await page.getByTestId("silence-message").filter({ hasText: /added/ }).waitFor({ timeout: 10_000 });
      const active = page.locator('[data-testid="silences"] tbody tr', { hasText: "active" });
      await active.first().waitFor({ timeout: 10_000 });
      assert.match(await active.first().textContent(), /alertname=visits_errors.*browser test/);
      await firing.first().getByText("silenced").waitFor({ timeout: 10_000 });
      await active.first().getByTestId("silence-expire").click();
      await active.first().waitFor({ state: "detached", timeout: 10_000 });
      await firing.first().getByTestId("silence-alert").waitFor({ timeout: 10_000 });
      const sources = await page.locator('[data-testid="ready-sources"] tbody tr').allTextContents();
      assert.ok(sources.some((s) => /^kafka\s*demo/.test(s)), sources.join("\n"));
      assert.ok(sources.some((s) => /^store/.test(s)), sources.join("\n"));
    },
  },
];

for (const spec of PAGES) {
  test(`${spec.name} page loads with data and charts`, async () => {
    const { page, problems, close } = await openPage(spec.hash);
    try {
      await spec.check(page);
      assert.equal(await page.locator("p.error[role=alert]:not([hidden])").count(), 0, "the page shows an error");
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });
}

test("screenshots of every page (desktop and phone, light and dark)", async () => {
  for (const viewport of VIEWPORTS) {
    for (const scheme of SCHEMES) {
      for (const spec of PAGES) {
        const { page, problems, close } = await openPage(spec.hash, viewport, scheme);
        try {
          await spec.check(page);
          assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), scheme);
          // Nothing wider than the screen but what scrolls inside its own box.
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(overflow <= 1, `${spec.name} is ${overflow}px wider than a ${viewport.width}px screen`);
          await page.screenshot({ path: path.join(artifacts, `${spec.name}-${viewport.name}-${scheme}.png`), fullPage: true });
          if (spec.name === "mqtt-tree") {
            await page.getByTestId("sunburst").screenshot({ path: path.join(artifacts, `sunburst-${viewport.name}-${scheme}.png`) });
          }
          assert.deepEqual(problems, [], `${spec.name} ${viewport.name} ${scheme}`);
        } finally {
          await close();
        }
      }
    }
  }
});

test("a live value changes within 15 s without a reload", async () => {
  const { page, problems, close } = await openPage("/topics");
  try {
    const offsets = page.getByTestId("offsets-calls");
    await offsets.waitFor({ timeout: 10_000 });
    const before = await offsets.textContent();
    await page.evaluate(() => {
      window.__sameDocument = true;
    });
    const started = Date.now();
    await page.waitForFunction(
      (old) => document.querySelector('[data-testid="offsets-calls"]')?.textContent !== old,
      before,
      { timeout: 15_000 },
    );
    console.log(`# end offset of calls changed from ${before} to ${await offsets.textContent()} in ${Date.now() - started} ms`);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page reloaded");
    const status = await page.getByTestId("live").textContent();
    if (liveStream) assert.match(status, /live/);
    else assert.match(status, /no live stream/);
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
