/* Close contacts: the list (GET /api/contacts, personal data masked unless the role may
   see it), one contact's daily follow-up (POST …/follow-ups), loss to follow-up and
   conversion into a case (a draft card pre-filled from the contact, or an existing card). */
(function () {
  "use strict";
  const tbody = document.querySelector("[data-contacts]");
  const filters = document.getElementById("contact-filters");
  const panel = document.getElementById("contact");
  let current = null;

  function today() {
    const d = new Date();
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  }

  async function load() {
    const f = new FormData(filters);
    const params = new URLSearchParams();
    if (f.get("status")) params.append("status", f.get("status"));
    if (f.get("due") === "today") params.append("due_on", today());
    if (f.get("event_id")) params.append("event_id", f.get("event_id"));
    const r = await YF.api("GET", "/api/contacts?" + params.toString());
    if (!r.ok) { tbody.innerHTML = '<tr><td colspan="5" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
    tbody.innerHTML = r.data.length ? r.data.map((c) => '<tr class="clickable" data-contact="' + c.id + '"><td>' + YF.esc(c.name || "") + "</td><td>" + YF.esc(c.relation || "") +
      "</td><td>#" + c.case_card_id + " " + YF.esc(YR.disease(c.disease_code)) + "</td><td>" + YF.esc(c.follow_up_end) + "</td><td>" + YR.badge("contact_statuses", c.status) + "</td></tr>").join("")
      : '<tr><td colspan="5" class="empty">' + YF.esc(YR.t("contact.none")) + "</td></tr>";
  }

  async function open(id) {
    const r = await YF.api("GET", "/api/contacts/" + id);
    if (!r.ok) { YF.toast(YF.errorText(r), "error"); return; }
    const c = (current = r.data);
    panel.querySelector("[data-placeholder]").classList.add("hidden");
    panel.querySelector("[data-detail]").classList.remove("hidden");
    panel.querySelector("[data-ct-title]").textContent = (c.name || "") + (c.relation ? " · " + c.relation : "");
    panel.querySelector("[data-ct-status]").innerHTML = YR.badge("contact_statuses", c.status);
    const rows = [
      ["contact.case", "#" + c.case_card_id + " " + YR.disease(c.disease_code)], ["contact.event_id", c.event_id || "—"],
      ["contact.phone", c.phone || "—"], ["contact.last_exposure", c.last_exposure], ["contact.until", c.follow_up_end],
      ["signals.region", YR.region(c.address_code || c.region_code)],
    ];
    if (c.converted_card_id) rows.push(["contact.converted_card", "#" + c.converted_card_id]);
    panel.querySelector("[data-ct-fields]").innerHTML = rows.map(([k, v]) => "<dt>" + YF.esc(YR.t(k)) + "</dt><dd>" + YF.esc(v) + "</dd>").join("");
    panel.querySelector("[data-follow-ups]").innerHTML = c.follow_ups.length ? c.follow_ups.map((f) => "<tr" + (f.condition === "symptomatic" ? ' class="overdue"' : "") + "><td>" + YF.esc(f.day) +
      "</td><td>" + YF.esc(YR.t("contact.condition_" + f.condition)) + "</td><td>" + YF.esc(f.temperature === null ? "—" : f.temperature + " °C") + "</td><td>" +
      YF.esc((f.symptoms || []).join("、")) + (f.note ? " · " + YF.esc(f.note) : "") + "</td><td>" + YF.esc(f.recorded_by) + "</td></tr>").join("")
      : '<tr><td colspan="5" class="empty">' + YF.esc(YR.t("contact.no_follow_ups")) + "</td></tr>";
    const following = c.status === "following";
    const fu = document.getElementById("follow-up");
    if (fu) { fu.classList.toggle("hidden", !following); fu.day.value = today(); }
    const conv = panel.querySelector("[data-convert-wrap]");
    if (conv) conv.classList.toggle("hidden", c.status === "converted");
  }

  tbody.addEventListener("click", (ev) => { const tr = ev.target.closest("[data-contact]"); if (tr) open(Number(tr.dataset.contact)); });
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });

  const add = document.getElementById("add-contact");
  if (add) {
    add.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(add);
      const body = { case_card_id: Number(v.case_card_id), event_id: v.event_id ? Number(v.event_id) : null, name: v.name, sex: v.sex || null,
        relation: v.relation || null, phone: v.phone || null, last_exposure: v.last_exposure };
      const made = await YR.send("POST", "/api/contacts", body, add);
      if (made) { add.reset(); await load(); open(made.id); }
    });
  }
  const fu = document.getElementById("follow-up");
  if (fu) {
    fu.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(fu);
      const body = { day: v.day, condition: v.condition, temperature: v.temperature ? Number(v.temperature) : null,
        symptoms: (v.symptoms || "").split(/[,，、]+/).map((s) => s.trim()).filter(Boolean), note: v.note || null };
      if (await YR.send("POST", "/api/contacts/" + current.id + "/follow-ups", body, fu)) { YF.toast(YR.t("contact.recorded"), "ok"); open(current.id); load(); }
    });
  }
  const conv = document.getElementById("convert");
  if (conv) {
    conv.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(conv);
      const body = { version: current.version };
      if (v.card_id) body.card_id = Number(v.card_id);
      else {
        body.card = {};
        for (const k of ["onset_date", "classification", "occupation", "residence_category", "org_code", "doctor_name"]) if (v[k]) body.card[k] = v[k];
        if (v.diagnosis_time) body.card.diagnosis_time = v.diagnosis_time;
      }
      const done = await YR.send("POST", "/api/contacts/" + current.id + "/convert", body, conv);
      if (done) { YF.toast(YR.t("contact.converted", { id: done.card_id }), "ok"); open(current.id); load(); }
    });
    conv.querySelector("[data-lost]").addEventListener("click", async () => {
      const reason = window.prompt(YR.t("contact.lost_reason"));
      if (!reason) return;
      if (await YR.send("POST", "/api/contacts/" + current.id + "/lost", { version: current.version, reason: reason }, conv)) { open(current.id); load(); }
    });
  }
  load();
})();
