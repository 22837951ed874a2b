/* Account page: change the password, manage API tokens. */
(function () {
  "use strict";
  const form = document.getElementById("password-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const out = form.querySelector("[data-result]");
    const data = Object.fromEntries(new FormData(form));
    out.classList.remove("hidden", "ok", "error");
    if (data.new_password !== data.repeat) {
      out.classList.add("error");
      out.textContent = YF.t("account.mismatch");
      return;
    }
    const r = await YF.api("POST", "/api/auth/password", {
      old_password: data.old_password, new_password: data.new_password,
    });
    if (r.ok) {
      out.classList.add("ok");
      out.textContent = YF.t("account.password_saved");
      const meta = document.querySelector('meta[name="csrf-token"]');
      if (meta && r.data.csrf_token) meta.content = r.data.csrf_token;
      form.reset();
    } else {
      out.classList.add("error");
      const d = r.data && r.data.detail;
      if (d && d.problems) out.textContent = d.problems.map((p) => {
        const [code, arg] = p.split(":");
        return YF.t("policy." + code, { n: arg });
      }).join(YF.t("list_sep"));
      else out.textContent = YF.errorText(r);
    }
  });

  const tbody = document.querySelector("[data-tokens]");
  if (!tbody) return;
  async function load() {
    const r = await YF.api("GET", "/api/tokens");
    if (!r.ok) { tbody.innerHTML = '<tr><td colspan="6" class="empty">' + YF.esc(YF.errorText(r)) + "</td></tr>"; return; }
    if (!r.data.length) { tbody.innerHTML = '<tr><td colspan="6" class="empty">' + YF.esc(YF.t("tokens.none")) + "</td></tr>"; return; }
    tbody.innerHTML = r.data.map((tk) => "<tr><td>" + YF.esc(tk.name) + "</td><td><code>" + YF.esc(tk.prefix) +
      "…</code></td><td>" + YF.fmtTime(tk.created_at) + "</td><td>" + YF.fmtTime(tk.expires_at) + "</td><td>" +
      (YF.fmtTime(tk.last_used_at) || "—") + "</td><td>" +
      (tk.revoked_at ? '<span class="badge deleted">' + YF.esc(YF.t("tokens.revoked")) + "</span>"
        : '<button class="danger" data-revoke="' + tk.id + '">' + YF.esc(YF.t("tokens.revoke")) + "</button>") +
      "</td></tr>").join("");
  }
  document.getElementById("token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = ev.target.name.value;
    const r = await YF.api("POST", "/api/tokens", { name: name });
    const box = document.querySelector("[data-new-token]");
    if (r.ok) {
      box.classList.remove("hidden");
      box.innerHTML = YF.esc(YF.t("tokens.shown_once")) + "<br><code>" + YF.esc(r.data.token) + "</code>";
      ev.target.reset();
      load();
    } else YF.toast(YF.errorText(r), "error");
  });
  tbody.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("[data-revoke]");
    if (!btn || !confirm(YF.t("tokens.confirm_revoke"))) return;
    const r = await YF.api("DELETE", "/api/tokens/" + btn.dataset.revoke);
    if (!r.ok) YF.toast(YF.errorText(r), "error");
    load();
  });
  load();
})();
