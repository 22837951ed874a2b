/* Card entry: the national card's fields, checked as you type by the server's validator
   (the same rules as import and submission), then submitted to the card API. Errors are
   shown under the fields the user has touched, and under every field after a submit. */
(function () {
  "use strict";
  const cfg = window.YF_CARD;
  const form = document.getElementById("card-form");
  const touched = new Set();
  let showAll = false;
  let timer = null;
  let seq = 0;
  let lastErrors = [];
  let version = null;
  const byCode = Object.fromEntries(cfg.diseases.map((d) => [d.code, d]));

  function values() {
    const data = {};
    for (const el of form.elements) {
      if (!el.name || el.closest(".field.hidden")) continue;
      let v = el.value.trim();
      if (el.name === "diagnosis_time" && v) v = v.slice(0, 13) + ":00";
      data[el.name] = v === "" ? null : v;
    }
    return data;
  }

  function setOptions(select, items, keep) {
    const current = keep ? select.value : "";
    select.innerHTML = '<option value="">' + YF.esc(YF.t("card.choose_option")) + "</option>" +
      items.map((i) => '<option value="' + YF.esc(i.code) + '">' + YF.esc(YF.lang === "en" ? i.en || i.zh : i.zh) + "</option>").join("");
    if (current && items.some((i) => i.code === current)) select.value = current;
  }

  const allClassifications = Array.from(form.classification.options).filter((o) => o.value)
    .map((o) => ({ code: o.value, zh: o.textContent, en: o.textContent }));

  function onDisease() {
    const d = byCode[form.disease_code.value];
    const subField = form.querySelector('[data-field="subtype_code"]');
    const chronField = form.querySelector('[data-field="chronicity"]');
    const subs = (d && d.subtypes) || [];
    subField.classList.toggle("hidden", !subs.length);
    if (subs.length) {
      setOptions(form.subtype_code, subs.map((s) => ({ code: s.code, zh: s.name_zh || s.zh, en: s.name_en || s.en })), true);
    }
    chronField.classList.toggle("hidden", !(d && d.chronicity && d.chronicity.length));
    const allowed = d && d.classifications && d.classifications.length ? d.classifications : null;
    for (const opt of form.classification.options) {
      if (!opt.value) continue;
      opt.hidden = opt.disabled = !!allowed && !allowed.includes(opt.value);
    }
    if (form.classification.selectedOptions[0] && form.classification.selectedOptions[0].disabled) form.classification.value = "";
  }

  function onOccupation() {
    form.querySelector('[data-field="occupation_other"]').classList.toggle("hidden", form.occupation.value !== "29");
  }

  function showErrors(errors) {
    lastErrors = errors;
    const byField = {};
    for (const e of errors) (byField[e.field] = byField[e.field] || []).push(YF.lang === "en" ? e.message_en : e.message_zh);
    form.querySelectorAll("[data-error-for]").forEach((span) => {
      const name = span.dataset.errorFor;
      const visible = showAll || touched.has(name);
      const msgs = visible ? byField[name] || [] : [];
      span.textContent = msgs.join(YF.t("list_sep"));
      const wrap = span.closest(".field");
      if (wrap) {
        const fieldNames = Array.from(wrap.querySelectorAll("[data-error-for]")).map((s) => s.dataset.errorFor);
        const bad = fieldNames.some((n) => (showAll || touched.has(n)) && byField[n]);
        const good = fieldNames.every((n) => touched.has(n) && !byField[n]);
        wrap.classList.toggle("invalid", bad);
        wrap.classList.toggle("valid", !bad && good);
      }
    });
    // errors on fields not on the form (e.g. card_number) go to the summary
    const known = new Set(Array.from(form.querySelectorAll("[data-error-for]")).map((s) => s.dataset.errorFor));
    const other = errors.filter((e) => !known.has(e.field) || form.querySelector('[data-field="' + e.field + '"].hidden'));
    const state = form.querySelector("[data-check-state]");
    state.textContent = errors.length ? YF.t("card.problems", { n: errors.length }) : YF.t("card.valid");
    state.style.color = errors.length ? "var(--bad)" : "var(--ok)";
    const summary = form.querySelector("[data-summary]");
    if (showAll && other.length) {
      summary.className = "alert error";
      summary.textContent = other.map((e) => (YF.lang === "en" ? e.message_en : e.message_zh)).join(YF.t("list_sep"));
    } else if (!summary.classList.contains("ok")) {
      summary.className = "alert hidden";
    }
  }

  async function check() {
    const mine = ++seq;
    form.querySelector("[data-check-state]").textContent = YF.t("card.checking");
    const r = await YF.api("POST", cfg.validateUrl, values());
    if (mine !== seq) return null; // a newer check is under way
    if (!r.ok) { form.querySelector("[data-check-state]").textContent = YF.errorText(r); return null; }
    const errors = r.data.errors || (r.data.fields) || [];
    showErrors(errors);
    return errors;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(check, 350);
  }

  form.addEventListener("input", (ev) => { if (ev.target.name) { touched.add(ev.target.name); schedule(); } });
  form.addEventListener("change", (ev) => {
    if (!ev.target.name) return;
    touched.add(ev.target.name);
    if (ev.target.name === "disease_code") onDisease();
    if (ev.target.name === "occupation") onOccupation();
    schedule();
  });

  async function send(submit) {
    showAll = true;
    clearTimeout(timer);
    const errors = await check();
    if (errors === null) return;
    if (errors.length && submit) {
      YF.toast(YF.t("card.fix_first"), "error");
      const first = form.querySelector(".field.invalid input, .field.invalid select");
      if (first) first.focus();
      return;
    }
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    let r;
    if (cfg.cardId) {
      r = await YF.api("PATCH", "/api/cards/" + cfg.cardId, { version: version, changes: values() });
      if (r.ok) r = await YF.api("POST", "/api/cards/" + cfg.cardId + "/submit", { version: r.data.version });
    } else {
      r = await YF.api("POST", "/api/cards" + (submit ? "" : "?submit=false"), values());
    }
    buttons.forEach((b) => (b.disabled = false));
    const summary = form.querySelector("[data-summary]");
    if (r.ok) {
      const card = r.data.card || r.data;
      summary.className = "alert ok";
      summary.innerHTML = YF.esc(submit ? YF.t("card.saved", { number: card.card_number }) : YF.t("card.draft_saved")) +
        ' · <a href="/cards/' + encodeURIComponent(card.id) + '">' + YF.esc(card.card_number) + "</a>";
      summary.scrollIntoView({ behavior: "smooth", block: "center" });
      if (!cfg.cardId) {
        const keep = { org_code: form.org_code.value, doctor_name: form.doctor_name.value, fill_date: form.fill_date.value };
        form.reset();
        for (const [k, v] of Object.entries(keep)) form.elements[k].value = v;
        touched.clear();
        showAll = false;
        onDisease();
        onOccupation();
        showErrors([]);
        form.querySelector("[data-check-state]").textContent = "";
      } else {
        setTimeout(() => { location.href = "/cards/" + cfg.cardId; }, 800);
      }
    } else {
      const d = r.data || {};
      const fields = d.fields || (d.detail && d.detail.fields);
      if (fields && fields.length) showErrors(fields);
      summary.className = "alert error";
      summary.textContent = r.status === 409 ? YF.t("card.conflict") : (d.message_zh ? (YF.lang === "en" ? d.message_en : d.message_zh) : YF.errorText(r));
    }
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); send(true); });
  const draft = form.querySelector('[data-action="draft"]');
  if (draft) draft.addEventListener("click", () => send(false));

  async function loadExisting() {
    const r = await YF.api("GET", "/api/cards/" + cfg.cardId + "?reveal=true");
    if (!r.ok) { YF.toast(YF.errorText(r), "error"); return; }
    const card = r.data.card || r.data;
    version = card.version;
    for (const el of form.elements) {
      if (!el.name || !(el.name in card) || card[el.name] === null) continue;
      let v = String(card[el.name]);
      if (el.name === "diagnosis_time") v = v.slice(0, 16);
      if (el.name === "disease_code") { el.value = v; onDisease(); continue; }
      el.value = v;
    }
    onOccupation();
    if (card.returned_reason) {
      const box = document.querySelector("[data-returned-reason]");
      box.textContent = YF.t("card.returned_because", { reason: card.returned_reason });
      box.classList.remove("hidden");
    }
    for (const el of form.elements) if (el.name) touched.add(el.name);
    check();
  }

  onDisease();
  onOccupation();
  if (cfg.cardId) loadExisting();
})();
