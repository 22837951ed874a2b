/* Card tables (my cards, review queue, card list): rows from GET /api/cards, which applies
   the caller's jurisdiction and masks personal data; keyset paging with "load more";
   review actions; filters and export on the card list. */
(function () {
  "use strict";
  const CODES = window.YF_CODES || {};
  const DISEASES = window.YF_DISEASES || {};
  const PLACES = window.YF_PLACES || { regions: {}, orgs: {} };
  const can = (p) => !!(YF.user && YF.user.permissions.includes(p));
  const nameOf = (entry, code) => (entry ? (YF.lang === "en" ? entry.en || entry.zh : entry.zh) : code || "");

  function place(code) {
    if (!code) return "";
    const r = PLACES.regions || {};
    const town = r[code.slice(0, 9)];
    const county = r[code.slice(0, 6)];
    return [county, town].filter(Boolean).join(" ") || code;
  }

  function ageText(c) {
    if (c.age_value === null || c.age_value === undefined) return "";
    const unit = YF.label(CODES.age_unit, c.age_unit || "01");
    return c.age_value + (YF.lang === "en" ? " " : "") + unit;
  }

  const COLUMNS = {
    number: { head: "col.number", cell: (c) => '<a href="/cards/' + c.id + '">' + YF.esc(c.card_number) + "</a>" },
    patient: { head: "col.patient", cell: (c) => YF.esc(c.patient_name) },
    sex: { head: "col.sex", cell: (c) => YF.esc(YF.label(CODES.sex, c.sex)), opt: true },
    age: { head: "col.age", cell: (c) => YF.esc(ageText(c)), opt: true },
    disease: { head: "col.disease", cell: (c) => YF.esc(nameOf(DISEASES[c.disease_code], c.disease_code)) },
    classification: { head: "col.classification", cell: (c) => YF.esc(YF.label(CODES.classification, c.classification)), opt: true },
    address: { head: "col.address", cell: (c) => YF.esc(place(c.address_code)), opt: true },
    org: { head: "col.org", cell: (c) => YF.esc((PLACES.orgs || {})[c.org_code] || c.org_code), opt: true },
    diagnosis: { head: "col.diagnosis", cell: (c) => YF.esc(YF.fmtWall(c.diagnosis_time)) },
    entered: { head: "col.entered", cell: (c) => YF.esc(YF.fmtTime(c.entered_at)), opt: true },
    submitted: { head: "col.submitted", cell: (c) => YF.esc(YF.fmtTime(c.submitted_at)), opt: true },
    status: { head: "col.status", cell: (c) => YF.statusBadge(c.status) },
    review_due: {
      head: "col.review_due",
      cell: (c) => (c.status === "submitted" && c.review_due_at ? '<span class="due" data-due="' + YF.esc(c.review_due_at) + '"></span>' : ""),
    },
    due: { head: "col.due", cell: (c) => (c.review_due_at ? '<span class="due" data-due="' + YF.esc(c.review_due_at) + '"></span>' : "") },
    returned_reason: { head: "col.returned_reason", cell: (c) => YF.esc(c.returned_reason || "") },
    actions: {
      head: "col.actions",
      cell: (c) => {
        const out = [];
        if (c.status === "returned" && can("card.edit")) out.push('<a class="button" href="/cards/' + c.id + '/edit">' + YF.esc(YF.t("act.fix")) + "</a>");
        if (c.status === "submitted" && can("card.review")) {
          out.push('<button type="button" class="primary" data-accept="' + c.id + '" data-version="' + c.version + '">' + YF.esc(YF.t("act.accept")) + "</button>");
          out.push('<button type="button" data-return="' + c.id + '" data-version="' + c.version + '">' + YF.esc(YF.t("act.return")) + "</button>");
        }
        return '<span class="row" style="flex-wrap:nowrap">' + out.join("") + "</span>";
      },
    },
  };

  class CardTable {
    constructor(table) {
      this.table = table;
      this.name = table.dataset.cards;
      this.columns = table.dataset.columns.split(",");
      this.baseQuery = table.dataset.query || "";
      this.filters = "";
      this.sort = table.dataset.sort || "";
      this.rows = [];
      this.cursor = null;
      this.more = document.querySelector('[data-more="' + this.name + '"]');
      table.querySelector("thead").innerHTML = "<tr>" + this.columns.map((k) =>
        '<th class="' + (COLUMNS[k].opt ? "opt" : "") + '">' + YF.esc(YF.t(COLUMNS[k].head)) + "</th>").join("") + "</tr>";
      if (this.more) this.more.addEventListener("click", () => this.load(true));
    }

    url(next) {
      const q = [this.baseQuery, this.filters].filter(Boolean).join("&");
      return "/api/cards?" + q + (next && this.cursor ? "&cursor=" + encodeURIComponent(this.cursor) : "");
    }

    async load(next) {
      const r = await YF.api("GET", this.url(next));
      const body = this.table.querySelector("tbody");
      if (!r.ok) {
        body.innerHTML = '<tr><td colspan="' + this.columns.length + '" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>";
        return;
      }
      const items = r.data.items || r.data;
      this.cursor = r.data.next_cursor || null;
      this.rows = next ? this.rows.concat(items) : items;
      if (this.sort === "due") {
        this.rows.sort((a, b) => String(a.review_due_at || "9").localeCompare(String(b.review_due_at || "9")));
      }
      this.render();
    }

    render() {
      const body = this.table.querySelector("tbody");
      if (!this.rows.length) {
        const key = this.name === "review" ? "review.empty" : this.name === "returned" ? "mine.none_returned" : "none";
        body.innerHTML = '<tr><td colspan="' + this.columns.length + '" class="empty">' + YF.esc(YF.t(key)) + "</td></tr>";
      } else {
        body.innerHTML = this.rows.map((c) => '<tr data-id="' + c.id + '">' + this.columns.map((k) =>
          '<td class="' + (COLUMNS[k].opt ? "opt" : "") + '">' + COLUMNS[k].cell(c) + "</td>").join("") + "</tr>").join("");
      }
      if (this.more) this.more.classList.toggle("hidden", !this.cursor);
      const count = document.querySelector("[data-count]");
      if (count && this.name === "list") {
        count.textContent = this.cursor ? YF.t("cards.count", { n: this.rows.length }) : YF.t("cards.all_shown", { n: this.rows.length });
      }
      YF.startCountdowns(this.table);
    }
  }

  const tables = Array.from(document.querySelectorAll("[data-cards]")).map((t) => new CardTable(t));

  /* review actions */
  const dialog = document.getElementById("return-dialog");
  async function act(url, body, okKey) {
    const r = await YF.api("POST", url, body);
    if (r.ok) YF.toast(YF.t(okKey), "ok");
    else YF.toast(r.status === 409 ? YF.t("card.conflict") : YF.errorText(r), "error");
    tables.forEach((t) => t.load(false));
  }
  document.addEventListener("click", (ev) => {
    const accept = ev.target.closest("[data-accept]");
    if (accept) {
      if (!confirm(YF.t("card.confirm_accept"))) return;
      act("/api/cards/" + accept.dataset.accept + "/review", { version: Number(accept.dataset.version) }, "card.accepted");
      return;
    }
    const ret = ev.target.closest("[data-return]");
    if (ret && dialog) {
      dialog.returnValue = "";
      dialog.querySelector("textarea").value = "";
      dialog.dataset.card = ret.dataset.return;
      dialog.dataset.version = ret.dataset.version;
      dialog.showModal();
    }
    if (ev.target.closest("[data-close]")) ev.target.closest("dialog").close("cancel");
  });
  if (dialog) {
    dialog.addEventListener("close", () => {
      const reason = dialog.querySelector("textarea").value.trim();
      if (dialog.returnValue !== "ok") return;
      if (!reason) { YF.toast(YF.t("card.return_reason"), "error"); return; }
      act("/api/cards/" + dialog.dataset.card + "/return", { version: Number(dialog.dataset.version), reason: reason }, "card.returned_ok");
    });
  }

  /* filters and export on the card list */
  const filters = document.getElementById("filters");
  const list = tables.find((t) => t.name === "list");
  function filterQuery() {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (v) params.append(k, v);
    return params.toString();
  }
  if (filters && list) {
    const initial = new URLSearchParams(location.search);
    for (const [k, v] of initial) if (filters.elements[k]) filters.elements[k].value = v;
    list.filters = filterQuery();
    filters.addEventListener("submit", (ev) => {
      ev.preventDefault();
      list.filters = filterQuery();
      history.replaceState(null, "", "?" + list.filters);
      list.load(false);
    });
    filters.addEventListener("reset", () => setTimeout(() => { list.filters = ""; history.replaceState(null, "", location.pathname); list.load(false); }, 0));
    document.querySelectorAll("[data-export]").forEach((a) => a.addEventListener("click", (ev) => {
      ev.preventDefault();
      const q = filterQuery();
      location.href = "/api/cards/export?format=" + a.dataset.export + (q ? "&" + q : "");
    }));
  }
  tables.forEach((t) => t.load(false));
})();
