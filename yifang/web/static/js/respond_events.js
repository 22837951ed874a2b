/* Events: the map of active events (GET /api/command/map) and the list (GET /api/events),
   and reporting an event directly (POST /api/events). */
(function () {
  "use strict";
  const tbody = document.querySelector("[data-events]");
  const filters = document.getElementById("event-filters");
  const ACTIVE = ["suspected", "investigating", "confirmed", "responding"];

  async function load() {
    const f = new FormData(filters);
    const params = new URLSearchParams();
    const status = f.get("status");
    if (status === "active") ACTIVE.forEach((s) => params.append("status", s));
    else if (status) params.append("status", status);
    if (f.get("disease")) params.append("disease", f.get("disease"));
    const r = await YF.api("GET", "/api/events?" + params.toString());
    if (!r.ok) { tbody.innerHTML = '<tr><td colspan="6" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
    tbody.innerHTML = r.data.length ? r.data.map((e) => '<tr class="clickable" data-href="/events/' + e.id + '"><td><a href="/events/' + e.id + '">' +
      YF.esc(e.number) + "</a></td><td>" + YF.esc(e.title) + "</td><td>" + YF.esc(YR.region(e.region_code)) + "</td><td>" +
      YR.badge("event_statuses", e.status) + "</td><td>" + (e.level || e.related_info ? YR.levelBadge(e.level) : "") + '</td><td class="opt">' +
      YF.esc(YF.fmtTime(e.suspected_at)) + "</td></tr>").join("")
      : '<tr><td colspan="6" class="empty">' + YF.esc(YR.t("events.none")) + "</td></tr>";
  }

  async function map() {
    const el = document.getElementById("events-map");
    const r = await YF.api("GET", "/api/command/map");
    if (!r.ok) return;
    document.querySelector("[data-map-count]").textContent = YR.t("events.active_n", { n: r.data.length });
    const colours = { suspected: "#1d6fb8", investigating: "#a86200", confirmed: "#b42318", responding: "#b42318" };
    await YR.map(el, r.data.filter((e) => e.longitude !== null).map((e) => ({
      lon: e.longitude, lat: e.latitude, value: Math.max(1, e.cases), label: e.number, colour: colours[e.status],
      tip: "<strong>" + YF.esc(e.title) + "</strong><br>" + YF.esc(e.region_name) + " · " + YF.esc((YR.ref.event_statuses || {})[e.status] || e.status) +
        "<br>" + e.cases + " " + YF.esc(YR.t("cases")),
    })));
  }

  tbody.addEventListener("click", (ev) => { const tr = ev.target.closest("tr[data-href]"); if (tr && !ev.target.closest("a")) location.href = tr.dataset.href; });
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  const form = document.getElementById("new-event");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = YR.values(form);
      const made = await YR.send("POST", "/api/events", {
        title: v.title, region_code: v.region_code, event_type: v.event_type, disease_code: v.disease_code || null, summary: v.summary || null,
      }, form);
      if (made) location.href = "/events/" + made.id;
    });
  }
  load();
  map();
  window.addEventListener("resize", () => { const c = window.echarts && echarts.getInstanceByDom(document.getElementById("events-map")); if (c) c.resize(); });
})();
