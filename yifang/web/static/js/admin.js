/* Administration: accounts (create, disable, unlock, reset password) and role permissions. */
(function () {
  "use strict";
  const cfg = window.YF_ADMIN;
  const body = document.querySelector("[data-users]");

  async function load() {
    const r = await YF.api("GET", "/api/users");
    if (!r.ok) { body.innerHTML = '<tr><td colspan="8" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
    body.innerHTML = r.data.map((u) => {
      const locked = u.locked_until && YF.parseTime(u.locked_until) > new Date();
      const state = !u.active ? '<span class="badge deleted">' + YF.esc(YF.t("admin.disabled")) + "</span>"
        : locked ? '<span class="badge returned">' + YF.esc(YF.t("admin.locked")) + "</span>"
        : '<span class="badge reviewed">' + YF.esc(YF.t("admin.active")) + "</span>";
      return "<tr><td>" + YF.esc(u.username) + "</td><td>" + YF.esc(u.display_name) + "</td><td>" +
        YF.esc(cfg.roles[u.role.code] || u.role.code) + '</td><td class="opt">' + YF.esc(cfg.orgs[u.organisation_code] || u.organisation_code || "—") +
        '</td><td class="opt">' + YF.esc(u.region_code || "—") + "</td><td>" + state + '</td><td class="opt">' + YF.esc(YF.fmtTime(u.last_login_at) || "—") +
        '</td><td><span class="row" style="flex-wrap:nowrap">' +
        (locked ? '<button data-unlock="' + u.id + '">' + YF.esc(YF.t("admin.unlock")) + "</button>" : "") +
        '<button data-toggle="' + u.id + '" data-active="' + u.active + '">' + YF.esc(YF.t(u.active ? "admin.disable" : "admin.enable")) + "</button>" +
        '<button data-reset="' + u.id + '">' + YF.esc(YF.t("admin.reset")) + "</button></span></td></tr>";
    }).join("");
  }

  async function patch(id, data) {
    const r = await YF.api("PATCH", "/api/users/" + id, data);
    if (!r.ok) YF.toast(policyText(r), "error");
    else YF.toast(YF.t("admin.saved"), "ok");
    load();
  }

  function policyText(r) {
    const d = r.data && r.data.detail;
    if (d && d.problems) return d.problems.map((p) => { const [c, n] = p.split(":"); return YF.t("policy." + c, { n: n }); }).join(YF.t("list_sep"));
    return YF.errorText(r);
  }

  body.addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.unlock) patch(b.dataset.unlock, { unlock: true });
    if (b.dataset.toggle) patch(b.dataset.toggle, { active: b.dataset.active !== "true" });
    if (b.dataset.reset) {
      const pw = prompt(YF.t("admin.new_password"));
      if (pw) patch(b.dataset.reset, { new_password: pw });
    }
  });

  document.getElementById("user-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = Object.fromEntries(new FormData(ev.target));
    for (const k of Object.keys(data)) if (data[k] === "") data[k] = null;
    const r = await YF.api("POST", "/api/users", data);
    if (r.ok) { YF.toast(YF.t("admin.created", { name: r.data.username }), "ok"); ev.target.reset(); load(); }
    else YF.toast(policyText(r), "error");
  });

  document.querySelectorAll("tr[data-role]").forEach((row) => row.addEventListener("change", async () => {
    const permissions = Array.from(row.querySelectorAll("input:checked")).map((i) => i.value);
    const r = await YF.api("PATCH", "/api/roles/" + row.dataset.role, { permissions: permissions });
    YF.toast(r.ok ? YF.t("admin.saved") : YF.errorText(r), r.ok ? "ok" : "error");
  }));
  load();
})();
