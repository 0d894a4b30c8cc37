// Forewarn dashboard script: small glue around htmx, served at
// asset_url("app.js"). Pages must stay readable with JavaScript off.

/* === fleet: live status, host charts === */
(function () {
  "use strict";

  // htmx would add a <style> for its request indicators, which the CSP
  // (style-src 'self') refuses; it reads this before it starts.
  if (window.htmx) window.htmx.config.includeIndicatorStyles = false;

  // Live pages (class "live", hx-ext="sse"): say whether updates flow.
  function liveState(el, state, text) {
    const box = el.closest(".live");
    if (!box) return;
    box.dataset.live = state;
    const s = box.querySelector(".live-status");
    if (s) s.textContent = text;
  }
  document.addEventListener("htmx:sseOpen", (e) => liveState(e.target, "connected", "live"));
  document.addEventListener("htmx:sseError", (e) => liveState(e.target, "reconnecting", "reconnecting…"));

  // Host charts: settings in <script type="application/json" id="host-charts">,
  // series from GET /api/v1/agents/{id}/metrics (docs/metrics-history.md).
  function drawHostCharts() {
    const cfgEl = document.getElementById("host-charts");
    if (!cfgEl || typeof window.uPlot !== "function") return;
    const cfg = JSON.parse(cfgEl.textContent);
    const status = document.getElementById("chart-status");
    const say = (t) => { if (status) status.textContent = t; };
    say("Loading history…");
    fetch(cfg.metrics_url, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then((r) => {
        if (r.status === 404) { say("No history yet."); return null; }
        if (!r.ok) throw new Error(`history: HTTP ${r.status}`);
        return r.json();
      })
      .then((m) => {
        if (!m) return;
        if (!m.at_unix_secs || m.at_unix_secs.length === 0) { say("No history yet."); return; }
        say("");
        drawAll(m);
      })
      .catch((e) => say(`History unavailable (${e.message}).`));
  }

  const COLORS = ["#1565c0", "#b71c1c", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];

  function chart(kind, title, data, series, extra) {
    const el = document.querySelector(`.chart[data-chart="${kind}"]`);
    if (!el) return;
    el.textContent = "";
    const width = Math.max(280, el.clientWidth || 480);
    const opts = Object.assign({
      title: "",
      width,
      height: 200,
      series: [{}].concat(series),
      axes: [{}, { size: 48 }],
    }, extra || {});
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", title);
    new window.uPlot(opts, data, el);
  }

  function line(label, i, more) {
    return Object.assign({ label, stroke: COLORS[i % COLORS.length], width: 2 }, more || {});
  }

  function drawAll(m) {
    const t = m.at_unix_secs;
    chart("cpu", "CPU percent", [t, m.cpu_percent], [line("CPU %", 0)], { scales: { y: { range: [0, 100] } } });
    chart("memory", "Memory percent", [t, m.memory_percent], [line("memory %", 1)], { scales: { y: { range: [0, 100] } } });
    chart("load", "Load averages", [t, m.load1, m.load5, m.load15],
      [line("load 1", 0), line("load 5", 2), line("load 15", 3)]);
    drawDisks(m);
  }

  // Disk used % per mount, and each projection as a dashed line from the
  // latest sample to 100 % at the projected time (the x axis extends to it).
  function drawDisks(m) {
    const disks = m.disks || [];
    const xs = new Set(m.at_unix_secs);
    for (const d of disks) {
      if (d.projection) { xs.add(d.projection.from_unix_secs); xs.add(d.projection.full_unix_secs); }
    }
    const x = Array.from(xs).sort((a, b) => a - b);
    const at = new Map(m.at_unix_secs.map((v, i) => [v, i]));
    const data = [x];
    const series = [];
    const notes = [];
    disks.forEach((d, i) => {
      data.push(x.map((v) => (at.has(v) ? d.used_percent[at.get(v)] : null)));
      series.push(line(d.mount, i));
      if (d.projection) {
        const p = d.projection;
        data.push(x.map((v) => (v === p.from_unix_secs ? p.from_used_percent : v === p.full_unix_secs ? 100 : null)));
        series.push(line(`${d.mount} projected`, i, { dash: [6, 4], spanGaps: true, width: 1.5 }));
        notes.push(`${d.mount} full at ${new Date(p.full_unix_secs * 1000).toLocaleString()}`);
      }
    });
    if (series.length === 0) return;
    chart("disk", "Disk used percent per mount", data, series, { scales: { y: { range: [0, 100] } } });
    const el = document.querySelector('.chart[data-chart="disk"]');
    if (el && notes.length) {
      const p = document.createElement("p");
      p.className = "projection";
      p.textContent = notes.join("; ");
      el.appendChild(p);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawHostCharts);
  } else {
    drawHostCharts();
  }
})();

// === work pages ===
document.addEventListener("DOMContentLoaded", () => {
  // Tenant report: print (or save as PDF from the print dialog).
  const print = document.getElementById("print-report");
  if (print) print.addEventListener("click", () => window.print());

  // Maintenance: show only the fieldsets of the chosen schedule kind
  // (without JavaScript they all show and the radio decides).
  const form = document.getElementById("window-form");
  if (form) {
    const sync = () => {
      const kind = form.querySelector("input[name=schedule]:checked")?.value;
      for (const fs of form.querySelectorAll("fieldset[data-schedule]")) {
        fs.hidden = !fs.dataset.schedule.split(" ").includes(kind);
      }
    };
    form.addEventListener("change", sync);
    sync();
  }
});

/* === copy buttons: <button data-copy="ID"> copies #ID's text === */
(function () {
  "use strict";
  document.addEventListener("click", (e) => {
    const btn = e.target.closest("button[data-copy]");
    if (!btn) return;
    const src = document.getElementById(btn.dataset.copy);
    if (!src || !navigator.clipboard) return;
    navigator.clipboard.writeText(src.textContent.trim()).then(
      () => { btn.textContent = "Copied"; },
      () => { btn.textContent = "Select and copy"; }
    );
  });
})();
