/* One event: its status path and next steps (investigate, confirm or rule out, grade,
   respond with the plan's tasks, close), the investigation record, linked cards, samples,
   grading with its history, tasks, warnings to departments, the timeline from the first
   signal, and the epidemic curve and map. Every change carries the version read; a stale
   one is refused by the server with a message asking to reload. */
(function () {
  "use strict";
  const root = document.getElementById("event");
  const id = Number(root.dataset.eventId);
  const base = "/api/events/" + id;
  const manage = YR.can("event.manage");
  let event = null;
  const charts = [];

  const PATH = ["suspected", "investigating", "confirmed", "responding", "closed"];
  // Loads can overlap (an action's reload while an earlier one is still running). Each
  // load is numbered; only the latest may write to the page, whether the event itself or
  // its tasks, timeline, grading or candidates, so a late older answer cannot bring back
  // a stale version (and make the next action refused as stale).
  let loads = 0;

  function steps(e) {
    const el = root.querySelector("[data-steps]");
    const path = e.status === "ruled_out" || (e.status === "closed" && e.ruled_out_at) ? ["suspected", "investigating", "ruled_out", "closed"] : PATH;
    const at = path.indexOf(e.status);
    el.innerHTML = path.map((s, i) => '<li class="' + (i < at ? "done" : i === at ? "now" : "") + '">' +
      YF.esc((YR.ref.event_statuses || {})[s] || s) + "</li>").join("");
  }

  function fields(e) {
    const rows = [
      ["event.number", e.number], ["event.type", (YR.ref.event_types || {})[e.event_type] || e.event_type],
      ["event.disease", YR.disease(e.disease_code)], ["signals.region", YR.region(e.region_code)],
      ["event.responsible", YR.org(e.organisation_code)], ["event.team", (e.team || []).join("、") || "—"],
      ["event.start", YR.date(e.investigation_start)], ["event.end", YR.date(e.investigation_end)],
      ["event.affected", e.affected === null ? "—" : e.affected], ["event.deaths", e.deaths === null ? "—" : e.deaths],
      ["event.tags", (e.tags || []).join(", ") || "—"], ["event.summary", e.summary || "—"],
      ["event.findings", e.findings || "—"], ["event.conclusion", e.conclusion || "—"],
    ];
    root.querySelector("[data-fields]").innerHTML = rows.map(([k, v]) => "<div><dt>" + YF.esc(YR.t(k)) + "</dt><dd>" + YF.esc(v) + "</dd></div>").join("");
    const edit = document.getElementById("event-edit");
    if (edit) {
      edit.team.value = (e.team || []).join(", ");
      edit.investigation_start.value = e.investigation_start || "";
      edit.investigation_end.value = e.investigation_end || "";
      edit.affected.value = e.affected === null ? "" : e.affected;
      edit.deaths.value = e.deaths === null ? "" : e.deaths;
      edit.event_type.value = e.event_type;
      edit.tags.value = (e.tags || []).join(", ");
      edit.findings.value = e.findings || "";
      edit.closest("details").classList.toggle("hidden", ["closed", "ruled_out"].includes(e.status));
    }
  }

  function cases(e) {
    const body = root.querySelector("[data-cases]");
    root.querySelector("[data-case-count]").textContent = YR.t("event.n_cases", { n: e.cases.length });
    body.innerHTML = e.cases.length ? e.cases.map((c) => "<tr><td>" + (YR.can("card.view") ? '<a href="/cards/' + c.card_id + '">' + YF.esc(c.card_number) + "</a>" : YF.esc(c.card_number)) +
      "</td><td>" + YF.esc(c.patient_name || "") + "</td><td>" + YF.esc((c.age_value === null ? "" : c.age_value) + " · " + (c.sex === "1" ? YR.t("sex.male") : c.sex === "2" ? YR.t("sex.female") : "")) +
      "</td><td>" + YF.esc(YR.region(c.address_code)) + "</td><td>" + YF.esc(c.onset_date) + (c.death_date ? ' <span class="badge overdue">' + YF.esc(YR.t("event.died")) + "</span>" : "") +
      "</td><td>" + YF.esc(c.unit || "") + "</td></tr>").join("")
      : '<tr><td colspan="6" class="empty">' + YF.esc(YR.t("event.no_cases")) + "</td></tr>";
    charts.push(YR.curve(document.getElementById("event-curve"), e.cases.map((c) => c.onset_date)));
  }

  async function candidates(e) {
    const body = root.querySelector("[data-candidates]");
    if (!body) return;
    const linked = new Set(e.cases.map((c) => c.card_id));
    const from = new Date(YF.parseTime(e.suspected_at).getTime() - 60 * 86400000).toISOString().slice(0, 10);
    const params = new URLSearchParams({ region: e.region_code.slice(0, 9), onset_from: from, limit: "200" });
    if (e.disease_code) params.append("disease_code", e.disease_code);
    const mine = loads;
    const r = await YF.api("GET", "/api/cards?" + params.toString());
    if (mine !== loads) return;
    if (!r.ok) { body.innerHTML = '<tr><td colspan="6" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
    const items = (r.data.items || []).filter((c) => !linked.has(c.id) && c.status !== "deleted");
    // a reload (after another action) keeps the cards the user has already ticked
    const ticked = new Set(Array.from(body.querySelectorAll("input[name=card]:checked")).map((c) => Number(c.value)));
    body.innerHTML = items.length ? items.map((c) => '<tr><td><input type="checkbox" name="card" value="' + c.id + '"' + (ticked.has(c.id) ? " checked" : "") + ' style="width:auto;min-height:0"></td><td>' +
      YF.esc(c.card_number) + "</td><td>" + YF.esc(c.patient_name || "") + "</td><td>" + YF.esc(YR.region(c.address_code)) + "</td><td>" +
      YF.esc(c.onset_date) + "</td><td>" + YF.esc(c.work_unit || "") + "</td></tr>").join("")
      : '<tr><td colspan="6" class="empty">' + YF.esc(YR.t("event.no_candidates")) + "</td></tr>";
  }

  function samples(e) {
    const body = root.querySelector("[data-samples]");
    const open = !["closed", "ruled_out"].includes(e.status);
    body.innerHTML = e.samples.length ? e.samples.map((s) => {
      let result = YF.esc(YR.t("sample." + s.result));
      if (manage && open && s.result === "pending") {
        result += ' <select data-sample-result="' + s.id + '" data-version="' + s.version + '" style="width:auto">' +
          ["positive", "negative", "inconclusive"].map((v) => '<option value="' + v + '">' + YF.esc(YR.t("sample." + v)) + "</option>").join("") +
          '</select> <button type="button" data-save-result="' + s.id + '">' + YF.esc(YR.t("common.save")) + "</button>";
      }
      return "<tr><td>" + YF.esc(s.sample_type) + (s.source ? " · " + YF.esc(s.source) : "") + "</td><td>" + YF.esc(s.collected_on || "—") +
        "</td><td>" + YF.esc(s.laboratory || "—") + (s.test ? " · " + YF.esc(s.test) : "") + "</td><td>" + result + "</td><td>" + YF.esc(s.pathogen || "") + "</td></tr>";
    }).join("") : '<tr><td colspan="5" class="empty">' + YF.esc(YR.t("event.no_samples")) + "</td></tr>";
  }

  function basisText(basis) {
    return (basis || []).map((b) => (b.level ? b.level + " · " : "") + (YF.lang === "en" ? b.en : b.zh) +
      (b.group && b.group !== "event" && b.group !== "*" ? " (" + b.group + ": " + b.cases + ")" : " (" + b.cases + ")")).join("; ");
  }

  async function grading(e) {
    root.querySelector("[data-grade-now]").innerHTML = e.related_info === null ? "" :
      YR.levelBadge(e.level) + " " + (e.related_info ? '<span class="badge confirmed">' + YF.esc(YR.t("grade.related_info_short")) + "</span>" : "");
    const body = root.querySelector("[data-grades]");
    body.innerHTML = e.grades.length ? e.grades.slice().reverse().map((g) => "<tr><td>" + YF.esc(YF.fmtTime(g.at)) + "</td><td>" + YR.levelBadge(g.level) +
      "</td><td>" + YF.esc(g.related_info ? YR.t("common.yes") : YR.t("common.no")) + "</td><td>" +
      YF.esc(g.accepted ? YR.t("grade.accepted") : YR.t("grade.manual_from", { level: g.suggested_level || YR.t("level.none") })) +
      '<br><small class="muted">' + YF.esc(basisText(g.basis)) + "</small></td><td>" + YF.esc(g.actor) + (g.reason ? "<br><small>" + YF.esc(g.reason) + "</small>" : "") + "</td></tr>").join("")
      : '<tr><td colspan="5" class="empty">' + YF.esc(YR.t("grade.none")) + "</td></tr>";
    const form = document.getElementById("grade-form");
    const gradable = ["confirmed", "responding"].includes(e.status);
    if (form) form.classList.toggle("hidden", !gradable);
    const box = root.querySelector("[data-suggestion]");
    const mine = loads;
    const r = await YF.api("GET", base + "/grade-suggestion");
    if (mine !== loads) return;
    if (!r.ok) { box.textContent = YF.errorText(r); return; }
    const s = r.data;
    box.innerHTML = "<strong>" + YF.esc(YR.t("grade.suggested")) + "</strong> " + YR.levelBadge(s.level) + " · " +
      YF.esc(YR.t("grade.related_info")) + ": " + YF.esc(s.related_info ? YR.t("common.yes") : YR.t("common.no")) +
      (s.basis.length ? "<br><small>" + YF.esc(basisText(s.basis)) + "</small>" : "<br><small>" + YF.esc(YR.t("grade.no_basis")) + "</small>") +
      (gradable ? "" : "<br><small class=\"muted\">" + YF.esc(YR.t("grade.when_confirmed")) + "</small>");
  }

  // A task's deadline counting down, or when it was completed.
  function taskTime(t) {
    if (t.status === "done") return '<span data-finished>' + YF.esc(YR.t("task.finished_at", { time: YF.fmtTime(t.done_at || t.deadline) })) + "</span>";
    if (t.status === "cancelled") return YF.esc(YF.fmtTime(t.deadline));
    return '<span class="due" data-due="' + YF.esc(t.deadline) + '"></span>';
  }

  async function tasks() {
    const body = root.querySelector("[data-tasks]");
    const mine = loads;
    const r = await YF.api("GET", "/api/tasks?event_id=" + id);
    if (mine !== loads) return;
    if (!r.ok) { body.innerHTML = '<tr><td colspan="6" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
    body.innerHTML = r.data.length ? r.data.map((t) => '<tr data-task-row="' + t.id + '"><td>' + YF.esc(t.title) + "</td><td>" + YF.esc(YR.owner(t.owner)) + "</td><td>" +
      taskTime(t) + "</td><td>" + YR.badge("task_statuses", t.status) + '</td><td class="opt">' + YF.esc(t.result || t.cancelled_reason || "") +
      '</td><td><button type="button" data-files="' + t.id + '">' + YF.esc(YR.t("attach.count", { n: t.attachment_count || 0 })) + "</button></td></tr>").join("")
      : '<tr><td colspan="6" class="empty">' + YF.esc(YR.t("task.none")) + "</td></tr>";
    YF.startCountdowns(body);
  }

  // The attachments of one task, opened under its row: the list and an upload form.
  const taskBody = root.querySelector("[data-tasks]");
  taskBody.addEventListener("click", async (ev) => {
    const b = ev.target.closest("[data-files]");
    if (!b) return;
    const row = b.closest("tr");
    const next = row.nextElementSibling;
    if (next && next.matches("[data-files-row]")) { next.remove(); return; }
    const r = await YF.api("GET", "/api/tasks/" + b.dataset.files + "/attachments");
    const files = document.createElement("tr");
    files.dataset.filesRow = b.dataset.files;
    files.innerHTML = '<td colspan="6">' + (r.ok ? YR.attachmentsHtml(Number(b.dataset.files), r.data, !manage) : '<p class="alert error">' + YF.esc(YF.errorText(r)) + "</p>") + "</td>";
    row.after(files);
  });
  YR.bindAttachments(taskBody, (taskId, n) => {
    const b = taskBody.querySelector('[data-files="' + taskId + '"]');
    if (b) b.textContent = YR.t("attach.count", { n: n });
  });

  async function templates() {
    const box = root.querySelector("[data-templates]");
    if (!box || box.dataset.loaded) return;
    const r = await YF.api("GET", "/api/plans");
    if (!r.ok) return;
    box.dataset.loaded = "1";
    box.innerHTML = r.data.filter((p) => p.active).map((p) => '<label title="' + YF.esc(p.tasks.map((t) => YR.owner(t.owner) + ": " + (YF.lang === "en" ? t.en || t.zh : t.zh)).join("\n")) +
      '"><input type="checkbox" name="template" value="' + YF.esc(p.code) + '"> ' + YF.esc(YF.lang === "en" ? p.name_en : p.name_zh) + " (" + p.tasks.length + ")</label>").join("");
  }

  async function warnings() {
    const box = root.querySelector("[data-warnings]");
    const mine = loads;
    const r = await YF.api("GET", "/api/warnings?event_id=" + id);
    if (mine !== loads) return;
    if (!r.ok) { box.innerHTML = '<p class="alert error">' + YF.esc(YF.errorText(r)) + "</p>"; return; }
    box.innerHTML = r.data.length ? r.data.map((w) => '<div class="warning-card' + (w.recipients.every((x) => x.acknowledged_at) ? " acknowledged" : "") + '"><strong>' + YF.esc(w.title) +
      "</strong> <small class=\"muted\">" + YF.esc(YF.fmtTime(w.sent_at)) + " · " + YF.esc(w.sent_by) + "</small><p>" + YF.esc(w.advice) + "</p><div>" +
      w.recipients.map((x) => '<span class="badge ' + (x.acknowledged_at ? "done" : "open") + '">' + YF.esc(YR.owner(x.owner)) + " " +
        YF.esc(x.acknowledged_at ? YR.t("warning.acked_at", { time: YF.fmtTime(x.acknowledged_at) }) : YR.t("warning.not_acked")) + "</span>").join(" ") + "</div></div>").join("")
      : '<p class="muted">' + YF.esc(YR.t("warning.none")) + "</p>";
  }

  function entryText(e) {
    const d = e.detail || {};
    const kind = YR.t("kind." + e.kind);
    const action = YR.t("action." + e.action);
    let note = "";
    if (d.to) note = "→ " + ((YR.ref[e.kind === "task" ? "task_statuses" : e.kind === "verification" ? "verification_statuses" : "event_statuses"] || {})[d.to] || d.to);
    if (e.kind === "grade") note = YR.level(d.level) + (d.related_info ? " · " + YR.t("grade.related_info_short") : "");
    if (e.kind === "case") note = "#" + d.card_id;
    if (e.kind === "warning" && d.owner) note = YR.owner(d.owner);
    if (e.kind === "task" && d.id) note += " #" + d.id;
    if (d.reason) note += " · " + d.reason;
    if (e.kind === "signal") note = d.explanation_zh && YF.lang === "zh" ? d.explanation_zh : (d.rule || "");
    return "<strong>" + YF.esc(kind) + " · " + YF.esc(action) + "</strong> <small class=\"muted\">" + YF.esc(YF.fmtTime(e.at)) + " · " + YF.esc(e.actor) +
      "</small>" + (note ? "<br><small>" + YF.esc(note) + "</small>" : "");
  }

  async function timeline() {
    const list = root.querySelector("[data-timeline]");
    const mine = loads;
    const r = await YF.api("GET", base + "/timeline");
    if (mine !== loads) return;
    if (!r.ok) { list.innerHTML = '<li class="alert error">' + YF.esc(YF.errorText(r)) + "</li>"; return; }
    // consecutive entries of one kind, action and person (16 cards linked at once) make one line
    const groups = [];
    for (const e of r.data.entries) {
      const last = groups[groups.length - 1];
      if (last && last[0].kind === e.kind && last[0].action === e.action && last[0].actor === e.actor && ["case", "task"].includes(e.kind)) last.push(e);
      else groups.push([e]);
    }
    list.innerHTML = groups.map((g) => "<li>" + entryText(g[0]) + (g.length > 1 ? ' <span class="badge">× ' + g.length + "</span>" : "") + "</li>").join("") ||
      '<li class="muted">' + YF.esc(YR.t("none")) + "</li>";
    root.querySelector("[data-hours]").innerHTML = Object.entries(r.data.hours_to).map(([k, h]) =>
      "<span>" + YF.esc(YR.t("hours." + k)) + " " + YF.esc(YR.t("hours.value", { h: h.toFixed(1) })) + "</span>").join("");
  }

  async function map() {
    const mine = loads;
    const r = await YF.api("GET", base + "/places");
    if (mine !== loads || !r.ok) return;
    charts.push(await YR.map(document.getElementById("event-map"), r.data.filter((p) => p.longitude !== null).map((p) => ({
      lon: p.longitude, lat: p.latitude, value: p.cases, label: p.name + " " + p.cases,
      tip: YF.esc(p.name) + ": " + p.cases + " " + YF.esc(YR.t("cases")),
    })), { focus: true }));
  }

  function actions(e) {
    document.querySelectorAll("[data-when]").forEach((el) => {
      if (el.closest("#verify-panel")) return;
      el.classList.toggle("hidden", !el.dataset.when.split(" ").includes(e.status));
    });
    if (["confirmed", "responding"].includes(e.status)) templates();
  }

  async function load() {
    const mine = ++loads;
    const r = await YF.api("GET", base);
    if (mine !== loads) return;
    if (!r.ok) { root.innerHTML = '<p class="alert error">' + YF.esc(YF.errorText(r)) + "</p>"; return; }
    event = r.data;
    root.querySelector("[data-title]").textContent = event.title;
    root.querySelector("[data-subtitle]").innerHTML = YF.esc(event.number) + " · " + YR.badge("event_statuses", event.status) +
      (event.related_info !== null ? " " + YR.levelBadge(event.level) : "");
    steps(event);
    fields(event);
    cases(event);
    samples(event);
    actions(event);
    await Promise.all([grading(event), tasks(), warnings(), timeline(), map(), candidates(event)]);
    if (mine === loads) root.dataset.loaded = event.status + ":" + event.version;
  }

  const ACTION_BODY = {
    investigate: (v) => ({ team: (v.team || "").split(/[,，、\s]+/).filter(Boolean), start: v.start || null }),
    confirm: (v) => ({ findings: v.findings || null }),
    "rule-out": (v) => ({ reason: v.reason }),
    respond: () => ({}),
    close: (v) => ({ conclusion: v.conclusion }),
  };
  document.querySelectorAll("form[data-action]").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const action = form.dataset.action;
      const v = YR.values(form, ["template"]);
      let ok;
      if (action === "plan") {
        ok = await YR.send("POST", base + "/plan", { template_codes: v.template.length ? v.template : null }, form);
        if (ok) YF.toast(YR.t("event.plan_made", { n: ok.length }), "ok");
      } else {
        ok = await YR.send("POST", base + "/" + action, Object.assign({ version: event.version }, ACTION_BODY[action](v)), form);
        if (ok) YF.toast(YR.t("event.saved"), "ok");
      }
      if (ok) { form.reset(); await load(); }
    });
  });

  const edit = document.getElementById("event-edit");
  if (edit) {
    edit.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(edit);
      const body = {
        version: event.version, team: (v.team || "").split(/[,，、]+/).map((s) => s.trim()).filter(Boolean),
        investigation_start: v.investigation_start || null, investigation_end: v.investigation_end || null,
        affected: v.affected === "" ? null : Number(v.affected), deaths: v.deaths === "" ? null : Number(v.deaths),
        event_type: v.event_type, tags: (v.tags || "").split(/[,，\s]+/).filter(Boolean), findings: v.findings || null,
      };
      if (await YR.send("PATCH", base, body, edit)) { YF.toast(YR.t("event.saved"), "ok"); await load(); }
    });
  }

  const link = document.getElementById("link-cards");
  if (link) {
    link.querySelector("[data-all]").addEventListener("change", (ev) => link.querySelectorAll("input[name=card]").forEach((c) => (c.checked = ev.target.checked)));
    link.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const chosen = Array.from(link.querySelectorAll("input[name=card]:checked")).map((c) => Number(c.value));
      if (!chosen.length) { YF.toast(YR.t("event.pick_cards"), "error"); return; }
      const unit = link.unit.value.trim() || null;
      let n = 0;
      for (const cardId of chosen) {
        if (await YR.send("POST", base + "/cases", { card_id: cardId, unit: unit }, link)) n += 1;
      }
      YF.toast(YR.t("event.linked", { n: n }), n ? "ok" : "error");
      await load();
    });
  }

  const sample = document.getElementById("add-sample");
  if (sample) {
    sample.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(sample);
      for (const k of Object.keys(v)) if (v[k] === "") v[k] = null;
      if (await YR.send("POST", base + "/samples", v, sample)) { sample.reset(); await load(); }
    });
  }
  root.querySelector("[data-samples]").addEventListener("click", async (ev) => {
    const b = ev.target.closest("[data-save-result]");
    if (!b) return;
    const sel = root.querySelector('[data-sample-result="' + b.dataset.saveResult + '"]');
    if (await YR.send("POST", "/api/samples/" + b.dataset.saveResult + "/result", { version: Number(sel.dataset.version), result: sel.value }, null)) await load();
  });

  const grade = document.getElementById("grade-form");
  if (grade) {
    grade.addEventListener("change", () => grade.querySelector("[data-manual]").classList.toggle("hidden", grade.mode.value !== "manual"));
    grade.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(grade);
      const body = v.mode === "accept" ? { version: event.version, accept: true }
        : { version: event.version, related_info: v.related_info === "true", level: v.level || null, reason: v.reason || null };
      if (await YR.send("POST", base + "/grade", body, grade)) { YF.toast(YR.t("grade.saved"), "ok"); await load(); }
    });
  }

  const warn = document.getElementById("send-warning");
  if (warn) {
    warn.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(warn, ["to"]);
      if (await YR.send("POST", base + "/warnings", { to: v.to, advice: v.advice }, warn)) { warn.reset(); YF.toast(YR.t("warning.sent"), "ok"); await load(); }
    });
  }
  window.addEventListener("resize", () => charts.forEach((c) => c && c.resize()));
  load();
})();
