// The dashboard's work pages in Chromium: sign in, acknowledge and resolve
// a ticket from the queue, a bulk action, the ticket's timeline, windows
// from the maintenance page, the tenant report printed to PDF, a new
// operator's one-time link, a form without its CSRF token, and a viewer
// who sees no forms and whose forged POST is refused. Screenshots of every
// page for review.
//
// args: base_url, admin {user, password}, viewer {user, password},
//       hosts {ack: host, bulk: [host, host]}, report_tenant, rrule (bool:
//       this build plans RRULE windows).

async function signIn(page, base, who) {
  await page.goto(`${base}/login?next=/tickets`);
  await page.fill("#username", who.user);
  await page.fill("#password", who.password);
  await Promise.all([page.waitForURL(/\/tickets/), page.click("button[type=submit]")]);
}

const row = (page, host) => page.locator("#queue-main tbody tr", { hasText: host });

export async function run(page, args, ctx) {
  const base = args.base_url;
  const out = {};
  await signIn(page, base, args.admin);
  await page.locator("#queue-main table.queue").waitFor();
  await ctx.screenshot("queue");

  // One ticket: acknowledge, then resolve, from its row's form.
  const ackId = await row(page, args.hosts.ack).getAttribute("data-ticket");
  await Promise.all([
    page.waitForURL(/flash=/),
    row(page, args.hosts.ack).getByRole("button", { name: "Acknowledge" }).click(),
  ]);
  out.acked_flash = await page.locator(".flash").innerText();
  await Promise.all([
    page.waitForURL(/flash=.*resolved/),
    row(page, args.hosts.ack).getByRole("button", { name: "Resolve" }).click(),
  ]);
  out.resolve_flash = await page.locator(".flash").innerText();
  await page.goto(`${base}/tickets?state=all&host=${args.hosts.ack}`);
  out.resolved_state = (await row(page, args.hosts.ack).locator("td.state").innerText()).split(" ")[0];

  // The ticket's timeline.
  await page.goto(`${base}/tickets/${ackId}`);
  out.timeline = await page.locator("ol.timeline").innerText();
  await ctx.screenshot("ticket");

  // Bulk: tick two tickets, acknowledge them at once.
  await page.goto(`${base}/tickets`);
  for (const h of args.hosts.bulk) await row(page, h).locator("input[type=checkbox]").check();
  await page.selectOption("#bulk select[name=action]", "acknowledge");
  await Promise.all([page.waitForURL(/flash=/), page.click("#bulk button[type=submit]")]);
  out.bulk_flash = await page.locator(".flash").innerText();

  // Live: the open queue refetches its table when a ticket changes (here,
  // assigned through the API with this session), and a ticked box stays
  // ticked across the swap.
  await page.goto(`${base}/tickets`);
  await page.locator(".live[data-live=connected]").waitFor();
  const liveRows = page.locator("#queue-main tbody tr");
  const liveId = await liveRows.nth(0).getAttribute("data-ticket");
  const keepId = await liveRows.nth(1).getAttribute("data-ticket");
  await page.locator(`#pick-${keepId}`).check();
  // From the page itself, as the dashboard's own scripts would call the API
  // (the session cookie and its CSRF token).
  const status = await page.evaluate(async (id) => {
    const me = await (await fetch("/api/v1/me")).json();
    const r = await fetch(`/api/v1/tickets/${id}/assign`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": me.csrf_token },
      body: JSON.stringify({ assignee: "live-check" }),
    });
    return r.status;
  }, liveId);
  if (status !== 200) throw new Error(`assign through the API: HTTP ${status}`);
  await ctx.until(
    "the queue to show the assignment without a reload",
    async () => (await page.locator(`#queue-main tr[data-ticket="${liveId}"]`).innerText()).includes("live-check"),
    10000,
  );
  out.live_kept_tick = await page.locator(`#pick-${keepId}`).isChecked();
  await page.locator(`#pick-${keepId}`).uncheck();

  // A form whose hidden CSRF field was removed: the collector refuses it.
  const form = row(page, args.hosts.bulk[0]).locator("form.ticket-actions");
  await form.locator("input[name=_csrf]").evaluate((el) => el.remove());
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().includes("/act") && r.request().method() === "POST"),
    form.getByRole("button", { name: "Escalate" }).click(),
  ]);
  out.csrf_status = refused.status();

  // Maintenance: a weekly window, then Patch Tuesday (RRULE preset).
  await page.goto(`${base}/maintenance`);
  const wf = page.locator("#window-form");
  const common = async (reason) => {
    await wf.locator("select[name=tenant]").selectOption({ index: 0 });
    await wf.locator("input[name=reason]").fill(reason);
  };
  await common("weekend patching");
  await wf.locator("input[value=weekly]").check();
  for (const d of ["sat", "sun"]) await wf.locator(`input[name=day][value=${d}]`).check();
  await wf.locator("input[name=at]").fill("23:00");
  await wf.locator("input[name=duration]").fill("3h");
  await Promise.all([page.waitForURL(/flash=|error=/), wf.locator("button[type=submit]").click()]);
  out.weekly_schedule = await page.locator("tr", { hasText: "weekend patching" }).locator("td.schedule").innerText();
  await common("Patch Tuesday");
  await wf.locator("input[value=recurring]").check();
  await wf.locator("#preset").selectOption("patch-tuesday");
  await wf.locator("input[name=at]").fill("22:00");
  await wf.locator("input[name=duration]").fill("4h");
  await Promise.all([page.waitForURL(/flash=|error=/), wf.locator("button[type=submit]").click()]);
  if (args.rrule) {
    const tr = page.locator("tr", { hasText: "Patch Tuesday" });
    out.patch_tuesday = await tr.locator("td.schedule").innerText();
    out.patch_tuesday_next = await tr.locator("td.next").innerText();
  } else {
    out.patch_tuesday_error = await page.locator(".flash-errors").innerText();
  }
  await ctx.screenshot("maintenance");

  // The tenant report of this month, printed to PDF.
  await page.goto(`${base}/reports`);
  const link = page.locator("section.report-index", { hasText: args.report_tenant }).locator("a").first();
  await Promise.all([page.waitForURL(/\/reports\/.+\/\d{4}-\d{2}$/), link.click()]);
  out.kpi_tickets = (await page.locator("#kpi-tickets").innerText()).trim();
  out.kpi_escalated = (await page.locator("#kpi-escalated").innerText()).trim();
  out.report_text = await page.locator("article.report-doc").innerText();
  await ctx.screenshot("report");
  await ctx.pdf("report");

  // Policies and audit, for review.
  await page.goto(`${base}/policies`);
  await ctx.screenshot("policies");
  await page.goto(`${base}/audit`);
  await ctx.screenshot("audit");

  // A new operator: the one-time setup link shows once.
  await page.goto(`${base}/admin`);
  await page.fill("#add-operator input[name=username]", "newbie");
  await page.selectOption("#add-operator select[name=role]", "technician");
  await page.locator("#add-operator input[name=tenant]").first().check();
  await page.click("#add-operator button[type=submit]");
  out.setup_link = (await page.locator("#secret-value").innerText()).trim();
  await ctx.screenshot("admin");

  // A viewer: no action forms; a forged POST with their own token is refused.
  const vctx = await ctx.newContext();
  const vpage = await vctx.newPage();
  await signIn(vpage, base, args.viewer);
  out.viewer_forms = await vpage.locator("form.ticket-actions, #bulk").count();
  out.viewer_post_status = await vpage.evaluate(async (id) => {
    const token = document.querySelector("input[name=_csrf]").value;
    const r = await fetch(`/tickets/${id}/act`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ action: "resolve", _csrf: token }),
      redirect: "manual",
    });
    return r.status;
  }, ackId);
  return out;
}
