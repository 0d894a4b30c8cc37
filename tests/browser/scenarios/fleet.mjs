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
  await page.locator("#chart-status").waitFor();
  await ctx.until("the charts to load or say why not", async () =>
    !(await page.locator("#chart-status").innerText()).startsWith("Loading"));
  const chartStatus = await page.locator("#chart-status").innerText();
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
    chart_status: chartStatus,
    viewer: {
      fleet_has_host: fleetText.includes(args.host),
      fleet_has_other: fleetText.includes(args.other_host),
      host_status: hostResp.status(),
      noc_has_other: nocText.includes(args.other_host),
    },
  };
}
