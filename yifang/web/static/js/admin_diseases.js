/* Disease settings: the catalog's diseases (GET /api/diseases) with filters; one disease's
   settings edited in a dialog (PATCH /api/diseases/{code}, only the changed fields, with a
   reason), a new disease (POST /api/diseases), its edit history and a reset to the data file. */
(function () {
  "use strict";
  const codes = (window.YF_CATALOG || {}).codes || {};
  const tbody = document.querySelector("[data-diseases]");
  const filters = document.getElementById("disease-filters");
  const count = document.querySelector("[data-count]");
  const dialog = document.getElementById("disease-dialog");
  const form = document.getElementById("disease-form");
  const subtypeBox = form.querySelector("[data-subtypes]");

  const TEXT = ["name_zh", "name_en", "disease_class", "parent_code", "national_code", "icd10", "transmission_route", "valid_from", "valid_to"];
  const NUMBERS = ["report_limit_hours", "review_limit_hours", "duplicate_window_days", "incubation_min_days",
    "incubation_mean_days", "incubation_max_days", "serial_interval_mean_days", "serial_interval_sd_days"];
  const FLAGS = ["managed_as_class_a", "active"];

  let diseases = [];
  let editing = null; // the disease in the dialog, or null when adding one

  const name = (d) => (YF.lang === "en" ? d.name_en : d.name_zh);
  const other = (d) => (YF.lang === "en" ? d.name_zh : d.name_en);
  const label = (list, code) => YF.label(codes[list], code);
  const sep = YF.lang === "en" ? ", " : "、";
  /** A classification's label without the word "case" (the column says it). */
  const short = (text) => text.replace(/病例$/, "").replace(/ case$/, "");
  const num = (v) => (v === null || v === undefined ? "" : String(Number(v)));

  /** Parents first, each followed by its children (the API orders by class, then code). */
  function treeOrder(rows) {
    const byParent = {};
    const known = new Set(rows.map((d) => d.code));
    for (const d of rows) {
      const p = d.parent_code && known.has(d.parent_code) ? d.parent_code : "";
      (byParent[p] = byParent[p] || []).push(d);
    }
    const out = [];
    const walk = (d, depth) => {
      out.push(Object.assign({ depth: depth }, d));
      for (const c of byParent[d.code] || []) walk(c, depth + 1);
    };
    for (const d of byParent[""] || []) walk(d, 0);
    return out;
  }

  function incubation(d) {
    const lo = d.incubation_min_days, mean = d.incubation_mean_days, hi = d.incubation_max_days;
    if (lo === null && hi === null && mean === null) return "—";
    const range = lo !== null && hi !== null ? num(lo) + "–" + num(hi) : num(lo !== null ? lo : hi);
    return range + (mean !== null ? " (" + num(mean) + ")" : "");
  }

  function row(d) {
    const classes = [d.depth ? "child" : "", d.active ? "" : "inactive"].join(" ").trim();
    const classBadge = '<span class="badge' + (d.disease_class === "A" ? " class-a" : "") + '">' + YF.esc(YF.t("catalog.class." + d.disease_class)) + "</span>" +
      (d.managed_as_class_a ? ' <span class="badge class-a" title="' + YF.esc(YF.t("catalog.managed_as_a")) + '">' + YF.esc(YF.t("catalog.as_a")) + "</span>" : "");
    const state = '<span class="badge ' + (d.active ? "reviewed" : "deleted") + '">' + YF.esc(YF.t(d.active ? "catalog.active" : "catalog.inactive")) + "</span>" +
      (d.edited_by ? ' <span class="badge edited" title="' + YF.esc(YF.t("catalog.edited_by", { user: d.edited_by })) + '">' +
        YF.esc(YF.t(d.source_version === "admin" ? "catalog.added" : "catalog.edited")) + "</span>" : "");
    const validity = d.valid_from || d.valid_to ? YF.esc((d.valid_from || "…") + " – " + (d.valid_to || "…")) : "—";
    const si = d.serial_interval_mean_days === null ? "—" : num(d.serial_interval_mean_days) + (d.serial_interval_sd_days !== null ? " ± " + num(d.serial_interval_sd_days) : "");
    return '<tr data-code="' + YF.esc(d.code) + '"' + (classes ? ' class="' + classes + '"' : "") + ">" +
      "<td><code>" + YF.esc(d.code) + "</code>" + (d.national_code ? "<small>" + YF.esc(d.national_code) + "</small>" : "") + "</td>" +
      "<td>" + (d.depth ? "└ " : "") + YF.esc(name(d)) + "<small>" + YF.esc(other(d)) + "</small></td>" +
      "<td>" + classBadge + "</td>" +
      '<td class="num">' + d.report_limit_hours + '</td><td class="num">' + d.review_limit_hours + "</td>" +
      "<td>" + YF.esc(d.classifications.map((c) => short(label("case_classification", c))).join(sep)) + "</td>" +
      '<td class="opt">' + YF.esc(d.chronicity.map((c) => label("chronicity", c)).join(sep) || "—") + "</td>" +
      '<td class="opt">' + YF.esc(d.subtypes.map((s) => s.code).join(", ") || "—") + "</td>" +
      '<td class="num">' + YF.esc(incubation(d)) + '</td><td class="num opt">' + YF.esc(si) + "</td>" +
      '<td class="num">' + d.duplicate_window_days + '</td><td class="opt">' + validity + "</td>" +
      "<td>" + state + "</td>" +
      '<td><button type="button" data-edit="' + YF.esc(d.code) + '">' + YF.esc(YF.t("catalog.edit")) + "</button></td></tr>";
  }

  function matches(d, f) {
    if (f.class && d.disease_class !== f.class) return false;
    if (f.active && String(d.active) !== f.active) return false;
    if (f.edited === "yes" && !d.edited_by) return false;
    if (f.edited === "no" && d.edited_by) return false;
    if (f.q) {
      const hay = [d.code, d.name_zh, d.name_en, d.national_code || "", d.icd10 || ""].join(" ").toLowerCase();
      if (!hay.includes(f.q.toLowerCase())) return false;
    }
    return true;
  }

  function draw() {
    const f = Object.fromEntries(new FormData(filters));
    const shown = treeOrder(diseases).filter((d) => matches(d, f));
    tbody.innerHTML = shown.length ? shown.map(row).join("")
      : '<tr><td colspan="14" class="empty">' + YF.esc(YF.t("catalog.no_match")) + "</td></tr>";
    count.textContent = YF.t("catalog.count", { shown: shown.length, total: diseases.length });
  }

  async function load() {
    const r = await YF.api("GET", "/api/diseases");
    if (!r.ok) { tbody.innerHTML = '<tr><td colspan="14" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
    diseases = r.data;
    draw();
  }

  // --- the dialog ---------------------------------------------------------------------------

  function subtypeRow(s) {
    const div = document.createElement("div");
    div.className = "subtype-row";
    div.innerHTML = '<input data-sub="code" maxlength="16" placeholder="' + YF.esc(YF.t("catalog.subtype_code")) + '" aria-label="' + YF.esc(YF.t("catalog.subtype_code")) + '">' +
      '<input data-sub="name_zh" maxlength="64" placeholder="' + YF.esc(YF.t("catalog.field.name_zh")) + '" aria-label="' + YF.esc(YF.t("catalog.field.name_zh")) + '">' +
      '<input data-sub="name_en" maxlength="128" placeholder="' + YF.esc(YF.t("catalog.field.name_en")) + '" aria-label="' + YF.esc(YF.t("catalog.field.name_en")) + '">' +
      '<button type="button" data-remove-subtype aria-label="' + YF.esc(YF.t("catalog.remove")) + '">✕</button>';
    if (s) for (const k of ["code", "name_zh", "name_en"]) div.querySelector('[data-sub="' + k + '"]').value = s[k] || "";
    subtypeBox.appendChild(div);
  }

  function readSubtypes() {
    return Array.from(subtypeBox.querySelectorAll(".subtype-row")).map((r) => ({
      code: r.querySelector('[data-sub="code"]').value.trim(),
      name_zh: r.querySelector('[data-sub="name_zh"]').value.trim(),
      name_en: r.querySelector('[data-sub="name_en"]').value.trim(),
    })).filter((s) => s.code || s.name_zh || s.name_en);
  }

  /** The form as the API's disease fields. */
  function values() {
    const v = {};
    for (const k of TEXT.concat(NUMBERS, FLAGS)) v[k] = YC.read(form, k);
    v.classifications = YC.checked(form, "classifications");
    v.chronicity = YC.checked(form, "chronicity");
    v.subtypes = readSubtypes();
    return v;
  }

  /** A stored disease in the shape of `values()`, for comparison. */
  function stored(d) {
    const v = {};
    for (const k of TEXT.concat(NUMBERS, FLAGS)) v[k] = d[k] === undefined ? null : d[k];
    v.classifications = d.classifications.slice();
    v.chronicity = d.chronicity.slice();
    v.subtypes = d.subtypes.map((s) => ({ code: s.code, name_zh: s.name_zh, name_en: s.name_en }));
    return v;
  }

  function fillParents(except) {
    const select = form.elements.parent_code;
    select.innerHTML = '<option value="">—</option>' + treeOrder(diseases).filter((d) => d.code !== except)
      .map((d) => '<option value="' + YF.esc(d.code) + '">' + (d.depth ? "└ " : "") + YF.esc(name(d) + " " + d.code) + "</option>").join("");
  }

  function fill(d) {
    form.reset();
    YC.clearErrors(form);
    fillParents(d ? d.code : null);
    const v = d ? stored(d) : { disease_class: "C", report_limit_hours: 24, review_limit_hours: 24, duplicate_window_days: 90,
      active: true, classifications: ["1", "2", "3"], chronicity: [], subtypes: [] };
    for (const k of TEXT.concat(NUMBERS, FLAGS)) YC.write(form, k, v[k]);
    form.querySelectorAll('input[name="classifications"]').forEach((i) => { i.checked = (v.classifications || []).includes(i.value); });
    form.querySelectorAll('input[name="chronicity"]').forEach((i) => { i.checked = (v.chronicity || []).includes(i.value); });
    subtypeBox.innerHTML = "";
    (v.subtypes || []).forEach(subtypeRow);
  }

  function open(d) {
    editing = d;
    fill(d);
    form.elements.code.value = "";
    dialog.querySelectorAll("[data-create-only]").forEach((el) => el.classList.toggle("hidden", !!d));
    dialog.querySelectorAll("[data-edit-only]").forEach((el) => el.classList.toggle("hidden", !d));
    dialog.querySelector("[data-parent-note]").classList.toggle("hidden", !(d && d.leaf === false));
    dialog.querySelector("[data-reset-disease]").classList.toggle("hidden", !(d && d.edited_by && d.source_version !== "admin"));
    dialog.querySelector("[data-dialog-title]").textContent = d ? YF.t("catalog.edit_disease", { name: name(d), code: d.code }) : YF.t("catalog.new_disease");
    dialog.querySelector("[data-provenance]").textContent = !d ? ""
      : d.edited_by ? YF.t("catalog.edited_by_at", { user: d.edited_by, time: YF.fmtTime(d.updated_at) })
      : YF.t("catalog.from_file_version", { version: d.source_version || "—" });
    if (d) YC.history("/api/diseases/" + encodeURIComponent(d.code) + "/history", dialog.querySelector("[data-history]"), dialog.querySelector("[data-history-count]"));
    dialog.showModal();
    (d ? form.elements.report_limit_hours : form.elements.code).focus();
  }

  async function save() {
    const v = values();
    const r = await YC.submit(form, "/api/diseases", editing, editing && stored(editing), v);
    if (!r) return;
    if (!r.ok) { YC.showErrors(form, r); return; }
    dialog.close();
    YF.toast(YF.t("catalog.saved", { name: name(r.data) }), "ok");
    await load();
    YC.flash(tbody, r.data.code);
  }

  async function reset() {
    if (!editing || !confirm(YF.t("catalog.reset_confirm", { name: name(editing) }))) return;
    const r = await YF.api("POST", "/api/diseases/" + encodeURIComponent(editing.code) + "/reset");
    if (!r.ok) { YC.showErrors(form, r); return; }
    dialog.close();
    YF.toast(YF.t("catalog.was_reset", { name: name(r.data) }), "ok");
    await load();
    YC.flash(tbody, r.data.code);
  }

  filters.addEventListener("input", draw);
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); draw(); });
  tbody.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-edit]");
    if (!b) return;
    const d = diseases.find((x) => x.code === b.dataset.edit);
    if (d) open(d);
  });
  document.querySelector("[data-new-disease]").addEventListener("click", () => open(null));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); save(); });
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  dialog.querySelector("[data-reset-disease]").addEventListener("click", reset);
  dialog.querySelector("[data-add-subtype]").addEventListener("click", () => subtypeRow(null));
  subtypeBox.addEventListener("click", (ev) => { const b = ev.target.closest("[data-remove-subtype]"); if (b) b.parentElement.remove(); });
  load();
})();
