/* Shared helpers of every page: messages, calls to /api with the CSRF token, times,
   count-downs and small UI bits. No framework; pages add their own scripts. */
(function () {
  "use strict";
  const YF = window.YF || (window.YF = {});
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');

  /** The message `key` in the page's language, `{name}` filled from `params`. */
  YF.t = function (key, params) {
    let text = (YF.messages && YF.messages[key]) || key;
    if (params) {
      for (const [name, value] of Object.entries(params)) {
        text = text.split("{" + name + "}").join(String(value));
      }
    }
    return text;
  };

  /** Escape text for HTML. */
  YF.esc = function (value) {
    if (value === null || value === undefined) return "";
    return String(value).replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
  };

  /** Call the JSON API; resolves to {ok, status, data}. A lost session goes to the login page. */
  YF.api = async function (method, url, body) {
    const headers = { Accept: "application/json" };
    if (csrfMeta && csrfMeta.content) headers["X-CSRF-Token"] = csrfMeta.content;
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return { ok: false, status: 0, data: { detail: YF.t("network_error") } };
    }
    if (response.status === 401 && !url.startsWith("/api/auth/login")) {
      window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      return { ok: false, status: 401, data: null };
    }
    let data = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("json")) data = await response.json();
    else data = await response.text();
    return { ok: response.ok, status: response.status, data: data };
  };

  /** A readable message from an API error answer. */
  YF.errorText = function (result) {
    const d = result && result.data;
    if (!d) return YF.t("request_failed", { status: result ? result.status : "?" });
    if (typeof d === "string") return d.slice(0, 300);
    if (d.message_zh || d.message_en) {
      const fields = (d.fields || []).map((f) => (YF.lang === "en" ? f.message_en : f.message_zh));
      return [YF.lang === "en" ? d.message_en : d.message_zh].concat(fields).join(YF.t("list_sep"));
    }
    const detail = d.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((e) => (e.loc ? e.loc.slice(-1)[0] + ": " : "") + (e.msg || e.message_zh || JSON.stringify(e))).join("; ");
    }
    if (detail && typeof detail === "object") {
      if (detail.message_zh || detail.message_en) return YF.lang === "en" ? detail.message_en : detail.message_zh;
      if (detail.code) return YF.t("error." + detail.code) !== "error." + detail.code ? YF.t("error." + detail.code) : detail.code;
      return JSON.stringify(detail);
    }
    return YF.t("request_failed", { status: result.status });
  };

  /** Parse an API time: naive ISO strings are UTC. */
  YF.parseTime = function (iso) {
    if (!iso) return null;
    const s = /[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z";
    const d = new Date(s);
    return isNaN(d.getTime()) ? null : d;
  };

  let cityClock = null;
  try {
    cityClock = new Intl.DateTimeFormat("sv-SE", {
      timeZone: YF.tz || undefined, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hour12: false,
    });
  } catch (err) {
    cityClock = null;
  }
  /** A system time (UTC) as the city's wall clock, "2024-05-01 14:00", whatever the
      browser's own time zone: card times are written in the city's time too. */
  YF.fmtTime = function (iso) {
    const d = typeof iso === "string" ? YF.parseTime(iso) : iso;
    if (!d) return "";
    if (cityClock) return cityClock.format(d).replace("T", " ").slice(0, 16);
    return d.toISOString().replace("T", " ").slice(0, 16);
  };
  /** A card's own wall-clock time (diagnosis time): shown as written, no time-zone shift. */
  YF.fmtWall = function (iso) {
    if (!iso) return "";
    return String(iso).replace("T", " ").slice(0, 16);
  };

  /** "3 h 20 min left" / "overdue 2 h 5 min"; class soon (< 4 h) or overdue. */
  YF.dueText = function (iso, now) {
    const due = YF.parseTime(iso);
    if (!due) return { text: "", cls: "" };
    const ms = due.getTime() - (now || Date.now());
    const abs = Math.abs(ms);
    const days = Math.floor(abs / 86400000);
    const hours = Math.floor((abs % 86400000) / 3600000);
    const mins = Math.floor((abs % 3600000) / 60000);
    const secs = Math.floor((abs % 60000) / 1000);
    let span;
    if (days > 0) span = YF.t("span.dh", { d: days, h: hours });
    else if (hours > 0) span = YF.t("span.hm", { h: hours, m: mins });
    else span = YF.t("span.ms", { m: mins, s: secs });
    if (ms < 0) return { text: YF.t("due.overdue", { span: span }), cls: "overdue" };
    return { text: YF.t("due.left", { span: span }), cls: ms < 4 * 3600000 ? "soon" : "" };
  };

  /** Keep every [data-due] element counting down, once a second. */
  YF.startCountdowns = function (root) {
    const tick = () => {
      const now = Date.now();
      (root || document).querySelectorAll("[data-due]").forEach((el) => {
        const r = YF.dueText(el.dataset.due, now);
        el.textContent = r.text;
        el.className = "due " + r.cls;
        const row = el.closest("tr");
        if (row) {
          row.classList.toggle("overdue", r.cls === "overdue");
          row.classList.toggle("soon", r.cls === "soon");
        }
      });
    };
    tick();
    if (!YF._countdown) YF._countdown = setInterval(tick, 1000);
  };

  /** A short message in the corner of the page. */
  YF.toast = function (text, kind) {
    const el = document.createElement("p");
    el.className = "alert toast " + (kind || "info");
    el.setAttribute("role", "status");
    el.textContent = text;
    document.body.appendChild(el);
    setTimeout(() => el.remove(), 5000);
  };

  /** Status badge HTML. */
  YF.statusBadge = function (status) {
    return '<span class="badge ' + YF.esc(status) + '">' + YF.esc(YF.t("status." + status)) + "</span>";
  };

  /** Label of a code from a {code: {zh, en}} table. */
  YF.label = function (table, code) {
    if (!table || code === null || code === undefined) return code || "";
    const entry = table[code];
    if (!entry) return code;
    return YF.lang === "en" ? entry.en || entry.zh : entry.zh;
  };

  document.addEventListener("click", (ev) => {
    const toggle = ev.target.closest("[data-nav-toggle]");
    if (toggle) {
      const nav = document.querySelector("[data-nav]");
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    }
  });
})();
