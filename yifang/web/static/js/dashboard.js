/* Dashboard: this week by disease against the 5-year average, the epidemic curve and the
   map of township incidence (circles at township centroids over the county boundaries). */
(function () {
  "use strict";
  const name = (n) => (YF.lang === "en" ? n.en || n.zh : n.zh);
  const charts = [];

  function kpis(data) {
    for (const [key, value] of Object.entries(data.totals)) {
      const el = document.querySelector('[data-kpi="' + key + '"]');
      if (el) el.textContent = value;
    }
    const response = data.response || {};
    for (const [key, value] of Object.entries(response)) {
      const el = document.querySelector('[data-kpi-response="' + key + '"]');
      if (el) el.textContent = value;
    }
    const escalated = document.querySelector('[data-kpi-note="escalated"]');
    if (escalated && response.verifications_escalated) {
      escalated.textContent = YF.t("dashboard.escalated", { n: response.verifications_escalated });
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

  async function mapChart(data) {
    const el = document.getElementById("chart-map");
    const m = data.map;
    if (!window.echarts || !el || !m) return;
    const period = document.querySelector("[data-map-period]");
    if (period) period.textContent = m.start + " – " + m.end + (m.population_year ? " · " + YF.t("map.population") + " " + m.population_year : "");
    const r = await fetch(el.dataset.geojson, { credentials: "same-origin" });
    if (!r.ok) return;
    const geo = await r.json();
    const codes = new Set(m.counties.map((c) => c.code));
    geo.features = geo.features.filter((f) => codes.has(String(f.id)));  // only the jurisdiction's counties
    echarts.registerMap("yifang-city", geo);
    const rates = m.townships.map((t) => t.incidence).filter((v) => v !== null);
    const max = Math.max(1, ...rates);
    const chart = echarts.init(el);
    charts.push(chart);
    const county = Object.fromEntries(m.counties.map((c) => [c.name, c]));
    chart.setOption({
      animation: false,
      tooltip: {
        trigger: "item",
        formatter: (p) => {
          const d = p.seriesType === "scatter" ? p.data.town : county[p.name];
          if (!d) return YF.esc(p.name);
          const rate = d.incidence === null ? "—" : d.incidence.toFixed(1);
          return "<strong>" + YF.esc(d.name) + "</strong>" + (d.county && d.county !== d.name ? " · " + YF.esc(d.county) : "") +
            "<br>" + YF.esc(YF.t("map.incidence")) + ": " + rate + "<br>" + d.cases + " " + YF.esc(YF.t("map.cases")) +
            (d.population ? " / " + d.population.toLocaleString() + " " + YF.esc(YF.t("map.population")) : "");
        },
      },
      visualMap: {
        type: "continuous", min: 0, max: max, seriesIndex: 1, calculable: true, left: 10, bottom: 10,
        textStyle: { fontSize: 11 },
        inRange: { color: ["#fee8c8", "#fdbb84", "#e34a33", "#b30000"] },
      },
      geo: {
        map: "yifang-city", roam: true, aspectScale: 0.85, layoutCenter: ["50%", "50%"], layoutSize: "95%",
        label: { show: true, color: "#5d6b7a", fontSize: 12 },
        itemStyle: { areaColor: "#f3f5f7", borderColor: "#8a99a8", borderWidth: 1.2 },
        emphasis: { itemStyle: { areaColor: "#e6ebf0" }, label: { color: "#1d2b36" } },
      },
      series: [
        { type: "map", geoIndex: 0, data: m.counties.map((c) => ({ name: c.name, value: c.incidence })) },
        {
          type: "scatter", coordinateSystem: "geo", z: 3,
          data: m.townships.map((t) => ({ name: t.name, value: [t.lon, t.lat, t.incidence === null ? 0 : t.incidence], town: t })),
          symbolSize: (v) => 6 + 22 * Math.sqrt(v[2] / max),
          itemStyle: { borderColor: "#fff", borderWidth: 0.8, opacity: 0.9 },
          emphasis: { label: { show: true, formatter: "{b}", position: "top" } },
        },
      ],
    });
  }

  async function load() {
    const r = await YF.api("GET", "/api/web/dashboard");
    if (!r.ok) { YF.toast(YF.errorText(r), "error"); return; }
    kpis(r.data);
    table(r.data);
    weekChart(r.data);
    curveChart(r.data);
    mapChart(r.data);
  }
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  load();
})();
