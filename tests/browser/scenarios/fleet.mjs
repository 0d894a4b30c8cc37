// The fleet, host and NOC pages in Chromium, signed in for real:
//   1. the msp-admin opens the fleet; once its live feed is connected the
//      scenario writes args.ready_file, the test makes args.host CRIT and
//      writes the commit time (Unix ms) to args.changed_file; the row must
//      turn CRIT without a reload: delay_ms is commit → seen;
//   2. screenshots of the fleet, the host page and the NOC wall;
//   3. a viewer of the host's tenant: args.other_host (another tenant's)
//      is on neither the fleet nor the NOC wall, and its host page is 404.

import { signIn, watchTurnCrit } from "./fleet_lib.mjs";

export async function run(page, args, ctx) {
  const base = args.base_url;
  await signIn(page, base, args.admin);
  const { delay_ms: delayMs, reloaded, row } = await watchTurnCrit(page, args, ctx);
  const counts = await page.locator(".counts").innerText();
  await ctx.screenshot("fleet");

  await page.click(`${row} a[href^="/hosts/"]`);
  await page.locator(`#host-live tr[data-check="disk"][data-state="crit"]`).waitFor();
  const settled = () => ctx.until("the charts to load or say why not", async () =>
    !(await page.locator("#chart-status").innerText()).startsWith("Loading"));
  // The collector's own history (GET /api/v1/agents/{id}/metrics): the
  // simulated host's heartbeats, no disks.
  await settled();
  const real = {
    status: await page.locator("#chart-status").innerText(),
    charts: await page.locator(".chart .uplot").count(),
  };
  // No history (a 404): said so.
  const metrics = "**/api/v1/agents/*/metrics*";
  await page.route(metrics, (route) => route.fulfill({ status: 404, contentType: "application/json", body: '{"error":"no","code":"not_found"}' }));
  await page.reload();
  await settled();
  const chartStatus = await page.locator("#chart-status").innerText();
  await page.unroute(metrics);

  // A history in the API's documented shape (docs/metrics-history.md)
  // with a disk filling up, to see the projection drawn.
  const now = Math.floor(Date.now() / 1000);
  const t = Array.from({ length: 60 }, (_, i) => now - (59 - i) * 60);
  const history = {
    agent_id: args.host_id, bucket_secs: null, at_unix_secs: t,
    cpu_percent: t.map((_, i) => 20 + 15 * Math.sin(i / 6)),
    memory_percent: t.map((_, i) => 40 + i / 4),
    swap_percent: t.map(() => null),
    load1: t.map((_, i) => 1 + Math.sin(i / 5)), load5: t.map(() => 1.1), load15: t.map(() => 1.0),
    disks: [
      { mount: "/", used_percent: t.map((_, i) => 80 + i / 4), total_bytes: 53687091200,
        projection: { from_unix_secs: t[59], from_used_percent: 94.75, full_unix_secs: now + 1800,
          full_at: new Date((now + 1800) * 1000).toISOString() } },
      { mount: "/boot", used_percent: t.map(() => 31), total_bytes: 1073741824, projection: null },
    ],
  };
  await page.route(metrics, (route) =>
    route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(history) }));
  await page.reload();
  await page.locator('.chart[data-chart="disk"] .uplot canvas').waitFor();
  const charts = await page.locator(".chart .uplot").count();
  const projection = await page.locator(".projection").innerText();
  await page.unroute(metrics);
  await ctx.screenshot("host");

  await page.goto(`${base}/noc`);
  await page.locator(`.wall-hosts li[data-host="${args.host}"]`).waitFor();
  await ctx.screenshot("noc");

  const viewer = await ctx.newContext();
  const vpage = await viewer.newPage();
  await signIn(vpage, base, args.viewer);
  const fleetText = await vpage.locator("main").innerText();
  const hostResp = await vpage.goto(`${base}/hosts/${args.other_host_id}`);
  await vpage.goto(`${base}/noc`);
  const nocText = await vpage.locator("main").innerText();
  await viewer.close();

  return {
    delay_ms: delayMs,
    reloaded,
    counts,
    real_history: real,
    chart_status: chartStatus,
    charts,
    projection,
    viewer: {
      fleet_has_host: fleetText.includes(args.host),
      fleet_has_other: fleetText.includes(args.other_host),
      host_status: hostResp.status(),
      noc_has_other: nocText.includes(args.other_host),
    },
  };
}
