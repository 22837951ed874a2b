/* 研判会商: sessions (GET/POST /api/consultations), the agenda built by the server from the
   current signals, events and indicators, the risk matrix (likelihood × impact, 1–5 each),
   decisions that become tasks, and the minutes that close a session. */
(function () {
  "use strict";
  const list = document.querySelector("[data-consultations]");
  const panel = document.getElementById("consultation");
  const manage = YR.can("event.manage");
  let current = null;

  function band(score) {
    let level = null;
    (YR.ref.risk_levels || []).slice().sort((a, b) => a.min_score - b.min_score).forEach((b) => { if (score >= b.min_score) level = b.level; });
    return level;
  }

  async function loadList() {
    const r = await YF.api("GET", "/api/consultations");
    if (!r.ok) { list.innerHTML = '<li class="alert error">' + YF.esc(YF.errorText(r)) + "</li>"; return; }
    list.innerHTML = r.data.length ? r.data.map((c) => '<li><a href="?id=' + c.id + '" data-open="' + c.id + '"><strong>' + YF.esc(c.title) + "</strong></a> " +
      '<span class="badge ' + YF.esc(c.status) + '">' + YF.esc(YR.t("consult.status_" + c.status)) + "</span><br><small class=\"muted\">" +
      YF.esc(YF.fmtTime(c.scheduled_at)) + " · " + YF.esc(YR.t("consult." + c.kind)) + "</small></li>").join("")
      : '<li class="muted">' + YF.esc(YR.t("consult.none")) + "</li>";
  }

  function itemRow(item, open) {
    const sel = (name, value) => '<select data-assess="' + name + '" style="width:auto"' + (open ? "" : " disabled") + ">" +
      [1, 2, 3, 4, 5].map((n) => '<option value="' + n + '"' + (value === n ? " selected" : "") + ">" + n + "</option>").join("") + "</select>";
    const summary = item.summary || {};
    const facts = item.item_type === "signal" ? YR.t("consult.signal_facts", { observed: summary.observed, expected: summary.expected === null || summary.expected === undefined ? "—" : Number(summary.expected).toFixed(1) })
      : item.item_type === "event" ? ((YR.ref.event_statuses || {})[summary.status] || summary.status || "") : "";
    const link = item.item_type === "event" && item.ref_id ? '<a href="/events/' + item.ref_id + '">' + YF.esc(item.title) + "</a>"
      : item.item_type === "signal" && item.ref_id ? '<a href="/signals/' + item.ref_id + '">' + YF.esc(item.title) + "</a>" : YF.esc(item.title);
    return '<tr data-item="' + item.id + '"><td>' + item.position + "</td><td>" + '<span class="badge">' + YF.esc(YR.t("consult.type_" + item.item_type)) + "</span> " + link +
      (facts ? '<br><small class="muted">' + YF.esc(facts) + "</small>" : "") + (item.notes ? "<br><small>" + YF.esc(item.notes) + "</small>" : "") +
      "</td><td>" + sel("likelihood", item.likelihood) + "</td><td>" + sel("impact", item.impact) + "</td><td>" +
      (item.risk_score ? item.risk_score + " " + YR.riskBadge(item.risk_level) : "—") + "</td><td>" +
      (open ? '<button type="button" data-save-assess>' + YF.esc(YR.t("consult.assess")) + "</button>" : "") + "</td></tr>";
  }

  function matrix(items) {
    const el = panel.querySelector("[data-matrix]");
    let html = "";
    for (let l = 5; l >= 1; l -= 1) {
      html += '<div class="axis">' + l + "</div>";
      for (let i = 1; i <= 5; i += 1) {
        const here = items.filter((x) => x.likelihood === l && x.impact === i);
        html += '<div class="cell ' + (band(l * i) || "") + '" title="' + l + " × " + i + " = " + l * i + '">' + here.map((x) => '<span class="dot" title="' + YF.esc(x.title) + '">' + x.position + "</span>").join("") + "</div>";
      }
    }
    html += '<div class="axis"></div>' + [1, 2, 3, 4, 5].map((i) => '<div class="axis">' + i + "</div>").join("");
    el.innerHTML = html;
  }

  async function open(id) {
    const r = await YF.api("GET", "/api/consultations/" + id);
    if (!r.ok) { YF.toast(YF.errorText(r), "error"); return; }
    const c = (current = r.data);
    panel.querySelector("[data-placeholder]").classList.add("hidden");
    panel.querySelector("[data-detail]").classList.remove("hidden");
    panel.querySelector("[data-c-title]").textContent = c.title;
    panel.querySelector("[data-c-status]").innerHTML = '<span class="badge ' + YF.esc(c.status) + '">' + YF.esc(YR.t("consult.status_" + c.status)) + "</span>";
    panel.querySelector("[data-c-meta]").textContent = YF.fmtTime(c.scheduled_at) + " · " + YR.t("consult." + c.kind) + " · " + (c.participants || []).join("、");
    const editable = manage && (c.status === "planned" || c.status === "in_session");
    const acts = [];
    if (manage && c.status === "planned") acts.push(["start", "consult.start"], ["agenda", "consult.rebuild"], ["cancel", "consult.cancel"]);
    panel.querySelector("[data-c-actions]").innerHTML = acts.map(([a, k]) => '<button type="button" data-c-act="' + a + '"' + (a === "start" ? ' class="primary"' : "") + ">" + YF.esc(YR.t(k)) + "</button>").join("");
    panel.querySelector("[data-items]").innerHTML = c.items.length ? c.items.map((x) => itemRow(x, editable)).join("") : '<tr><td colspan="6" class="empty">' + YF.esc(YR.t("consult.no_items")) + "</td></tr>";
    matrix(c.items);
    panel.querySelector("[data-decisions]").innerHTML = c.decisions.map((d) => "<li>" + YF.esc(d.text) + ' <small class="muted">' + YF.esc(d.decided_by + " · " + YF.fmtTime(d.decided_at)) + "</small>" +
      (d.task_id ? ' <a href="/tasks">' + YF.esc(YR.t("consult.task_made", { id: d.task_id })) + "</a>" : "") + "</li>").join("") || '<li class="muted">' + YF.esc(YR.t("consult.no_decisions")) + "</li>";
    const select = panel.querySelector("[data-item-select]");
    if (select) select.innerHTML = '<option value="">—</option>' + c.items.map((x) => '<option value="' + x.id + '">' + x.position + ". " + YF.esc(x.title) + "</option>").join("");
    const dec = document.getElementById("decision-form");
    if (dec) dec.classList.toggle("hidden", !editable);
    const minutes = document.getElementById("minutes-form");
    if (minutes) {
      minutes.classList.toggle("hidden", !editable);
      minutes.minutes.value = c.minutes || "";
    }
    const text = panel.querySelector("[data-minutes-text]");
    if (text) text.textContent = c.minutes || "—";
  }

  panel.addEventListener("click", async (ev) => {
    const act = ev.target.closest("[data-c-act]");
    if (act && current) {
      const a = act.dataset.cAct;
      let ok;
      if (a === "agenda") ok = await YR.send("POST", "/api/consultations/" + current.id + "/agenda", undefined, null);
      else if (a === "cancel") {
        const reason = window.prompt(YR.t("consult.cancel_reason"));
        if (!reason) return;
        ok = await YR.send("POST", "/api/consultations/" + current.id + "/cancel", { version: current.version, reason: reason }, null);
      } else ok = await YR.send("POST", "/api/consultations/" + current.id + "/" + a, { version: current.version }, null);
      if (ok) { await open(current.id); loadList(); }
      return;
    }
    const save = ev.target.closest("[data-save-assess]");
    if (save) {
      const tr = save.closest("tr");
      const body = { likelihood: Number(tr.querySelector('[data-assess="likelihood"]').value), impact: Number(tr.querySelector('[data-assess="impact"]').value) };
      if (await YR.send("POST", "/api/consultation-items/" + tr.dataset.item + "/assess", body, null)) await open(current.id);
    }
  });

  list.addEventListener("click", (ev) => {
    const a = ev.target.closest("[data-open]");
    if (!a) return;
    ev.preventDefault();
    history.replaceState(null, "", "?id=" + a.dataset.open);
    open(Number(a.dataset.open));
  });

  const create = document.getElementById("new-consultation");
  if (create) {
    create.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(create);
      const body = { title: v.title, kind: v.kind, participants: (v.participants || "").split(/[,，、]+/).map((s) => s.trim()).filter(Boolean) };
      if (v.scheduled_at) body.scheduled_at = new Date(v.scheduled_at).toISOString().slice(0, 19);
      const made = await YR.send("POST", "/api/consultations", body, create);
      if (made) { create.reset(); await loadList(); history.replaceState(null, "", "?id=" + made.id); open(made.id); }
    });
  }
  const dec = document.getElementById("decision-form");
  if (dec) {
    dec.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(dec);
      const body = { text: v.text, item_id: v.item_id ? Number(v.item_id) : null };
      if (v.owner) {
        body.task = { owner: v.owner, title: v.text.slice(0, 200) };
        if (v.deadline) body.task.deadline = new Date(v.deadline).toISOString().slice(0, 19);
        const item = current.items.find((x) => String(x.id) === v.item_id);
        if (item && item.item_type === "event") body.task.event_id = item.ref_id;
      }
      if (await YR.send("POST", "/api/consultations/" + current.id + "/decisions", body, dec)) { dec.reset(); await open(current.id); }
    });
  }
  const minutes = document.getElementById("minutes-form");
  if (minutes) {
    minutes.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const action = (ev.submitter && ev.submitter.dataset.minutes) || "edit";
      if (await YR.send("POST", "/api/consultations/" + current.id + "/" + action, { version: current.version, minutes: minutes.minutes.value }, minutes)) {
        YF.toast(YR.t("consult.saved"), "ok");
        await open(current.id);
        loadList();
      }
    });
  }
  const wanted = Number(new URLSearchParams(location.search).get("id"));
  loadList().then(() => { if (wanted) open(wanted); });
})();
