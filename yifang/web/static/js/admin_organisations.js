/* Organisations: the registry (GET /api/organisations) with filters; create one
   (POST /api/organisations, with a suggested code), edit one in a dialog
   (PATCH /api/organisations/{code}, only the changed fields, with a reason), its edit
   history and a reset to organisations.csv. */
(function () {
  "use strict";
  const cfg = window.YF_CATALOG || {};
  const kinds = (cfg.codes || {}).organisation_kind || {};
  const regions = {};
  for (const r of cfg.regions || []) regions[r.code] = r;
  const tbody = document.querySelector("[data-orgs]");
  const filters = document.getElementById("org-filters");
  const count = document.querySelector("[data-count]");
  const dialog = document.getElementById("org-dialog");
  const form = document.getElementById("org-form");

  const FIELDS = ["name", "kind", "region_code", "level", "parent_code", "phone", "active"];
  /** Two letters of the code scheme per kind (docs/catalog.md); others get no suggestion. */
  const LETTERS = { cdc: "CD", hospital: "HP", tcm_hospital: "TC", maternal_child: "MC",
    township_health_centre: "TH", community_health_centre: "SQ", clinic: "CL", health_commission: "WJ" };

  let orgs = [];
  let names = {};
  let editing = null; // the organisation in the dialog, or null when adding one
  let suggested = ""; // the code last suggested, replaced while the user has not typed one

  function regionName(code) {
    const r = regions[code];
    if (!r) return code;
    if (r.level === 4 && regions[r.parent]) return regions[r.parent].name + " " + r.name;
    return r.name;
  }

  function row(o) {
    const state = '<span class="badge ' + (o.active ? "reviewed" : "deleted") + '">' + YF.esc(YF.t(o.active ? "catalog.active" : "catalog.inactive")) + "</span>" +
      (o.edited_by ? ' <span class="badge edited" title="' + YF.esc(YF.t("catalog.edited_by", { user: o.edited_by })) + '">' + YF.esc(YF.t("catalog.by_admin")) + "</span>" : "");
    return '<tr data-code="' + YF.esc(o.code) + '"' + (o.active ? "" : ' class="inactive"') + ">" +
      "<td><code>" + YF.esc(o.code) + "</code></td><td>" + YF.esc(o.name) + "</td><td>" + YF.esc(YF.label(kinds, o.kind)) + "</td>" +
      '<td class="opt">' + YF.esc(o.level || "—") + "</td><td>" + YF.esc(regionName(o.region_code)) + "</td>" +
      '<td class="opt">' + YF.esc(o.parent_code ? names[o.parent_code] || o.parent_code : "—") + '</td><td class="opt">' + YF.esc(o.phone || "—") + "</td>" +
      "<td>" + state + '</td><td><button type="button" data-edit="' + YF.esc(o.code) + '">' + YF.esc(YF.t("catalog.edit")) + "</button></td></tr>";
  }

  /** Draw the table; `everything` also reloads the whole registry (names, parents, codes). */
  async function load(everything) {
    if (everything || !orgs.length) {
      const all = await YF.api("GET", "/api/organisations");
      if (!all.ok) { tbody.innerHTML = '<tr><td colspan="9" class="empty">' + YF.esc(YF.errorText(all)) + "</td></tr>"; return; }
      orgs = all.data;
      names = {};
      for (const o of orgs) names[o.code] = o.name;
    }
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (v) params.append(k, v);
    let shown = orgs;
    if (params.toString()) {
      const r = await YF.api("GET", "/api/organisations?" + params.toString());
      if (!r.ok) { tbody.innerHTML = '<tr><td colspan="9" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
      shown = r.data;
    }
    tbody.innerHTML = shown.length ? shown.map(row).join("")
      : '<tr><td colspan="9" class="empty">' + YF.esc(YF.t("catalog.no_match")) + "</td></tr>";
    count.textContent = YF.t("catalog.org_count", { shown: shown.length, total: orgs.length });
  }

  // --- the dialog ---------------------------------------------------------------------------

  function fillParents(except) {
    const select = form.elements.parent_code;
    const options = orgs.filter((o) => o.code !== except)
      .sort((a, b) => (a.kind === "cdc" ? 0 : 1) - (b.kind === "cdc" ? 0 : 1) || a.code.localeCompare(b.code));
    select.innerHTML = '<option value="">—</option>' + options.map((o) => '<option value="' + YF.esc(o.code) + '">' +
      YF.esc(o.name + " · " + o.code) + "</option>").join("");
  }

  /** The next free code for the chosen region and kind: admin code (6 digits, or the
      township's 9) + 2 letters + a 2-digit sequence. */
  function suggestCode() {
    const region = YC.read(form, "region_code");
    const letters = LETTERS[YC.read(form, "kind")];
    if (!region || !letters) return "";
    const owner = region.length === 9 ? region : (region + "000000").slice(0, 6);
    const prefix = owner + letters;
    let next = 1;
    for (const o of orgs) {
      if (o.code.startsWith(prefix) && /^\d\d$/.test(o.code.slice(prefix.length))) next = Math.max(next, Number(o.code.slice(prefix.length)) + 1);
    }
    return next > 99 ? "" : prefix + String(next).padStart(2, "0");
  }

  function updateSuggestion() {
    if (editing) return;
    const input = form.elements.code;
    if (input.value && input.value !== suggested) return; // the user typed a code
    suggested = suggestCode();
    input.value = suggested;
  }

  function stored(o) {
    const v = {};
    for (const k of FIELDS) v[k] = o[k] === undefined ? null : o[k];
    return v;
  }

  function values() {
    const v = {};
    for (const k of FIELDS) v[k] = YC.read(form, k);
    return v;
  }

  function open(o) {
    editing = o;
    suggested = "";
    form.reset();
    YC.clearErrors(form);
    fillParents(o ? o.code : null);
    const v = o ? stored(o) : { active: true };
    for (const k of FIELDS) YC.write(form, k, v[k]);
    if (o && !form.elements.region_code.value) {
      // a region outside the city: offer it as it is
      const opt = document.createElement("option");
      opt.value = o.region_code;
      opt.textContent = o.region_code;
      form.elements.region_code.appendChild(opt);
      form.elements.region_code.value = o.region_code;
    }
    dialog.querySelectorAll("[data-create-only]").forEach((el) => el.classList.toggle("hidden", !!o));
    dialog.querySelectorAll("[data-edit-only]").forEach((el) => el.classList.toggle("hidden", !o));
    dialog.querySelector("[data-reset-org]").classList.toggle("hidden", !(o && o.edited_by));
    dialog.querySelector("[data-dialog-title]").textContent = o ? YF.t("catalog.edit_org", { name: o.name, code: o.code }) : YF.t("catalog.new_org");
    dialog.querySelector("[data-provenance]").textContent = !o ? "" : o.edited_by ? YF.t("catalog.edited_by", { user: o.edited_by }) : YF.t("catalog.from_file");
    if (o) YC.history("/api/organisations/" + encodeURIComponent(o.code) + "/history", dialog.querySelector("[data-history]"), dialog.querySelector("[data-history-count]"));
    dialog.showModal();
    (o ? form.elements.name : form.elements.kind).focus();
  }

  async function save() {
    const v = values();
    const r = await YC.submit(form, "/api/organisations", editing, editing && stored(editing), v);
    if (!r) return;
    if (!r.ok) { YC.showErrors(form, r); return; }
    dialog.close();
    YF.toast(YF.t("catalog.saved", { name: r.data.name }), "ok");
    await load(true);
    YC.flash(tbody, r.data.code);
  }

  async function reset() {
    if (!editing || !confirm(YF.t("catalog.reset_confirm", { name: editing.name }))) return;
    const r = await YF.api("POST", "/api/organisations/" + encodeURIComponent(editing.code) + "/reset");
    if (!r.ok) { YC.showErrors(form, r); return; }
    dialog.close();
    YF.toast(YF.t("catalog.was_reset", { name: r.data.name }), "ok");
    await load(true);
    YC.flash(tbody, r.data.code);
  }

  let timer = null;
  filters.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => load(false), 250); });
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
  tbody.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-edit]");
    if (!b) return;
    const o = orgs.find((x) => x.code === b.dataset.edit);
    if (o) open(o);
  });
  document.querySelector("[data-new-org]").addEventListener("click", () => open(null));
  form.elements.kind.addEventListener("change", updateSuggestion);
  form.elements.region_code.addEventListener("change", updateSuggestion);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); save(); });
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  dialog.querySelector("[data-reset-org]").addEventListener("click", reset);
  load(true);
})();
