/* One card: its fields (personal data masked until the user reveals them, which the API
   audits), its history, and the actions the user's role allows on it. */
(function () {
  "use strict";
  const CODES = window.YF_CODES || {};
  const DISEASES = window.YF_DISEASES || {};
  const PLACES = window.YF_PLACES || { regions: {}, orgs: {} };
  const root = document.getElementById("card-detail");
  const id = root.dataset.cardId;
  const can = (p) => !!(YF.user && YF.user.permissions.includes(p));
  let card = null;
  let revealed = false;

  const GROUPS = {
    status: ["card_number", "report_type", "status", "org_code", "doctor_name", "fill_date", "entered_at",
      "created_by", "submitted_at", "review_due_at", "reviewed_at", "reviewed_by", "returned_reason"],
    patient: ["patient_name", "guardian_name", "sex", "birth_date", "age_value", "id_type", "id_number", "phone",
      "occupation", "work_unit", "residence_category", "address_code", "address_detail"],
    disease: ["disease_code", "subtype_code", "classification", "chronicity", "onset_date", "diagnosis_time",
      "death_date", "remarks"],
  };
  const TIMES = new Set(["entered_at", "submitted_at", "reviewed_at", "review_due_at"]);

  function place(code) {
    if (!code) return "";
    const r = PLACES.regions || {};
    return [r[code.slice(0, 6)], r[code.slice(0, 9)]].filter(Boolean).join(" ") || code;
  }

  function show(key, c) {
    const v = c[key];
    if (v === null || v === undefined || v === "") return "—";
    if (key === "status") return YF.statusBadge(v);
    if (TIMES.has(key)) {
      if (key === "review_due_at" && c.status === "submitted") {
        return YF.esc(YF.fmtTime(v)) + ' <span class="due" data-due="' + YF.esc(v) + '"></span>';
      }
      return YF.esc(YF.fmtTime(v));
    }
    if (key === "diagnosis_time") return YF.esc(YF.fmtWall(v));
    if (key === "disease_code") {
      const d = DISEASES[v];
      return YF.esc(d ? (YF.lang === "en" ? d.en : d.zh) : v);
    }
    if (key === "org_code") return YF.esc((PLACES.orgs || {})[v] || v);
    if (key === "address_code") return YF.esc(place(v));
    if (key === "age_value") return YF.esc(v + " " + YF.label(CODES.age_unit, c.age_unit || "01"));
    if (CODES[key]) return YF.esc(YF.label(CODES[key], v));
    return YF.esc(v);
  }

  function renderCard() {
    for (const [group, keys] of Object.entries(GROUPS)) {
      const dl = root.querySelector('[data-group="' + group + '"]');
      dl.innerHTML = keys.filter((k) => k in card && (card[k] !== null || group !== "status"))
        .map((k) => "<div><dt>" + YF.esc(YF.t("card.field." + k)) + "</dt><dd>" + show(k, card) + "</dd></div>").join("");
    }
    document.querySelector("[data-title]").textContent = YF.t("card.title_number", { number: card.card_number });
    document.querySelector("[data-status]").innerHTML = YF.statusBadge(card.status);
    renderActions();
    YF.startCountdowns(root);
  }

  function renderActions() {
    const box = document.querySelector("[data-actions]");
    box.querySelectorAll("[data-act]").forEach((b) => b.remove());
    const add = (act, label, cls) => {
      const b = document.createElement(act === "edit" ? "a" : "button");
      b.dataset.act = act;
      b.className = (act === "edit" ? "button " : "") + (cls || "");
      b.textContent = YF.t(label);
      if (act === "edit") b.href = "/cards/" + id + "/edit";
      else b.type = "button";
      box.prepend(b);
    };
    if (can("card.delete") && card.status !== "deleted") add("delete", "act.delete", "danger");
    if (can("card.edit") && (card.status === "returned" || card.status === "draft")) add("edit", "act.fix", "primary");
    if (can("card.review") && card.status === "submitted") {
      add("return", "act.return");
      add("accept", "act.accept", "primary");
    }
  }

  async function load() {
    const r = await YF.api("GET", "/api/cards/" + id + (revealed ? "?reveal=true" : ""));
    if (!r.ok) {
      root.innerHTML = '<p class="alert error">' + YF.esc(r.status === 404 ? YF.t("card.not_found") : YF.errorText(r)) + "</p>";
      return;
    }
    card = r.data.card || r.data;
    renderCard();
    renderHistory(r.data.history || []);
  }

  function renderHistory(items) {
    const list = root.querySelector("[data-history]");
    if (!items.length) { list.innerHTML = '<li class="muted">' + YF.esc(YF.t("history.empty")) + "</li>"; return; }
    list.innerHTML = items.map((h) => "<li><strong>" + YF.esc(YF.t("history." + h.action) !== "history." + h.action ? YF.t("history." + h.action) : h.action) +
      "</strong> · " + YF.esc(h.actor || "") + ' · <span class="muted">' + YF.esc(YF.fmtTime(h.at)) + "</span>" +
      (h.reason ? "<br>" + YF.esc(h.reason) : "") + "</li>").join("");
  }

  const dialog = document.getElementById("return-dialog");
  let pending = null;
  async function post(url, body, okKey) {
    const r = await YF.api("POST", url, body);
    if (r.ok) YF.toast(YF.t(okKey), "ok");
    else YF.toast(r.status === 409 ? YF.t("card.conflict") : YF.errorText(r), "error");
    load();
  }
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-act]");
    if (ev.target.closest("[data-close]")) { dialog.close("cancel"); return; }
    if (ev.target.closest("[data-reveal]")) { revealed = true; load(); return; }
    if (!b || b.tagName === "A") return;
    if (b.dataset.act === "accept") {
      if (confirm(YF.t("card.confirm_accept"))) post("/api/cards/" + id + "/review", { version: card.version }, "card.accepted");
    } else if (b.dataset.act === "return" || b.dataset.act === "delete") {
      pending = b.dataset.act;
      dialog.querySelector("[data-dialog-title]").textContent = YF.t(pending === "return" ? "act.return" : "act.delete");
      dialog.querySelector("textarea").value = "";
      dialog.showModal();
    }
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "ok") return;
    const reason = dialog.querySelector("textarea").value.trim();
    if (!reason) { YF.toast(YF.t(pending === "return" ? "card.return_reason" : "card.delete_reason"), "error"); return; }
    if (pending === "return") post("/api/cards/" + id + "/return", { version: card.version, reason: reason }, "card.returned_ok");
    else post("/api/cards/" + id + "/delete", { version: card.version, reason: reason, reason_code: "other" }, "card.deleted_ok");
  });
  load();
})();
