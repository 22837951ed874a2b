/* Verification queue (核实): signals assigned to the user's CDC with their deadline counting
   down, overdue and escalated ones marked; the form records what was checked and the outcome
   (POST /api/verifications/{id}/outcome, with the version read). */
(function () {
  "use strict";
  const tbody = document.querySelector("[data-verifications]");
  const filters = document.getElementById("verify-filters");
  const panel = document.getElementById("verify-panel");
  const form = document.getElementById("outcome-form");
  let rows = [];
  let selected = null;

  function statusCell(v) {
    let html = YR.badge("verification_statuses", v.status);
    if (v.overdue) html += ' <span class="badge overdue">' + YF.esc(YR.t("verify.overdue")) + "</span>";
    if (v.escalated_at) html += ' <span class="badge escalated" title="' + YF.esc(YR.org(v.escalated_to)) + '">' + YF.esc(YR.t("verify.escalated")) + "</span>";
    return html;
  }

  // How the signal was raised: its rule (method), region level and period, so that two
  // signals of one outbreak (say a township's EARS C3 and a county's moving percentile)
  // can be told apart in the queue.
  function raised(v) {
    if (!v.signal_rule && !v.signal_method) return "";
    const rule = v.signal_rule && v.signal_method && v.signal_rule !== v.signal_method ? v.signal_rule + " (" + v.signal_method + ")" : v.signal_rule || v.signal_method;
    const where = [v.signal_region_level ? YR.t("verify.level_" + v.signal_region_level) : "", v.signal_granularity ? YR.t("verify.gran_" + v.signal_granularity) : ""]
      .filter((x) => x && !x.startsWith("verify.")).join(" · ");
    return rule + (where ? " · " + where : "");
  }

  function row(v) {
    const due = v.status === "pending" || v.status === "watching"
      ? '<span class="due" data-due="' + YF.esc(v.due_at) + '"></span><br><small class="muted">' + YF.esc(YF.fmtTime(v.due_at)) + "</small>"
      : '<small class="muted">' + YF.esc(YF.fmtTime(v.verified_at)) + "</small>";
    const act = v.status === "pending" || v.status === "watching"
      ? '<button type="button" data-verify="' + v.id + '">' + YF.esc(YR.t(YR.can("signal.respond") ? "verify.act" : "verify.view")) + "</button>"
      : v.event_id ? '<a class="button" href="/events/' + v.event_id + '">' + YF.esc(YR.t("verify.to_event")) + "</a>"
      : '<button type="button" data-verify="' + v.id + '">' + YF.esc(YR.t("verify.view")) + "</button>";
    const cls = [v.overdue ? "overdue" : "", v.escalated_at ? "escalated" : "", selected && selected.id === v.id ? "selected" : ""].join(" ");
    const how = raised(v);
    return '<tr class="' + cls + '" data-id="' + v.id + '"><td>' + due + "</td><td>" + YF.esc(YR.watched(v)) +
      (how ? '<br><small class="muted" data-raised>' + YF.esc(how) + "</small>" : "") + "</td><td>" + YF.esc(YR.region(v.region_code)) + "</td><td>" + statusCell(v) + "</td><td>" + act + "</td></tr>";
  }

  async function fetchRows(query) {
    const r = await YF.api("GET", "/api/verifications?limit=500&" + query);
    if (!r.ok) throw new Error(YF.errorText(r));
    return r.data;
  }

  async function load() {
    const f = new FormData(filters);
    const status = f.get("status");
    const disease = f.get("disease") ? "&disease=" + encodeURIComponent(f.get("disease")) : "";
    try {
      const [pending, watching] = await Promise.all([fetchRows("status=pending" + disease), fetchRows("status=watching" + disease)]);
      const open = pending.concat(watching);
      document.querySelector('[data-kpi="pending"]').textContent = pending.length;
      document.querySelector('[data-kpi="watching"]').textContent = watching.length;
      document.querySelector('[data-kpi="overdue"]').textContent = open.filter((v) => v.overdue).length;
      document.querySelector('[data-kpi="escalated"]').textContent = open.filter((v) => v.escalated_at).length;
      if (status === "open") rows = open.sort((a, b) => a.due_at.localeCompare(b.due_at));
      else if (status === "overdue") rows = open.filter((v) => v.overdue);
      else rows = await fetchRows((status ? "status=" + status : "") + disease);
    } catch (err) {
      tbody.innerHTML = '<tr><td colspan="5" class="empty">' + YF.esc(err.message) + "</td></tr>";
      return;
    }
    tbody.innerHTML = rows.length ? rows.map(row).join("") : '<tr><td colspan="5" class="empty">' + YF.esc(YR.t("verify.none")) + "</td></tr>";
    YF.startCountdowns(tbody);
  }

  function showOutcomeFields() {
    const outcome = (form.querySelector("input[name=outcome]:checked") || {}).value;
    form.querySelectorAll("[data-when]").forEach((el) => el.classList.toggle("hidden", el.dataset.when !== outcome));
  }

  async function select(id) {
    const v = rows.find((x) => x.id === id);
    if (!v) return;
    selected = v;
    tbody.querySelectorAll("tr").forEach((tr) => tr.classList.toggle("selected", Number(tr.dataset.id) === id));
    panel.querySelector("[data-placeholder]").classList.add("hidden");
    panel.querySelector("[data-selected]").classList.remove("hidden");
    panel.querySelector("[data-done]").classList.add("hidden");
    panel.querySelector("[data-sel-title]").textContent = YR.watched(v) + " · " + YR.region(v.region_code);
    panel.querySelector("[data-signal-link]").href = "/signals/" + v.signal_id;
    const open = v.status === "pending" || v.status === "watching";
    form.classList.toggle("hidden", !open || !YR.can("signal.respond"));
    form.reset();
    showOutcomeFields();
    const fields = [
      [YR.t("verify.raised_by"), raised(v) || "—"],
      [YR.t("verify.assigned"), YR.org(v.organisation_code)],
      [YR.t("verify.assigned_at"), YF.fmtTime(v.assigned_at)],
      [YR.t("verify.due"), YF.fmtTime(v.due_at)],
    ];
    if (v.escalated_at) fields.push([YR.t("verify.escalated"), YR.org(v.escalated_to) + " · " + YF.fmtTime(v.escalated_at)]);
    if (v.verified_at) fields.push([YR.t("verify.verified"), (v.verified_by || "") + " · " + YF.fmtTime(v.verified_at)]);
    if (v.checks && v.checks.length) fields.push([YR.t("verify.checks"), v.checks.map((c) => (YR.ref.checks || {})[c] || c).join("、")]);
    if (v.findings) fields.push([YR.t("verify.findings"), v.findings]);
    if (v.reason) fields.push([YR.t("verify.reason"), ((YR.ref.dismiss_reasons || {})[v.reason_code] || "") + " " + v.reason]);
    panel.querySelector("[data-sel-fields]").innerHTML = fields.map(([k, val]) => "<dt>" + YF.esc(k) + "</dt><dd>" + YF.esc(val) + "</dd>").join("");
    const explanation = panel.querySelector("[data-explanation]");
    explanation.textContent = YF.t("loading");
    const r = await YF.api("GET", "/api/signals/" + v.signal_id);
    if (!r.ok) { explanation.textContent = YF.errorText(r); return; }
    const s = r.data;
    explanation.textContent = (YF.lang === "en" ? s.explanation_en : s.explanation_zh) || "";
    const title = form.querySelector("input[name=event_title]");
    title.placeholder = YR.watched(v) + YR.t("verify.event_title_default") + "(" + YR.region(v.region_code) + ")";
    const series = s.series || {};
    const el = document.getElementById("verify-chart");
    if (window.echarts && series.dates) {
      const chart = echarts.getInstanceByDom(el) || echarts.init(el);
      chart.setOption({
        animation: false, grid: { left: 35, right: 10, top: 25, bottom: 25 }, legend: { top: 0 }, tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: series.dates.map((d) => String(d).slice(5)) }, yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: YR.t("observed"), type: "bar", data: series.observed, itemStyle: { color: "#0b6e69" } },
          { name: YR.t("threshold"), type: "line", step: "middle", data: series.upperbound, itemStyle: { color: "#b42318" }, lineStyle: { type: "dashed" } },
        ],
      }, true);
    }
  }

  form.addEventListener("change", showOutcomeFields);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!selected) return;
    const v = YR.values(form, ["checks"]);
    if (!v.outcome) { YF.toast(YR.t("verify.choose_outcome"), "error"); return; }
    const body = {
      version: selected.version, outcome: v.outcome, checks: v.checks, findings: v.findings || null,
      reason_code: v.outcome === "dismissed" ? v.reason_code || null : null,
      reason: v.outcome === "dismissed" ? v.reason || null : null,
    };
    if (v.outcome === "suspected") {
      body.event_title = v.event_title || null;
      body.event_type = v.event_type || "other";
      body.event_tags = (v.event_tags || "").split(/[,，\s]+/).filter(Boolean);
    }
    const saved = await YR.send("POST", "/api/verifications/" + selected.id + "/outcome", body, form);
    if (!saved) return;
    form.classList.add("hidden");
    const done = panel.querySelector("[data-done]");
    done.classList.remove("hidden");
    done.innerHTML = YF.esc(YR.t("verify.saved", { status: (YR.ref.verification_statuses || {})[saved.status] || saved.status })) +
      (saved.event_id ? ' <a class="button primary" data-event-link href="/events/' + saved.event_id + '">' + YF.esc(YR.t("verify.to_event")) + "</a>" : "");
    selected = saved;
    await load();
  });
  tbody.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-verify]");
    if (b) select(Number(b.dataset.verify));
  });
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  const wanted = Number(new URLSearchParams(location.search).get("id"));
  load().then(() => { if (wanted) select(wanted); });
})();
