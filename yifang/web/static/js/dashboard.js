/* Dashboard: this week by disease against the 5-year average, and the epidemic curve. */
(function () {
  "use strict";
  const name = (n) => (YF.lang === "en" ? n.en || n.zh : n.zh);
  const charts = [];

  function kpis(data) {
    for (const [key, value] of Object.entries(data.totals)) {
      const el = document.querySelector('[data-kpi="' + key + '"]');
      if (el) el.textContent = value;
    }
    const note = document.querySelector('[data-kpi-note="baseline"]');
    if (note) note.textContent = YF.t("chart.baseline") + " " + data.totals.baseline;
    const week = document.querySelector("[data-week]");
    if (week) {
      week.textContent = YF.t("week_range", { start: data.week.start, end: data.week.end, week: data.week.iso_week }) +
        (data.as_of ? " · " + YF.t("as_of", { time: data.as_of.slice(11, 16) }) : "");
    }
  }

  function table(data) {
    const body = document.querySelector("[data-by-disease]");
    if (!data.by_disease.length) {
      body.innerHTML = '<tr><td colspan="4" class="empty">' + YF.esc(YF.t("dashboard.none")) + "</td></tr>";
      return;
    }
    body.innerHTML = data.by_disease.map((r) => {
      const cls = r.ratio !== null && r.ratio >= 1.5 && r.this_week >= 3 ? "up" : (r.ratio !== null && r.ratio < 1 ? "down" : "");
      return "<tr><td>" + YF.esc(name(r.name)) + '</td><td class="num">' + r.this_week +
        '</td><td class="num">' + r.baseline.toFixed(1) + '</td><td class="num ' + cls + '">' +
        (r.ratio === null ? "—" : r.ratio.toFixed(2)) + "</td></tr>";
    }).join("");
  }

  function weekChart(data) {
    const el = document.getElementById("chart-week");
    if (!window.echarts || !el) return;
    const rows = data.by_disease.slice(0, 12).reverse();
    const chart = echarts.init(el);
    charts.push(chart);
    chart.setOption({
      animation: false,
      grid: { left: 110, right: 20, top: 30, bottom: 25 },
      legend: { top: 0 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: rows.map((r) => name(r.name)), axisLabel: { width: 100, overflow: "truncate" } },
      series: [
        { name: YF.t("chart.cases"), type: "bar", data: rows.map((r) => r.this_week), itemStyle: { color: "#0b6e69" } },
        { name: YF.t("chart.baseline"), type: "bar", data: rows.map((r) => r.baseline), itemStyle: { color: "#b9c7d3" } },
      ],
    });
  }

  function curveChart(data) {
    const el = document.getElementById("chart-curve");
    if (!window.echarts || !el) return;
    const chart = echarts.init(el);
    charts.push(chart);
    chart.setOption({
      animation: false,
      grid: { left: 45, right: 15, top: 60, bottom: 40 },
      legend: { top: 0, type: "scroll" },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: data.curve.weeks.map((w) => w.slice(5)), name: YF.t("chart.week"), nameLocation: "middle", nameGap: 26 },
      yAxis: { type: "value", minInterval: 1, name: YF.t("chart.cases") },
      series: data.curve.series.map((s) => ({
        name: name(s.name), type: "bar", stack: "cases", data: s.counts, barCategoryGap: "10%",
      })),
    });
  }

  async function load() {
    const r = await YF.api("GET", "/api/web/dashboard");
    if (!r.ok) { YF.toast(YF.errorText(r), "error"); return; }
    kpis(r.data);
    table(r.data);
    weekChart(r.data);
    curveChart(r.data);
  }
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  load();
})();
