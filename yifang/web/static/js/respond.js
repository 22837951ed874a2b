/* Shared helpers of the response pages: their messages (R), code labels, badges and
   posting a form's values to the API. Loaded after app.js; the page passes
   window.YF_RESPOND (messages), window.YF_REF (code lists), YF_DISEASES and YF_PLACES. */
(function () {
  "use strict";
  const RS = window.YF_RESPOND || {};
  const REF = window.YF_REF || {};
  const DISEASES = window.YF_DISEASES || {};
  const PLACES = window.YF_PLACES || { regions: {}, orgs: {} };
  const YR = (window.YR = {});

  /** A response-page message, `{name}` filled from `params`. */
  YR.t = function (key, params) {
    let text = RS[key] || RS["respond." + key] || key;
    if (params) {
      for (const [name, value] of Object.entries(params)) text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  };
  YR.ref = REF;
  YR.can = (p) => !!(window.YF_RIGHTS || {})[p];
  YR.disease = (code) => { const d = DISEASES[code]; return d ? (YF.lang === "en" ? d.en : d.zh) : (code || "—"); };
  // What a signal or verification watched: its disease, or a syndrome's or stream's name.
  YR.watched = (v) => v.disease_code ? YR.disease(v.disease_code) : ((YF.lang === "en" ? v.series_name_en : v.series_name_zh) || v.series_code || "—");
  YR.region = (code) => {
    if (!code) return "—";
    const regions = PLACES.regions || {};
    if (regions[code]) return regions[code];
    if (code.length > 6 && regions[code.slice(0, 6)]) return regions[code.slice(0, 6)] + " " + code;
    return code;
  };
  YR.org = (code) => (code ? (PLACES.orgs || {})[code] || code : "—");
  YR.owner = (code) => (REF.owners || {})[code] || code;
  YR.level = (lvl) => (lvl ? lvl + " " + ((REF.levels || {})[lvl] || "") : YR.t("level.none"));

  /** A status badge; `table` names the reference list of labels. */
  YR.badge = function (table, status) {
    const label = ((REF[table] || {})[status]) || status;
    return '<span class="badge ' + YF.esc(status) + '">' + YF.esc(label) + "</span>";
  };
  YR.levelBadge = function (lvl) {
    if (!lvl) return '<span class="badge">' + YF.esc(YR.t("level.none")) + "</span>";
    const colour = (REF.level_colours || {})[lvl] || "";
    return '<span class="badge level-' + YF.esc(colour) + '">' + YF.esc(YR.level(lvl)) + "</span>";
  };
  YR.riskBadge = function (level) {
    if (!level) return "";
    const band = (REF.risk_levels || []).find((b) => b.level === level);
    return '<span class="badge risk-' + YF.esc(level) + '">' + YF.esc(band ? band.name : level) + "</span>";
  };
  YR.options = function (table, selected, empty) {
    const rows = Object.entries(table || {}).map(([k, v]) =>
      '<option value="' + YF.esc(k) + '"' + (k === selected ? " selected" : "") + ">" + YF.esc(v) + "</option>");
    return (empty !== undefined ? '<option value="">' + YF.esc(empty) + "</option>" : "") + rows.join("");
  };
  YR.date = (iso) => (iso ? String(iso).slice(0, 10) : "—");

  /** A form's values as an object; `lists` names fields kept as arrays. */
  YR.values = function (form, lists) {
    const out = {};
    const many = new Set(lists || []);
    for (const [k, v] of new FormData(form)) {
      if (many.has(k)) (out[k] = out[k] || []).push(v);
      else out[k] = typeof v === "string" ? v.trim() : v;
    }
    for (const k of many) if (!out[k]) out[k] = [];
    return out;
  };

  /** POST (or another method) to the API; shows the error in `where` (or a toast) and
      resolves to the answer's data, or null on failure. */
  YR.send = async function (method, url, body, where) {
    const buttons = where && where.querySelectorAll ? where.querySelectorAll("button") : [];
    buttons.forEach((b) => (b.disabled = true));
    const r = await YF.api(method, url, body);
    buttons.forEach((b) => (b.disabled = false));
    const slot = where && where.querySelector ? where.querySelector("[data-error]") : null;
    if (!r.ok) {
      const text = r.status === 409 ? YF.errorText(r) + " " + YR.t("reload_hint") : YF.errorText(r);
      if (slot) { slot.textContent = text; slot.classList.remove("hidden"); }
      else YF.toast(text, "error");
      return null;
    }
    if (slot) { slot.textContent = ""; slot.classList.add("hidden"); }
    return r.data === null || r.data === "" ? {} : r.data;
  };

  /** A size in bytes as KB or MB. */
  YR.size = function (n) {
    if (n >= 1048576) return (n / 1048576).toFixed(n % 1048576 ? 1 : 0) + " MB";
    return n < 1024 ? n + " B" : Math.round(n / 1024) + " KB";
  };
  /** The message of the first field at fault of an API refusal (else the whole message). */
  YR.fieldText = function (r) {
    const f = r && r.data && r.data.fields && r.data.fields[0];
    if (f) return YF.lang === "en" ? f.message_en : f.message_zh;
    return YF.errorText(r);
  };

  // ---- task attachments: list (GET /api/tasks/{id}/attachments), download
  // (GET /api/attachments/{id}), upload (POST /api/tasks/{id}/attachments, multipart) and
  // withdraw (DELETE /api/attachments/{id}: whoever attached it, or an event manager).
  // The size limit and the accepted types come from response.yaml through YF_REF; the
  // server checks them again, with the file's first bytes.
  const MAX = REF.attachment_max_bytes || 0;
  const TYPES = REF.attachment_types || [];

  function fileItem(a, readOnly) {
    const me = window.YF.user && window.YF.user.username;
    const mayWithdraw = !readOnly && (a.uploaded_by === me || YR.can("event.manage"));
    return '<li data-attachment="' + a.id + '"><a href="/api/attachments/' + a.id + '" download="' + YF.esc(a.filename) + '">' + YF.esc(a.filename) + "</a> " +
      '<small class="muted">' + YF.esc(YR.size(a.size)) + " · " + YF.esc(YR.t("attach.by", { who: a.uploaded_by, time: YF.fmtTime(a.uploaded_at) })) + "</small>" +
      (mayWithdraw ? ' <button type="button" class="link" data-withdraw="' + a.id + '" data-name="' + YF.esc(a.filename) + '">' + YF.esc(YR.t("attach.withdraw")) + "</button>" : "") + "</li>";
  }

  function fileList(files, readOnly) {
    return files.length ? files.map((a) => fileItem(a, readOnly)).join("") : '<li class="muted" data-no-files>' + YF.esc(YR.t("attach.none")) + "</li>";
  }

  /** The attachments block of a task: its files and, unless `readOnly`, an upload form. */
  YR.attachmentsHtml = function (taskId, files, readOnly) {
    const list = fileList(files, readOnly);
    return '<div class="attachments" data-attachments="' + taskId + '"><strong>' + YF.esc(YR.t("attach.title")) + "</strong>" +
      '<ul class="files" data-files-list>' + list + "</ul>" + (readOnly ? "" :
      '<form data-attach-form class="row" enctype="multipart/form-data"><input type="file" name="file" accept="' + YF.esc(TYPES.map((t) => "." + t).join(",")) + '">' +
      '<button type="submit">' + YF.esc(YR.t("attach.upload")) + "</button></form>" +
      '<small class="muted">' + YF.esc(YR.t("attach.limits", { limit: YR.size(MAX), types: TYPES.join(", ") })) + "</small>" +
      '<p class="alert error hidden" data-attach-error></p>') + "</div>";
  };

  /** Why a chosen file would be refused before sending it (size, type), or "". */
  YR.checkFile = function (file) {
    const ext = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
    if (TYPES.length && !TYPES.includes(ext)) return YR.t("attach.type_refused", { ext: ext, types: TYPES.join(", ") });
    if (MAX && file.size > MAX) return YR.t("attach.too_large", { name: file.name, size: YR.size(file.size), limit: YR.size(MAX) });
    return "";
  };

  /** Send one file to a task; resolves to {ok, status, data} like YF.api. */
  YR.upload = async function (taskId, file) {
    const headers = { Accept: "application/json" };
    const csrf = document.querySelector('meta[name="csrf-token"]');
    if (csrf && csrf.content) headers["X-CSRF-Token"] = csrf.content;
    const body = new FormData();
    body.append("file", file, file.name);
    let response;
    try {
      response = await fetch("/api/tasks/" + taskId + "/attachments", { method: "POST", headers: headers, body: body, credentials: "same-origin" });
    } catch (err) {
      return { ok: false, status: 0, data: { detail: YF.t("network_error") } };
    }
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    return { ok: response.ok, status: response.status, data: data };
  };

  /** Handle the upload forms of attachment blocks inside `container`; `changed(taskId, n)`
      is told the task's new number of files. */
  YR.bindAttachments = function (container, changed) {
    container.addEventListener("submit", async (ev) => {
      const form = ev.target.closest("[data-attach-form]");
      if (!form) return;
      ev.preventDefault();
      ev.stopPropagation();
      const block = form.closest("[data-attachments]");
      const slot = block.querySelector("[data-attach-error]");
      const show = (text) => { slot.textContent = text; slot.classList.toggle("hidden", !text); };
      const file = form.file.files[0];
      if (!file) { show(YR.t("attach.pick")); return; }
      const refused = YR.checkFile(file);
      if (refused) { show(refused); return; }
      const button = form.querySelector("button");
      button.disabled = true;
      const r = await YR.upload(block.dataset.attachments, file);
      button.disabled = false;
      if (!r.ok) { show(YR.fieldText(r)); return; }
      show("");
      form.reset();
      YF.toast(YR.t("attach.uploaded", { name: r.data.filename }), "ok");
      await refresh(block);
    });
    container.addEventListener("click", async (ev) => {
      const b = ev.target.closest("[data-withdraw]");
      if (!b) return;
      ev.stopPropagation();
      if (!confirm(YR.t("attach.confirm_withdraw", { name: b.dataset.name }))) return;
      const block = b.closest("[data-attachments]");
      b.disabled = true;
      const r = await YF.api("DELETE", "/api/attachments/" + b.dataset.withdraw);
      b.disabled = false;
      if (!r.ok) { YF.toast(YF.errorText(r), "error"); return; }
      YF.toast(YR.t("attach.withdrawn", { name: b.dataset.name }), "ok");
      await refresh(block);
    });
    async function refresh(block) {
      const list = await YF.api("GET", "/api/tasks/" + block.dataset.attachments + "/attachments");
      if (!list.ok) return;
      block.querySelector("[data-files-list]").innerHTML = fileList(list.data, false);
      if (changed) changed(Number(block.dataset.attachments), list.data.length);
    }
  };

  /** Draw a daily epidemic curve (cases by onset date) into `el` with ECharts. */
  YR.curve = function (el, onsets) {
    if (!window.echarts || !el) return null;
    const counts = {};
    onsets.forEach((d) => { counts[d] = (counts[d] || 0) + 1; });
    const days = Object.keys(counts).sort();
    const axis = [];
    if (days.length) {
      const last = new Date(days[days.length - 1] + "T00:00:00Z");
      for (let d = new Date(days[0] + "T00:00:00Z"); d <= last; d.setUTCDate(d.getUTCDate() + 1)) axis.push(d.toISOString().slice(0, 10));
    }
    const chart = echarts.getInstanceByDom(el) || echarts.init(el);
    chart.setOption({
      animation: false,
      grid: { left: 40, right: 12, top: 20, bottom: 40 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: axis.map((d) => d.slice(5)), name: YR.t("onset_date"), nameLocation: "middle", nameGap: 26 },
      yAxis: { type: "value", minInterval: 1, name: YR.t("cases") },
      series: [{ type: "bar", name: YR.t("cases"), data: axis.map((d) => counts[d] || 0), barCategoryGap: "8%", itemStyle: { color: "#c0392b" } }],
    }, true);
    return chart;
  };

  /** Draw points (lon, lat, value, label) over the city's county boundaries into `el`. */
  YR.map = async function (el, points, opts) {
    if (!window.echarts || !el) return null;
    if (!YR._geo) {
      const r = await fetch(el.dataset.geojson, { credentials: "same-origin" });
      if (!r.ok) return null;
      YR._geo = await r.json();
      echarts.registerMap("yifang-city", YR._geo);
    }
    const max = Math.max(1, ...points.map((p) => p.value));
    const chart = echarts.getInstanceByDom(el) || echarts.init(el);
    // focus: centre on the points and zoom in (an event's townships), else the whole city
    const focus = opts && opts.focus && points.length
      ? { center: [points.reduce((a, p) => a + p.lon, 0) / points.length, points.reduce((a, p) => a + p.lat, 0) / points.length], zoom: 3.5 }
      : {};
    chart.setOption({
      animation: false,
      tooltip: { trigger: "item", formatter: (p) => (p.data && p.data.tip) || YF.esc(p.name) },
      geo: {
        map: "yifang-city", roam: true, aspectScale: 0.85, layoutCenter: ["50%", "50%"], layoutSize: "95%",
        label: { show: true, color: "#5d6b7a", fontSize: 11 },
        itemStyle: { areaColor: "#f3f5f7", borderColor: "#8a99a8", borderWidth: 1 },
        ...focus,
      },
      series: [{
        type: "scatter", coordinateSystem: "geo", z: 3,
        data: points.map((p) => ({ name: p.label, value: [p.lon, p.lat, p.value], tip: p.tip, itemStyle: p.colour ? { color: p.colour } : undefined })),
        symbolSize: (v) => 8 + 22 * Math.sqrt(v[2] / max),
        itemStyle: { color: "#c0392b", borderColor: "#fff", borderWidth: 1, opacity: 0.85 },
        label: { show: true, position: "right", formatter: "{b}", fontSize: 11 },
      }],
    }, true);
    return chart;
  };
})();
