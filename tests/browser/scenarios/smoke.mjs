// The dashboard's plumbing, in a real Chromium: the collector serves its
// embedded htmx, SSE extension and uPlot at hashed URLs, and a page that
// loads them from the collector gets working libraries. Then a screenshot
// and a PDF, to prove the harness's file output.
//
// args: base_url, and assets: {"htmx.js": "/assets/htmx-<hash>.js", ...}
// (the URLs the collector's templates would use).

export async function run(page, args, ctx) {
  for (const name of ["htmx.js", "htmx-ext-sse.js", "uplot.js", "uplot.css"]) {
    if (!args.assets?.[name]) throw new Error(`args.assets has no ${name}`);
  }

  // The asset itself, loaded as a document: what the browser sees.
  const resp = await page.goto(`${args.base_url}${args.assets["htmx.js"]}`);
  const asset = {
    status: resp.status(),
    content_type: resp.headers()["content-type"],
    cache_control: resp.headers()["cache-control"],
    starts_with: (await resp.text()).slice(0, 20),
  };

  // A page that uses the collector's files, at a URL of the collector's
  // origin (where the dashboard's pages live) that Playwright answers
  // itself: the collector has no such page, only the assets are real. (A
  // data: URL page cannot be used: Chromium's local-network-access rules
  // block a non-secure page of another origin from loading loopback
  // resources.)
  const pageUrl = `${args.base_url}/__browser_smoke`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>forewarn assets smoke</title>
<link rel="stylesheet" href="${args.assets["uplot.css"]}">
<script src="${args.assets["htmx.js"]}"></script>
<script src="${args.assets["htmx-ext-sse.js"]}"></script>
<script src="${args.assets["uplot.js"]}"></script>
</head><body hx-ext="sse">
<h1>forewarn: embedded assets</h1>
<div id="chart"></div>
</body></html>`;
  await page.route(pageUrl, (route) =>
    route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: html }),
  );
  await page.goto(pageUrl);

  // Classic <script>s ran before "load", which goto awaited; draw a chart
  // with uPlot and wait for its canvas (auto-waiting locator).
  const libs = await page.evaluate(() => {
    const out = {
      htmx_version: window.htmx?.version ?? null,
      // htmx-ext-sse's init() (run by htmx.defineExtension) installs this.
      sse_extension: typeof window.htmx?.createEventSource === "function",
      uplot: typeof window.uPlot,
    };
    if (typeof window.uPlot === "function") {
      const xs = [1, 2, 3, 4, 5, 6];
      new window.uPlot(
        { title: "load", width: 600, height: 240, series: [{}, { label: "load", stroke: "#c0392b" }] },
        [xs, [0.4, 0.9, 1.6, 1.2, 2.4, 1.1]],
        document.getElementById("chart"),
      );
    }
    return out;
  });
  if (!libs.htmx_version || !libs.sse_extension || libs.uplot !== "function") {
    throw new Error(
      `libraries missing: ${JSON.stringify(libs)}; console: ${ctx.consoleErrors.join(" | ")}`,
    );
  }
  await page.locator("#chart .uplot canvas").waitFor();
  // uPlot.min.css sets `box-sizing: border-box` on .uplot (a div's default
  // is content-box): the stylesheet really loaded and applied.
  libs.uplot_css_applied = await page
    .locator("#chart .uplot")
    .evaluate((el) => getComputedStyle(el).boxSizing === "border-box");

  await ctx.screenshot("smoke");
  await ctx.pdf("smoke");
  return { asset, ...libs };
}
