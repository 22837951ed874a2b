/* Card import: the file goes to POST /api/imports (multipart, CSRF header); valid rows are
   stored, invalid rows quarantined with every error, downloadable as CSV or Excel. */
(function () {
  "use strict";
  const form = document.getElementById("import-form");
  const box = document.querySelector("[data-result]");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    button.textContent = YF.t("import.running");
    const meta = document.querySelector('meta[name="csrf-token"]');
    let r;
    try {
      r = await fetch("/api/imports", {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "X-CSRF-Token": meta ? meta.content : "", Accept: "application/json" },
      });
    } finally {
      button.disabled = false;
      button.textContent = YF.t("import.submit");
    }
    const data = await r.json().catch(() => null);
    if (!r.ok) { YF.toast(YF.errorText({ ok: false, status: r.status, data: data }), "error"); return; }
    box.classList.remove("hidden");
    const rows = [["import.file", data.filename], ["import.total", data.rows_total], ["import.stored", data.rows_stored],
      ["import.duplicate", data.rows_duplicate], ["import.quarantined", data.rows_quarantined],
      ["import.flags", data.duplicate_flags === null ? "—" : data.duplicate_flags]];
    if (data.already_imported) rows.push(["import.already", "✓"]);
    box.querySelector("[data-counts]").innerHTML = rows.map(([k, v]) => "<div><dt>" + YF.esc(YF.t(k)) + "</dt><dd>" + YF.esc(v) + "</dd></div>").join("");
    box.querySelector("[data-reports]").innerHTML = data.rows_quarantined
      ? '<a class="button" href="/api/imports/' + data.id + '/errors.csv">' + YF.esc(YF.t("import.errors_csv")) + '</a><a class="button" href="/api/imports/' + data.id + '/errors.xlsx">' + YF.esc(YF.t("import.errors_xlsx")) + "</a>"
      : "";
  });
})();
