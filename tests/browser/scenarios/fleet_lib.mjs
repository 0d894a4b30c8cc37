// Steps the fleet scenarios share (not a scenario itself: no run()).

import { readFileSync, writeFileSync } from "node:fs";

/** Signs in through the login form; lands on the fleet. */
export async function signIn(page, base, who) {
  await page.goto(`${base}/login`);
  await page.fill("#username", who.user);
  await page.fill("#password", who.password);
  await Promise.all([page.waitForURL(`${base}/`), page.click("button[type=submit]")]);
}

/**
 * On the open fleet page: waits until its live feed is connected, writes
 * args.ready_file (the test then makes args.host CRIT and writes the commit
 * time, Unix ms, to args.changed_file), waits for the row to turn CRIT.
 * Returns the delay from commit to the browser showing it, and whether the
 * page reloaded meanwhile (it must not).
 */
export async function watchTurnCrit(page, args, ctx) {
  await page.locator(".fleet[data-live=connected]").waitFor();
  const row = `#fleet-live tr[data-host="${args.host}"]`;
  const before = await page.getAttribute(row, "data-state");
  if (before !== "ok") throw new Error(`${args.host} is ${before}, not ok, before the change`);
  await page.evaluate(() => { window.__notReloaded = true; });
  writeFileSync(args.ready_file, "ready");
  await page.locator(`${row}[data-state="crit"]`).waitFor({ timeout: 20000 });
  const seenAt = Date.now();
  const changedAt = Number(
    await ctx.until("the change's commit time", () => {
      try { return readFileSync(args.changed_file, "utf8"); } catch { return null; }
    }),
  );
  const reloaded = !(await page.evaluate(() => window.__notReloaded === true));
  return { delay_ms: seenAt - changedAt, reloaded, row };
}
