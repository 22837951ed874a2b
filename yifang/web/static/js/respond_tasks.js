/* Task board by department (command view): GET /api/command/board gives the tasks the
   caller may see by owner and status (with their event's number, when finished and how many
   files they have); each card's details list its comments and attachments, and take new
   ones; owners accept, start and complete them, event
   managers also cancel; comments per task. Warnings addressed to the caller's department
   are acknowledged here (POST /api/warnings/{id}/acknowledge). Other departments see only
   their own tasks and warnings, de-identified, as the API gives them. */
(function () {
  "use strict";
  const board = document.getElementById("board");
  const select = document.getElementById("board-event");
  const ORDER = ["open", "accepted", "in_progress", "overdue", "done", "cancelled"];
  const STEPS = {
    open: ["accept", "start"], accepted: ["start", "complete"], in_progress: ["complete"],
    overdue: ["accept", "start", "complete"], done: [], cancelled: [],
  };
  const manage = YR.can("event.manage");
  let mine = new Set();
  let events = {};
  let tasksById = {};

  function card(task, status) {
    const steps = (mine.has(task.id) || manage ? STEPS[status] : []).slice();
    if (manage && !["done", "cancelled"].includes(status)) steps.push("cancel");
    // finished cards show when they were finished; open ones count down to the deadline
    const due = status === "done" || status === "cancelled"
      ? '<span data-finished>' + YF.esc(YR.t(status === "done" ? "task.finished_at" : "task.cancelled_at", { time: YF.fmtTime(task.finished_at || task.deadline) })) + "</span>"
      : '<span class="due" data-due="' + YF.esc(task.deadline) + '"></span>';
    const number = task.event_number || (events[task.event_id] || {}).number;
    const label = number ? YF.esc(number) : YF.esc(YR.t("task.event_n", { id: task.event_id }));
    const ev = task.event_id ? (YR.can("event.view") ? '<a href="/events/' + task.event_id + '">' + label + "</a>" : label) : "";
    const files = task.attachment_count ? '<span data-file-count title="' + YF.esc(YR.t("attach.title")) + '">' + YF.esc(YR.t("attach.count", { n: task.attachment_count })) + "</span>" : "";
    return '<div class="task-card ' + status + '" data-task="' + task.id + '" data-version="' + task.version + '"><div class="title">' + YF.esc(task.title) + "</div>" +
      '<div class="meta">' + due + (ev ? "<span data-event-number>" + ev + "</span>" : "") + (task.organisation_code ? "<span>" + YF.esc(YR.org(task.organisation_code)) + "</span>" : "") + files + "</div>" +
      '<div class="buttons">' + steps.map((s) => '<button type="button" data-step="' + s + '"' + (s === "cancel" ? ' class="danger"' : s === "complete" ? ' class="primary"' : "") + ">" + YF.esc(YR.t("task.do_" + s)) + "</button>").join("") +
      '<button type="button" data-more>' + YF.esc(YR.t("task.details")) + '</button></div><div class="more hidden" data-more-box></div></div>';
  }

  async function loadBoard() {
    const eventId = select ? select.value : "";
    const [b, m] = await Promise.all([
      YF.api("GET", "/api/command/board" + (eventId ? "?event_id=" + eventId : "")),
      YF.api("GET", "/api/tasks?mine=true&limit=1000" + (eventId ? "&event_id=" + eventId : "")),
    ]);
    if (!b.ok) { board.innerHTML = '<p class="alert error">' + YF.esc(YF.errorText(b)) + "</p>"; return; }
    mine = new Set(m.ok ? m.data.map((t) => t.id) : []);
    const owners = Object.keys(b.data).sort((x, y) => (x === "cdc" ? -1 : y === "cdc" ? 1 : x.localeCompare(y)));
    let n = 0;
    tasksById = {};
    let html = '<div class="head"></div>' + ORDER.map((s) => '<div class="head">' + YF.esc((YR.ref.task_statuses || {})[s] || s) + "</div>").join("");
    for (const owner of owners) {
      html += '<div class="lane" data-lane="' + YF.esc(owner) + '">' + YF.esc(YR.owner(owner)) + "</div>";
      for (const s of ORDER) {
        const items = b.data[owner][s] || [];
        n += items.length;
        items.forEach((t) => { tasksById[t.id] = t; });
        html += '<div class="cell" data-owner="' + YF.esc(owner) + '" data-status="' + s + '">' + items.map((t) => card(t, s)).join("") + "</div>";
      }
    }
    board.innerHTML = owners.length ? html : '<p class="muted">' + YF.esc(YR.t("task.none")) + "</p>";
    document.querySelector("[data-task-count]").textContent = YR.t("tasks.count", { n: n });
    YF.startCountdowns(board);
  }

  async function loadWarnings() {
    const box = document.querySelector("[data-warnings]");
    const eventId = select ? select.value : "";
    const r = await YF.api("GET", "/api/warnings" + (eventId ? "?event_id=" + eventId : ""));
    if (!r.ok) { box.innerHTML = '<p class="alert error">' + YF.esc(YF.errorText(r)) + "</p>"; return; }
    const dept = window.YF_DEPT;
    let waiting = 0;
    box.innerHTML = r.data.length ? r.data.map((w) => {
      const me = w.recipients.find((x) => x.owner === dept);
      if (me && !me.acknowledged_at) waiting += 1;
      const c = w.content || {};
      const towns = (c.townships || []).map((t) => t.name + " " + t.cases).join("、");
      return '<div class="warning-card' + (me && me.acknowledged_at ? " acknowledged" : "") + '" data-warning="' + w.id + '"><div class="panel-head"><strong>' + YF.esc(w.title) + "</strong><small class=\"muted\">" +
        YF.esc(YF.fmtTime(w.sent_at)) + "</small></div><p>" + YF.esc(YR.t("warning.summary", {
          disease: c.disease_name || "—", cases: c.cases || 0, deaths: c.deaths || 0, towns: towns || "—",
          first: c.first_onset || "—", last: c.last_onset || "—",
        })) + (c.level ? " " + YR.levelBadge(c.level) : "") + "</p><p><strong>" + YF.esc(YR.t("warning.advice")) + ":</strong> " + YF.esc(w.advice) + "</p><div class=\"row\">" +
        w.recipients.map((x) => '<span class="badge ' + (x.acknowledged_at ? "done" : "open") + '">' + YF.esc(YR.owner(x.owner)) + " " +
          YF.esc(x.acknowledged_at ? YR.t("warning.acked_at", { time: YF.fmtTime(x.acknowledged_at) }) : YR.t("warning.not_acked")) + "</span>").join(" ") +
        (me && !me.acknowledged_at ? '<span class="spacer"></span><button class="primary" type="button" data-ack="' + w.id + '">' + YF.esc(YR.t("warning.ack")) + "</button>" : "") +
        "</div></div>";
    }).join("") : '<p class="muted">' + YF.esc(YR.t("warning.none")) + "</p>";
    document.querySelector("[data-warn-count]").textContent = dept ? YR.t("warning.waiting", { n: waiting }) : "";
  }

  async function loadEvents() {
    if (!select) return;
    const r = await YF.api("GET", "/api/events?limit=200");
    if (!r.ok) return;
    events = Object.fromEntries(r.data.map((e) => [e.id, e]));
    const wanted = new URLSearchParams(location.search).get("event_id") || "";
    select.innerHTML = '<option value="">' + YF.esc(YR.t("tasks.all_events")) + "</option>" + r.data.map((e) =>
      '<option value="' + e.id + '"' + (String(e.id) === wanted ? " selected" : "") + ">" + YF.esc(e.number + " " + e.title) + "</option>").join("");
  }

  async function details(cardEl) {
    const box = cardEl.querySelector("[data-more-box]");
    if (!box.classList.contains("hidden") && !box.dataset.form) { box.classList.add("hidden"); return; }
    box.classList.remove("hidden");
    delete box.dataset.form;
    const r = await YF.api("GET", "/api/tasks/" + cardEl.dataset.task);
    if (!r.ok) { box.innerHTML = '<p class="alert error">' + YF.esc(YF.errorText(r)) + "</p>"; return; }
    const t = r.data;
    const ev = t.event;
    box.innerHTML = (t.description ? "<p>" + YF.esc(t.description) + "</p>" : "") +
      (ev ? '<p class="muted">' + YF.esc(YR.t("task.event_brief", {
        number: ev.number, disease: YR.disease(ev.disease_code), region: YR.region(ev.region_code), cases: ev.cases,
        status: (YR.ref.event_statuses || {})[ev.status] || ev.status,
      })) + (ev.level ? " " + YR.levelBadge(ev.level) : "") + "</p>" : "") +
      (t.result ? "<p><strong>" + YF.esc(YR.t("task.result")) + ":</strong> " + YF.esc(t.result) + "</p>" : "") +
      '<ul class="comments">' + t.comments.map((c) => "<li><strong>" + YF.esc(c.author) + "</strong> <small class=\"muted\">" + YF.esc(YF.fmtTime(c.at)) + "</small> " + YF.esc(c.text) + "</li>").join("") +
      "</ul>" + '<form data-comment class="row"><input name="text" maxlength="4000" placeholder="' + YF.esc(YR.t("task.comment_hint")) + '" style="flex:1"><button type="submit">' + YF.esc(YR.t("task.comment")) + "</button></form>" +
      YR.attachmentsHtml(t.id, t.attachments || [], !(mine.has(t.id) || manage)) +
      '<small class="muted">' + t.history.map((h) => YF.esc(YF.fmtTime(h.at) + " " + h.actor + " " + ((YR.ref.task_statuses || {})[h.to_status] || h.to_status || ""))).join("<br>") + "</small>";
  }

  function stepForm(cardEl, step) {
    const box = cardEl.querySelector("[data-more-box]");
    box.classList.remove("hidden");
    box.dataset.form = step;
    const field = step === "complete" ? "result" : "reason";
    box.innerHTML = '<form data-step-form="' + step + '" class="stack"><label>' + YF.esc(YR.t(step === "complete" ? "task.result" : "task.cancel_reason")) +
      '<textarea name="' + field + '" maxlength="4000"' + (step === "cancel" ? " required" : "") + "></textarea></label>" +
      '<p class="alert error hidden" data-error></p><div class="row"><span class="spacer"></span><button class="' + (step === "cancel" ? "danger" : "primary") + '" type="submit">' +
      YF.esc(YR.t("task.do_" + step)) + "</button></div></form>";
    box.querySelector("textarea").focus();
  }

  async function step(cardEl, action, extra, where) {
    const body = Object.assign({ version: Number(cardEl.dataset.version) }, extra || {});
    const ok = await YR.send("POST", "/api/tasks/" + cardEl.dataset.task + "/" + action, body, where || cardEl);
    if (ok) { YF.toast(YR.t("task.moved", { status: (YR.ref.task_statuses || {})[ok.status] || ok.status }), "ok"); await loadBoard(); }
  }

  board.addEventListener("click", (ev) => {
    const cardEl = ev.target.closest("[data-task]");
    if (!cardEl) return;
    const b = ev.target.closest("[data-step]");
    if (b) {
      const s = b.dataset.step;
      if (s === "complete" || s === "cancel") stepForm(cardEl, s);
      else step(cardEl, s);
      return;
    }
    if (ev.target.closest("[data-more]")) details(cardEl);
  });
  board.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const cardEl = ev.target.closest("[data-task]");
    const f = ev.target;
    if (f.matches("[data-step-form]")) {
      const action = f.dataset.stepForm;
      const text = f.querySelector("textarea").value.trim();
      await step(cardEl, action, action === "complete" ? { result: text || null } : { reason: text }, f);
    } else if (f.matches("[data-comment]")) {
      const text = f.text.value.trim();
      if (!text) return;
      if (await YR.send("POST", "/api/tasks/" + cardEl.dataset.task + "/comments", { text: text }, f)) {
        const box = cardEl.querySelector("[data-more-box]");
        box.classList.add("hidden");
        details(cardEl);
      }
    }
  });
  YR.bindAttachments(board, (taskId, n) => {
    const meta = board.querySelector('[data-task="' + taskId + '"] .meta');
    if (!meta) return;
    let count = meta.querySelector("[data-file-count]");
    if (!count) { count = document.createElement("span"); count.dataset.fileCount = ""; meta.appendChild(count); }
    count.textContent = YR.t("attach.count", { n: n });
  });
  document.querySelector("[data-warnings]").addEventListener("click", async (ev) => {
    const b = ev.target.closest("[data-ack]");
    if (!b) return;
    if (await YR.send("POST", "/api/warnings/" + b.dataset.ack + "/acknowledge", undefined, b.closest(".warning-card"))) {
      YF.toast(YR.t("warning.acked"), "ok");
      loadWarnings();
    }
  });
  if (select) select.addEventListener("change", () => { loadBoard(); loadWarnings(); });
  loadEvents().then(() => Promise.all([loadBoard(), loadWarnings()]));
})();
