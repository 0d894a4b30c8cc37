// Runs one browser scenario in a real headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core, and prints its result as JSON.
//
//   echo '{"out_dir": "...", ...}' | node tests/browser/run.mjs <scenario>
//
// <scenario> names tests/browser/scenarios/<scenario>.mjs, which exports
//   async function run(page, args, ctx) -> any JSON value
// `args` is the JSON object read from stdin (on stdin rather than argv, so
// credentials never show in `ps`). The harness sets:
//   out_dir     where screenshots and PDFs go (required; created if missing)
//   base_url    the collector's http://host:port (scenarios use it)
//   timeout_ms  deadline of the whole scenario (default 60000)
// plus whatever the test passes (credentials, ids...).
//
// `ctx` gives:
//   ctx.screenshot(name, page?)  full-page PNG at <out_dir>/<name>.png
//   ctx.pdf(name, page?)         page.pdf() (print media, A4) at <out_dir>/<name>.pdf
//   ctx.until(what, fn, ms?)     polls fn until it returns a truthy value and
//                                returns it, or throws naming `what` after ms
//                                (default 10000): for conditions Playwright's
//                                own auto-waiting locators cannot express
//   ctx.newContext(options?)     another isolated context (cookies and
//                                all: e.g. a second operator) set up like the
//                                first: same defaults, errors collected;
//                                options go to browser.newContext (e.g. a
//                                phone's viewport)
//   ctx.browser, ctx.context     the browser, and the context of `page`
//   ctx.consoleErrors            the pages' console errors so far (failed
//                                loads show there), for error messages
//
// Stdout carries only the final JSON line:
//   {"value": <run's result>, "files": {"<name>.png": "<path>", ...},
//    "console_errors": ["..."]}
// Anything a scenario logs goes to stderr. An uncaught error in a page, a
// thrown error or the deadline fails the run: exit code 1, the reason on
// stderr (the Rust harness shows it).

import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

// Flags for Chromium as root on a machine without network (see
// /work/shared/STACK.md): without the background-networking ones Chromium
// floods the closed network with refused connections.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Every Playwright action waits at most this long for its element.
const ACTION_TIMEOUT_MS = 15000;

console.log = console.error; // stdout is for the result only

const here = dirname(fileURLToPath(import.meta.url));

async function main() {
  const name = process.argv[2] ?? "";
  if (!/^[a-z0-9_-]+$/.test(name)) {
    throw new Error(`scenario name ${JSON.stringify(name)}: expected [a-z0-9_-]+`);
  }
  const file = join(here, "scenarios", `${name}.mjs`);
  let scenario;
  try {
    scenario = await import(pathToFileURL(file).href);
  } catch (e) {
    throw new Error(`cannot load scenario ${file}: ${e.message}`);
  }
  if (typeof scenario.run !== "function") {
    throw new Error(`${file} exports no run(page, args, ctx)`);
  }

  const args = JSON.parse(readFileSync(0, "utf8") || "{}");
  if (typeof args.out_dir !== "string" || args.out_dir === "") {
    throw new Error("args.out_dir (where screenshots and PDFs go) is missing");
  }
  mkdirSync(args.out_dir, { recursive: true });
  const timeoutMs = args.timeout_ms ?? 60000;

  // launch() (not launchPersistentContext) gives every run a fresh
  // temporary profile (--user-data-dir), deleted on close.
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const files = {};
  const consoleErrors = [];
  const pageErrors = [];
  try {
    // Which page said it: its URL, cut short (a data: URL holds a page).
    const where = (page) => page.url().slice(0, 80);
    const watch = (page) => {
      page.on("pageerror", (e) => pageErrors.push(`${where(page)}: ${e.message}`));
      page.on("console", (m) => {
        // A failed load names the resource in its location, not its text.
        const at = m.location()?.url || where(page);
        if (m.type() === "error") consoleErrors.push(`${at.slice(0, 120)}: ${m.text()}`);
      });
    };
    // Every context: a laptop-sized viewport, the action timeout, and its
    // pages' errors collected.
    const newContext = async (options = {}) => {
      const c = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
      c.setDefaultTimeout(ACTION_TIMEOUT_MS);
      c.on("page", watch);
      return c;
    };
    const context = await newContext();
    const page = await context.newPage();

    const ctx = {
      browser,
      context,
      newContext,
      consoleErrors,
      async screenshot(shot, p = page) {
        const path = join(args.out_dir, `${shot}.png`);
        await p.screenshot({ path, fullPage: true });
        files[`${shot}.png`] = path;
        return path;
      },
      async pdf(doc, p = page) {
        const path = join(args.out_dir, `${doc}.pdf`);
        await p.pdf({ path, format: "A4", printBackground: true });
        files[`${doc}.pdf`] = path;
        return path;
      },
      async until(what, fn, ms = 10000) {
        const deadline = Date.now() + ms;
        for (;;) {
          const v = await fn();
          if (v) return v;
          if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    };

    let timer;
    const deadline = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`scenario ${name} still running after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    let value;
    try {
      value = await Promise.race([scenario.run(page, args, ctx), deadline]);
    } finally {
      clearTimeout(timer);
    }
    if (pageErrors.length > 0) {
      throw new Error(`uncaught errors in the page:\n  ${pageErrors.join("\n  ")}`);
    }
    process.stdout.write(
      `${JSON.stringify({ value: value ?? null, files, console_errors: consoleErrors })}\n`,
    );
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`browser scenario failed: ${e.stack ?? e}\n`);
    process.exit(1);
  },
);
