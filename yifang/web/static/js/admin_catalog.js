/* Shared by the catalog's administration pages (diseases, organisations): errors shown by
   field, form values, and the edit history read from the audit trail. Sets window.YC. */
(function () {
  "use strict";
  const YC = window.YC || (window.YC = {});

  /** The name of a field in the page's language (history and messages). */
  YC.fieldName = function (field) {
    const key = "catalog.field." + field;
    const text = YF.t(key);
    return text === key ? field : text;
  };

  /** Forget the errors shown in `form`. */
  YC.clearErrors = function (form) {
    form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; });
    form.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
    const summary = form.querySelector("[data-summary]");
    if (summary) { summary.textContent = ""; summary.classList.add("hidden"); }
  };

  /** Show an API refusal: each field's message under its input, the rest on top.
      Returns the number of fields at fault. */
  YC.showErrors = function (form, result) {
    YC.clearErrors(form);
    const data = (result && result.data) || {};
    const fields = Array.isArray(data.fields) ? data.fields : [];
    const loose = [];
    let first = null;
    for (const f of fields) {
      const text = YF.lang === "en" ? f.message_en : f.message_zh;
      const field = String(f.field);
      const slot = form.querySelector('[data-error-for="' + field.split(".")[0] + '"]');
      if (slot) {
        // under its own input a message needs no field name ("报告时限（小时）：不能小于 1")
        const own = field.includes(".") ? text : text.replace(/^[^：:]{1,40}[：:]\s*/, "");
        slot.textContent = slot.textContent ? slot.textContent + YF.t("list_sep") + own : own;
        const holder = slot.closest("label, .full, fieldset");
        if (holder) holder.classList.add("invalid");
        if (!first) first = holder || slot;
      } else {
        loose.push(text);
      }
    }
    const summary = form.querySelector("[data-summary]");
    if (summary) {
      let text;
      if (fields.length) text = [YF.t("catalog.fix_fields", { n: fields.length })].concat(loose).join(YF.t("list_sep"));
      else text = YF.errorText(result);
      summary.textContent = text;
      summary.classList.remove("hidden");
      summary.scrollIntoView({ block: "nearest" });
    }
    if (first && first.scrollIntoView) first.scrollIntoView({ block: "center" });
    return fields.length;
  };

  /** Value of a form control: trimmed text or null, a number or null, a check box's state. */
  YC.read = function (form, name) {
    const el = form.elements[name];
    if (!el) return undefined;
    if (el.type === "checkbox") return el.checked;
    const raw = String(el.value || "").trim();
    if (raw === "") return null;
    if (el.type === "number") return Number(raw);
    return raw;
  };

  /** Set a form control from a value (null clears it). */
  YC.write = function (form, name, value) {
    const el = form.elements[name];
    if (!el) return;
    if (el.type === "checkbox") el.checked = !!value;
    else el.value = value === null || value === undefined ? "" : String(value);
  };

  /** The checked values of a group of check boxes. */
  YC.checked = function (form, name) {
    return Array.from(form.querySelectorAll('input[name="' + name + '"]:checked')).map((i) => i.value);
  };

  /** The fields whose value differs from `before` (compared as JSON). */
  YC.changes = function (before, after) {
    const out = {};
    for (const [key, value] of Object.entries(after)) {
      const old = before[key] === undefined ? null : before[key];
      if (JSON.stringify(old) !== JSON.stringify(value)) out[key] = value;
    }
    return out;
  };

  /** A stored value as text for the history. */
  // Send a dialog: an edit as only its changed fields (with the reason given), or a new
  // record with its code. Null when an edit changed nothing, else the API's answer.
  YC.submit = async function (form, collection, editing, before, values) {
    if (editing) {
      const changes = YC.changes(before, values);
      if (!Object.keys(changes).length) { YF.toast(YF.t("catalog.nothing_changed"), "info"); return null; }
      const reason = YC.read(form, "reason");
      if (reason) changes.reason = reason;
      return YF.api("PATCH", collection + "/" + encodeURIComponent(editing.code), changes);
    }
    return YF.api("POST", collection, Object.assign({ code: YC.read(form, "code") }, values));
  };

  YC.fmt = function (value) {
    if (value === null || value === undefined || value === "") return "—";
    if (value === true) return YF.t("catalog.yes");
    if (value === false) return YF.t("catalog.no");
    if (Array.isArray(value)) {
      if (!value.length) return "—";
      return value.map((v) => (v && typeof v === "object" ? v.code || JSON.stringify(v) : String(v))).join(", ");
    }
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  };

  /** Load and draw the edit history of `url` (…/history) into the list `target`; the
      number of entries goes in `counter`. */
  YC.history = async function (url, target, counter) {
    target.innerHTML = '<li class="muted">' + YF.esc(YF.t("loading")) + "</li>";
    if (counter) counter.textContent = "";
    const r = await YF.api("GET", url);
    if (!r.ok) { target.innerHTML = '<li class="muted">' + YF.esc(YF.errorText(r)) + "</li>"; return; }
    if (counter) counter.textContent = YF.t("catalog.history_count", { n: r.data.length });
    if (!r.data.length) { target.innerHTML = '<li class="muted">' + YF.esc(YF.t("catalog.no_history")) + "</li>"; return; }
    target.innerHTML = r.data.map((h) => {
      const before = h.before || {};
      const after = h.after || {};
      const keys = h.action.endsWith(".create") ? [] : Object.keys(Object.assign({}, before, after));
      const lines = keys.map((k) => '<div class="change">' + YF.esc(YC.fieldName(k)) + "：<code>" + YF.esc(YC.fmt(before[k])) +
        "</code> → <code>" + YF.esc(YC.fmt(after[k])) + "</code></div>").join("");
      const action = YF.t("catalog.action." + h.action.split(".").pop());
      return "<li><strong>" + YF.esc(YF.fmtTime(h.at)) + "</strong> · " + YF.esc(h.actor) + " · " + YF.esc(action) + lines +
        (h.reason ? '<div class="muted">' + YF.esc(YF.t("catalog.reason_is", { reason: h.reason })) + "</div>" : "") + "</li>";
    }).join("");
  };

  /** Briefly mark the table row of `code` as just saved, and bring it into view. */
  YC.flash = function (tbody, code) {
    const row = tbody.querySelector('tr[data-code="' + CSS.escape(code) + '"]');
    if (!row) return;
    row.classList.add("saved");
    row.scrollIntoView({ block: "center" });
    setTimeout(() => row.classList.remove("saved"), 2600);
  };
})();
