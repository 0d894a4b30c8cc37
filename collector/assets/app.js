// Forewarn dashboard script: small glue around htmx, served at
// asset_url("app.js"). Pages must stay readable with JavaScript off.

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
