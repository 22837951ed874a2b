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
