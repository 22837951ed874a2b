/* Response plan templates (处置预案): GET /api/plans lists them — what they apply to (event
   types, diseases, tags, levels) and their actions (department, what to do, deadline in
   hours). The city CDC edits one in place (PATCH /api/plans/{code} with the updated_at read,
   so a stale edit is refused): names, what it applies to, active, and actions added,
   removed or changed. Refusals are shown under the field at fault (tasks.2.deadline_hours).
   It also adds a template of its own (POST /api/plans, with a free code) and puts an edited
   template of the data file back as the file has it (POST /api/plans/{code}/reset). */
(function () {
  "use strict";
  const root = document.getElementById("plans");
  const editable = root.dataset.editable === "true";
  const LEVELS = window.YF_PLAN_LEVELS || ["I", "II", "III", "IV"];
  let plans = {};

  const name = (p) => (YF.lang === "en" ? p.name_en || p.name_zh : p.name_zh);
  const list = (xs) => (xs && xs.length ? xs.join("、") : "");
  const split = (text) => (text || "").split(/[,，、\s]+/).map((x) => x.trim()).filter(Boolean);

  function applies(p) {
    const parts = [];
    if (p.event_types.length) parts.push(YR.t("plans.event_types") + ": " + p.event_types.map((t) => (YR.ref.event_types || {})[t] || t).join("、"));
    if (p.diseases.length) parts.push(YR.t("plans.diseases") + ": " + p.diseases.map((d) => YR.disease(d)).join("、"));
    if (p.tags.length) parts.push(YR.t("plans.tags") + ": " + list(p.tags));
    if (!parts.length) parts.push(YR.t("plans.any_event"));
    parts.push(YR.t("plans.levels") + ": " + (p.levels.length ? p.levels.map((l) => YR.level(l)).join("、") : YR.t("plans.any_level")));
    return parts.map((x) => "<span>" + YF.esc(x) + "</span>").join("");
  }

  function view(p) {
    const rows = p.tasks.map((a) => "<tr><td>" + YF.esc(YR.owner(a.owner)) + "</td><td>" + YF.esc(YF.lang === "en" ? a.en || a.zh : a.zh) +
      "</td><td>" + YF.esc(a.deadline_hours ? YR.t("plans.hours_n", { n: a.deadline_hours }) : "—") + "</td></tr>").join("");
    return '<div class="panel-head"><h2>' + YF.esc(name(p)) + ' <small class="muted">' + YF.esc(p.code) + "</small>" +
      (p.active ? "" : ' <span class="badge cancelled">' + YF.esc(YR.t("plans.inactive")) + "</span>") + "</h2>" +
      '<span class="row"><small class="muted">' + YF.esc(p.edited_by ? YR.t("plans.edited_by", { who: p.edited_by }) : YR.t("plans.from_file")) + "</small>" +
      (editable && p.from_file && p.edited_by ? '<button type="button" data-reset>' + YF.esc(YR.t("plans.reset")) + "</button>" : "") +
      (editable ? '<button type="button" data-edit>' + YF.esc(YR.t("plans.edit")) + "</button>" : "") + "</span></div>" +
      '<div class="applies">' + applies(p) + "</div>" +
      '<div class="table-wrap"><table><thead><tr><th>' + YF.esc(YR.t("plans.owner")) + "</th><th>" + YF.esc(YR.t("plans.actions")) + "</th><th>" +
      YF.esc(YR.t("plans.hours")) + "</th></tr></thead><tbody data-actions>" + rows + "</tbody></table></div>";
  }

  const err = (field) => '<span class="field-error" data-field-error="' + field + '"></span>';

  function actionRow(a, i) {
    return '<tr data-action-row><td>' + '<select name="owner">' + YR.options(YR.ref.owners, a.owner, YR.t("common.choose")) + "</select>" + err("tasks." + i + ".owner") +
      '</td><td><input name="zh" maxlength="200" value="' + YF.esc(a.zh || "") + '" placeholder="' + YF.esc(YR.t("plans.action_zh")) + '">' + err("tasks." + i + ".zh") +
      '<input name="en" maxlength="200" value="' + YF.esc(a.en || "") + '" placeholder="' + YF.esc(YR.t("plans.action_en")) + '">' +
      '</td><td class="plan-hours"><input name="deadline_hours" type="number" min="1" max="8760" step="1" value="' + YF.esc(a.deadline_hours == null ? "" : a.deadline_hours) + '">' +
      err("tasks." + i + ".deadline_hours") + '</td><td><button type="button" class="danger" data-remove>' + YF.esc(YR.t("plans.remove_action")) + "</button></td></tr>";
  }

  function renumber(form) {
    form.querySelectorAll("[data-action-row]").forEach((tr, i) => {
      tr.querySelectorAll("[data-field-error]").forEach((el) => { el.dataset.fieldError = el.dataset.fieldError.replace(/^tasks\.\d+\./, "tasks." + i + "."); });
    });
  }

  function editor(p) {
    const types = Object.entries(YR.ref.event_types || {}).map(([k, v]) =>
      '<label><input type="checkbox" name="event_types" value="' + YF.esc(k) + '"' + (p.event_types.includes(k) ? " checked" : "") + "> " + YF.esc(v) + "</label>").join("");
    const levels = LEVELS.map((l) => '<label><input type="checkbox" name="levels" value="' + l + '"' + (p.levels.includes(l) ? " checked" : "") + "> " + YF.esc(YR.level(l)) + "</label>").join("");
    return '<form class="stack" data-plan-form novalidate><div class="panel-head"><h2>' + (p.isNew ? YF.esc(YR.t("plans.new")) : YF.esc(name(p)) + ' <small class="muted">' + YF.esc(p.code) + "</small>") + "</h2></div>" +
      '<div class="form-grid">' + (p.isNew ? '<label class="req">' + YF.esc(YR.t("plans.code")) + '<input name="code" maxlength="48" placeholder="campus_norovirus">' + err("code") + "</label>" : "") +
      '<label class="req">' + YF.esc(YR.t("plans.name_zh")) + '<input name="name_zh" maxlength="100" value="' + YF.esc(p.name_zh) + '">' + err("name_zh") + "</label>" +
      '<label>' + YF.esc(YR.t("plans.name_en")) + '<input name="name_en" maxlength="200" value="' + YF.esc(p.name_en) + '">' + err("name_en") + "</label>" +
      '<label>' + YF.esc(YR.t("plans.diseases")) + '<input name="diseases" value="' + YF.esc(p.diseases.join(", ")) + '" placeholder="' + YF.esc(YR.t("plans.list_hint")) + '">' + err("diseases") + "</label>" +
      '<label>' + YF.esc(YR.t("plans.tags")) + '<input name="tags" value="' + YF.esc(p.tags.join(", ")) + '" placeholder="' + YF.esc(YR.t("plans.list_hint")) + '">' + err("tags") + "</label></div>" +
      "<fieldset><legend>" + YF.esc(YR.t("plans.event_types")) + '</legend><div class="checks">' + types + "</div>" + err("event_types") + "</fieldset>" +
      "<fieldset><legend>" + YF.esc(YR.t("plans.levels")) + '</legend><div class="checks">' + levels + "</div>" + err("levels") + "</fieldset>" +
      '<label class="row" style="flex-direction:row;align-items:center"><input type="checkbox" name="active"' + (p.active ? " checked" : "") + " style=\"width:auto\"> " + YF.esc(YR.t("plans.active")) + "</label>" +
      "<h3>" + YF.esc(YR.t("plans.actions")) + "</h3>" + err("tasks") +
      '<div class="table-wrap"><table><thead><tr><th>' + YF.esc(YR.t("plans.owner")) + "</th><th>" + YF.esc(YR.t("plans.actions")) + "</th><th>" + YF.esc(YR.t("plans.hours")) +
      "</th><th></th></tr></thead><tbody data-action-rows>" + p.tasks.map(actionRow).join("") + "</tbody></table></div>" +
      '<div class="row"><button type="button" data-add>' + YF.esc(YR.t("plans.add_action")) + "</button></div>" +
      '<p class="alert error hidden" data-error></p><div class="row"><span class="spacer"></span><button type="button" data-cancel>' + YF.esc(YR.t("common.cancel")) +
      '</button><button class="primary" type="submit">' + YF.esc(YR.t("common.save")) + "</button></div></form>";
  }

  function body(form, p) {
    const checked = (n) => Array.from(form.querySelectorAll("input[name=" + n + "]:checked")).map((c) => c.value);
    const tasks = Array.from(form.querySelectorAll("[data-action-row]")).map((tr) => {
      const a = { owner: tr.querySelector("[name=owner]").value, zh: tr.querySelector("[name=zh]").value.trim() };
      const en = tr.querySelector("[name=en]").value.trim();
      if (en) a.en = en;
      const hours = tr.querySelector("[name=deadline_hours]").value;
      if (hours !== "") a.deadline_hours = Number(hours);
      return a;
    });
    return {
      updated_at: p.updated_at, name_zh: form.name_zh.value.trim(), name_en: form.name_en.value.trim(),
      event_types: checked("event_types"), levels: checked("levels"), diseases: split(form.diseases.value).map((d) => d.toUpperCase()),
      tags: split(form.tags.value), active: form.active.checked, tasks: tasks,
    };
  }

  function showErrors(form, r) {
    form.querySelectorAll("[data-field-error]").forEach((el) => { el.textContent = ""; });
    form.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
    const general = form.querySelector("[data-error]");
    const left = [];
    ((r && r.data && r.data.fields) || []).forEach((f) => {
      const slot = form.querySelector('[data-field-error="' + f.field + '"]');
      const text = YF.lang === "en" ? f.message_en : f.message_zh;
      if (!slot) { left.push(text); return; }
      slot.textContent = text;
      // the field's own input: the one in the same label or cell (not, for a form-wide
      // error such as "tasks", the form's first input)
      const holder = slot.parentElement;
      const input = holder && holder.matches("label, td") ? holder.querySelector("input, select") : null;
      if (input) input.classList.add("invalid");
    });
    const message = r ? (left.length ? left.join("；") : r.data && r.data.fields && r.data.fields.length ? "" : YF.errorText(r)) : "";
    general.textContent = message + (r && r.status === 409 ? " " + YR.t("reload_hint") : "");
    general.classList.toggle("hidden", !general.textContent.trim());
  }

  const BLANK = { isNew: true, code: "", name_zh: "", name_en: "", event_types: [], diseases: [], tags: [], levels: [], tasks: [{ owner: "", zh: "" }], active: true };

  function draw() {
    const codes = Object.keys(plans);
    root.innerHTML = (editable ? '<div class="row"><button type="button" class="primary" data-new>' + YF.esc(YR.t("plans.new")) + "</button></div>" : "") +
      (codes.length ? codes.map((c) => '<section class="panel plan' + (plans[c].active ? "" : " inactive") + '" data-plan="' + YF.esc(c) + '">' + view(plans[c]) + "</section>").join("")
        : '<p class="muted">' + YF.esc(YR.t("plans.none")) + "</p>");
  }

  async function load() {
    const r = await YF.api("GET", "/api/plans");
    if (!r.ok) { root.innerHTML = '<p class="alert error">' + YF.esc(YF.errorText(r)) + "</p>"; return; }
    plans = Object.fromEntries(r.data.map((p) => [p.code, p]));
    draw();
  }

  root.addEventListener("click", async (ev) => {
    if (ev.target.closest("[data-new]")) {
      if (root.querySelector('[data-plan=""]')) return;
      ev.target.closest(".row").insertAdjacentHTML("afterend", '<section class="panel plan" data-plan="">' + editor(BLANK) + "</section>");
      root.querySelector('[data-plan=""] [name=code]').focus();
      return;
    }
    const panel = ev.target.closest("[data-plan]");
    if (!panel) return;
    const p = plans[panel.dataset.plan] || BLANK;
    if (ev.target.closest("[data-edit]")) { panel.innerHTML = editor(p); return; }
    if (ev.target.closest("[data-cancel]")) { if (p.isNew) panel.remove(); else panel.innerHTML = view(p); return; }
    if (ev.target.closest("[data-reset]")) {
      if (!confirm(YR.t("plans.confirm_reset", { name: name(p) }))) return;
      const r = await YF.api("POST", "/api/plans/" + encodeURIComponent(p.code) + "/reset");
      if (!r.ok) { YF.toast(YF.errorText(r), "error"); return; }
      plans[p.code] = r.data;
      panel.classList.toggle("inactive", !r.data.active);
      panel.innerHTML = view(r.data);
      YF.toast(YR.t("plans.was_reset"), "ok");
      return;
    }
    const form = panel.querySelector("[data-plan-form]");
    if (!form) return;
    if (ev.target.closest("[data-add]")) {
      const rows = form.querySelector("[data-action-rows]");
      rows.insertAdjacentHTML("beforeend", actionRow({ owner: "", zh: "" }, rows.children.length));
      rows.lastElementChild.querySelector("select").focus();
    } else if (ev.target.closest("[data-remove]")) {
      ev.target.closest("[data-action-row]").remove();
      renumber(form);
    }
  });
  root.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.target.closest("[data-plan-form]");
    const panel = form.closest("[data-plan]");
    const p = plans[panel.dataset.plan] || BLANK;
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    let r;
    if (p.isNew) {
      const fields = body(form, p);
      delete fields.updated_at;
      r = await YF.api("POST", "/api/plans", Object.assign({ code: form.code.value.trim() }, fields));
    } else {
      r = await YF.api("PATCH", "/api/plans/" + encodeURIComponent(p.code), body(form, p));
    }
    buttons.forEach((b) => (b.disabled = false));
    if (!r.ok) { showErrors(form, r); return; }
    plans[r.data.code] = r.data;
    panel.dataset.plan = r.data.code;
    panel.classList.toggle("inactive", !r.data.active);
    panel.innerHTML = view(r.data);
    YF.toast(YR.t("plans.saved"), "ok");
  });
  load();
})();
