/* Signals: the list (GET /api/signals, scoped to the user's jurisdiction) and one signal's
   chart of observed counts against the threshold, with its explanation. */
(function () {
  "use strict";
  const DISEASES = window.YF_DISEASES || {};
  const PLACES = window.YF_PLACES || { regions: {} };
  const disease = (code) => { const d = DISEASES[code]; return d ? (YF.lang === "en" ? d.en : d.zh) : code; };
  const region = (code) => (PLACES.regions || {})[code] || code;
  // What the signal watched: a disease's cards, or a syndrome's or another stream's series.
  const watched = (s) => s.disease_code ? disease(s.disease_code)
    : ((YF.lang === "en" ? s.series_name_en : s.series_name_zh) || s.series_code || "—") + " · " + YF.t("signal_source." + s.source);
  const confirmedBy = (s) => s.corroboration ? '<span class="badge returned" title="' + YF.esc((s.corroborated_by || []).map((c) =>
    (YF.lang === "en" ? c.name_en : c.name_zh) || c.code || c.source).join(", ")) + '">+' + s.corroboration + "</span>" : "—";
  const num = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(Number.isInteger(v) ? 0 : 1));
  const badge = (s) => '<span class="badge ' + (s === "open" ? "returned" : s === "closed" ? "reviewed" : "") + '">' + YF.esc(YF.t("signal_status." + s)) + "</span>";

  const tbody = document.querySelector("[data-signals]");
  if (tbody) {
    const form = document.getElementById("signal-filters");
    const more = document.querySelector("[data-more-signals]");
    let cursor = null;
    let rows = [];
    async function load(next) {
      const params = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (v) params.append(k, v);
      if (next && cursor) params.append("cursor", cursor);
      const r = await YF.api("GET", "/api/signals?" + params.toString());
      if (!r.ok) { tbody.innerHTML = '<tr><td colspan="9" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
      cursor = r.data.next_cursor;
      rows = next ? rows.concat(r.data.items) : r.data.items;
      tbody.innerHTML = rows.length ? rows.map((s) => '<tr class="clickable" data-href="/signals/' + s.id + '"><td><a href="/signals/' + s.id + '">' + YF.esc(s.last_date) +
        "</a></td><td>" + YF.esc(watched(s)) + "</td><td>" + YF.esc(region(s.region_code)) + '</td><td class="opt">' + YF.esc(s.method) +
        '</td><td class="num">' + num(s.observed) + '</td><td class="num opt">' + num(s.upperbound) + '</td><td class="num opt">' + s.alarm_periods +
        '</td><td class="num">' + confirmedBy(s) + "</td><td>" + badge(s.status) + "</td></tr>").join("")
        : '<tr><td colspan="9" class="empty">' + YF.esc(YF.t("signals.none")) + "</td></tr>";
      more.classList.toggle("hidden", !cursor);
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
    more.addEventListener("click", () => load(true));
    tbody.addEventListener("click", (ev) => { const tr = ev.target.closest("tr[data-href]"); if (tr && !ev.target.closest("a")) location.href = tr.dataset.href; });
    load(false);
  }

  const root = document.getElementById("signal");
  if (root) {
    (async function () {
      const r = await YF.api("GET", "/api/signals/" + root.dataset.signalId);
      if (!r.ok) { root.innerHTML = '<p class="alert error">' + YF.esc(YF.errorText(r)) + "</p>"; return; }
      const s = r.data;
      document.querySelector("[data-title]").textContent = watched(s) + " · " + region(s.region_code);
      root.querySelector("[data-explanation]").textContent = YF.lang === "en" ? s.explanation_en : s.explanation_zh;
      const fields = [["signals.method", s.method + " (" + s.rule + ")"], ["signals.first", s.first_date], ["signals.last", s.last_date],
        ["signals.periods", s.alarm_periods], ["signals.observed", num(s.observed)], ["signals.expected", num(s.expected)],
        ["signals.threshold", num(s.upperbound)], ["signals.cases", s.cases_total], ["card.status", null]];
      root.querySelector("[data-fields]").innerHTML = fields.map(([k, v]) => "<div><dt>" + YF.esc(YF.t(k)) + "</dt><dd>" +
        (k === "card.status" ? badge(s.status) : YF.esc(v)) + "</dd></div>").join("");
      const series = s.series || {};
      if (!window.echarts || !series.dates) return;
      const chart = echarts.init(document.getElementById("signal-chart"));
      chart.setOption({
        animation: false,
        grid: { left: 45, right: 15, top: 40, bottom: 40 },
        legend: { top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: series.dates },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: YF.t("signals.observed"), type: "bar", data: series.observed, itemStyle: { color: "#0b6e69" } },
          { name: YF.t("signals.threshold"), type: "line", step: "middle", data: series.upperbound, connectNulls: false, itemStyle: { color: "#b42318" }, lineStyle: { type: "dashed" } },
        ].concat(series.expected ? [{ name: YF.t("signals.expected"), type: "line", data: series.expected, itemStyle: { color: "#8a99a8" } }] : []),
      });
      window.addEventListener("resize", () => chart.resize());
    })();
  }
})();
