// Browser tests of the portal against a running `pipescope demo`: Debian's Chromium driven by
// playwright-core. Run with `node --test tests/` from web/ (scripts/test does, after the cargo
// tests). The binary is $PIPESCOPE_BIN (default target/debug/pipescope); screenshots go to
// test-artifacts/ at the repository root.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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
  demo = spawn(bin, ["demo", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  demo.stdout.on("data", (d) => (demoOutput += d));
  demo.stderr.on("data", (d) => (demoOutput += d));
  await waitFor("/health from the demo", 40_000, async () => (await fetch(`${baseUrl}/health`)).ok);
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

after(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    const exited = new Promise((resolve) => demo.once("exit", (code) => resolve(code)));
    demo.kill("SIGTERM");
    const code = await exited;
    assert.equal(code, 0, `pipescope demo did not stop cleanly:\n${demoOutput}`);
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

for (const viewport of VIEWPORTS) {
  for (const scheme of SCHEMES) {
    test(`overview shows the version (${viewport.name}, ${scheme})`, async () => {
      const health = await (await fetch(`${baseUrl}/health`)).json();
      const context = await browser.newContext({
        viewport: { width: viewport.width, height: viewport.height },
        colorScheme: scheme,
      });
      const dialogs = [];
      const errors = [];
      const page = await context.newPage();
      page.on("dialog", async (dialog) => {
        dialogs.push(`${dialog.type()}: ${dialog.message()}`);
        await dialog.dismiss();
      });
      page.on("pageerror", (error) => errors.push(String(error)));
      try {
        await page.goto(`${baseUrl}/#/`);
        const version = page.getByTestId("card-pipescope");
        await version.waitFor({ timeout: 10_000 });
        assert.equal((await version.textContent()).trim(), health.version);
        assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), scheme);
        await page.screenshot({
          path: path.join(artifacts, `overview-${viewport.name}-${scheme}.png`),
          fullPage: true,
        });
        assert.deepEqual(dialogs, [], "a dialog opened");
        assert.deepEqual(errors, [], "the page threw");
      } finally {
        await context.close();
      }
    });
  }
}
