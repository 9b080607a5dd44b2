// keywatch operator console. Plain browser JavaScript, no build step. Every
// value from the API is put on the page as text (textContent), never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "keywatch.token";
  const state = { selected: null, holds: [], timer: null };

  const $ = (id) => document.getElementById(id);

  // el builds an element with a class and text or children.
  function el(tag, cls, content) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (Array.isArray(content)) content.forEach((c) => c && e.appendChild(c));
    else if (content !== undefined && content !== null) e.textContent = String(content);
    return e;
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  // call sends an API request with the token; it resolves to the JSON body
  // or rejects with an Error carrying the API's message and status.
  async function call(method, path, body) {
    const opts = { method, headers: { Authorization: "Bearer " + token() } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      const msg = (data && data.error) || resp.statusText;
      const err = new Error(msg);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  function when(t) {
    if (!t) return "";
    const d = new Date(t);
    return isNaN(d) ? t : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function short(a) {
    return a && a.length > 16 ? a.slice(0, 8) + "…" + a.slice(-6) : (a || "");
  }

  // ---- sign in ----------------------------------------------------------

  async function signIn(tok) {
    sessionStorage.setItem(TOKEN_KEY, tok);
    try {
      const me = await call("GET", "/v1/me");
      $("who-name").textContent = me.name + " (" + (me.roles || []).join(", ") + ")";
      $("who").hidden = false;
      $("signin-panel").hidden = true;
      $("app").hidden = false;
      $("signin-error").textContent = "";
      refresh();
      state.timer = setInterval(refresh, 2000);
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      $("signin-error").textContent = e.status === 401 ? "That token is not valid." :
        e.status === 403 ? "That token may not use the console (it needs a viewer, operator, approver or admin role)." :
        "Sign-in failed: " + e.message;
    }
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    if (state.timer) clearInterval(state.timer);
    location.reload();
  }

  // ---- holds ------------------------------------------------------------

  function approvalsText(h) {
    return (h.approvals || []).length + " of " + h.approvals_required + " approvals";
  }

  async function loadHolds() {
    const status = $("status-filter").value;
    const q = status ? "?status=" + encodeURIComponent(status) : "";
    const data = await call("GET", "/v1/holds" + q);
    state.holds = data.holds || [];
    const list = $("holds");
    list.textContent = "";
    state.holds.forEach((h) => {
      const first = (h.reasons && h.reasons[0]) || "";
      const row = el("button", "hold-row" + (h.id === state.selected ? " selected" : ""), [
        el("span", "badge st-" + h.status, h.status), document.createTextNode(" "),
        el("strong", null, h.wallet), document.createTextNode(" · " + approvalsText(h)),
        el("div", "muted", first),
        el("div", "muted addr", h.id + " · " + when(h.created_at)),
      ]);
      row.type = "button";
      row.dataset.id = h.id;
      row.addEventListener("click", () => { state.selected = h.id; $("message").textContent = ""; loadHolds(); showHold(h.id); });
      list.appendChild(el("li", null, [row]));
    });
    $("holds-empty").hidden = state.holds.length > 0;
  }

  function field(dl, name, value, cls) {
    if (value === undefined || value === null || value === "") return;
    dl.appendChild(el("dt", null, name));
    const dd = value instanceof Node ? el("dd", cls, [value]) : el("dd", cls, value);
    dl.appendChild(dd);
  }

  function addressNode(addr, labels) {
    const span = el("span", "addr", addr);
    const ls = labels && addr ? labels[addr.toLowerCase()] : null;
    if (ls && ls.length) {
      const wrap = el("span", null, [span]);
      wrap.appendChild(el("span", "sev-critical", " — " + ls.join("; ")));
      return wrap;
    }
    return span;
  }

  function txNode(tx, links) {
    if (!tx) return null;
    const url = links && links[tx];
    if (url && /^https?:\/\//.test(url)) {
      const a = el("a", "addr", tx);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      return a;
    }
    return el("span", "addr", tx);
  }

  function evidence(a, h) {
    const ev = a.event || {};
    const box = el("div", "evidence");
    box.appendChild(el("div", null, [
      el("span", "badge sev-" + a.severity, a.severity), document.createTextNode(" "),
      el("strong", null, a.policy), document.createTextNode(" · " + a.status + " (event " + ev.status + ")"),
    ]));
    const reasons = el("ul", "reasons");
    (a.reasons || []).forEach((r) => reasons.appendChild(el("li", null, r)));
    box.appendChild(reasons);
    const dl = el("dl");
    field(dl, "movement", [ev.kind, ev.direction, ev.amount, ev.asset].filter(Boolean).join(" ") +
      (ev.usd ? " (" + Number(ev.usd).toLocaleString("en-US", { maximumFractionDigits: 2 }) + " USD)" : ""));
    field(dl, "wallet", ev.wallet + (ev.wallet_role ? " (" + ev.wallet_role + (ev.owner ? ", " + ev.owner : "") + ")" : ""));
    field(dl, "from", ev.from ? addressNode(ev.from, h.labels) : "");
    field(dl, "to", ev.to ? addressNode(ev.to, h.labels) : "");
    field(dl, "counterparty", ev.counterparty ? addressNode(ev.counterparty, h.labels) : "");
    field(dl, "initiator", ev.initiator && ev.initiator !== ev.from ? addressNode(ev.initiator, h.labels) : "");
    field(dl, "transaction", txNode(ev.tx, h.links));
    field(dl, "block", ev.block ? ev.chain + " #" + ev.block : "");
    field(dl, "time", when(ev.time));
    Object.keys(ev.detail || {}).sort().forEach((k) => field(dl, k.replace(/_/g, " "), ev.detail[k], "addr"));
    box.appendChild(dl);
    return box;
  }

  async function showHold(id) {
    let h;
    try {
      h = await call("GET", "/v1/holds/" + encodeURIComponent(id));
    } catch (e) {
      $("message").textContent = e.message;
      $("message").className = "error";
      return;
    }
    const d = $("hold-detail");
    d.textContent = "";
    d.dataset.id = h.id;
    d.appendChild(el("h2", null, [
      document.createTextNode("Hold " + h.id + " "), el("span", "badge st-" + h.status, h.status),
    ]));
    const count = el("p", "count", approvalsText(h));
    count.id = "approval-count";
    d.appendChild(count);

    const dl = el("dl");
    field(dl, "source", h.source === "screen" ? "withdrawal screened before signing" : "outflow seen on chain");
    field(dl, "wallet", h.wallet + " on " + h.chain);
    field(dl, "frozen keys", (h.wallets || []).join(", "));
    field(dl, "owners", (h.owners || []).join(", "));
    field(dl, "requested by", h.requested_by);
    field(dl, "request id", h.request_id);
    if (h.request) {
      field(dl, "withdrawal", h.request.amount + " " + h.request.asset + " (" +
        Number(h.request.usd || 0).toLocaleString("en-US", { maximumFractionDigits: 2 }) + " USD)");
      field(dl, "to", addressNode(h.request.to, h.labels));
    }
    field(dl, "created", when(h.created_at));
    field(dl, "expires", when(h.expires_at));
    field(dl, "decided", when(h.decided_at));
    d.appendChild(dl);

    d.appendChild(el("h3", null, "Reasons"));
    const rs = el("ul", "reasons");
    (h.reasons || []).forEach((r) => rs.appendChild(el("li", null, r)));
    d.appendChild(rs);

    if ((h.approvals || []).length || h.rejection) {
      d.appendChild(el("h3", null, "Decisions"));
      const ul = el("ul", "reasons");
      (h.approvals || []).forEach((a) => ul.appendChild(el("li", "approval",
        "approved by " + a.by + " at " + when(a.at) + (a.comment ? ": " + a.comment : ""))));
      if (h.rejection) ul.appendChild(el("li", "error",
        "rejected by " + h.rejection.by + " at " + when(h.rejection.at) + (h.rejection.comment ? ": " + h.rejection.comment : "")));
      d.appendChild(ul);
    }

    d.appendChild(el("h3", null, "Evidence"));
    (h.alerts || []).forEach((a) => d.appendChild(evidence(a, h)));
    if (!(h.alerts || []).length) d.appendChild(el("p", "muted", "No alert evidence."));

    const labels = Object.keys(h.labels || {});
    if (labels.length) {
      d.appendChild(el("h3", null, "Listed addresses"));
      const ul = el("ul", "reasons");
      labels.sort().forEach((addr) => ul.appendChild(el("li", null, [
        el("span", "addr", addr), document.createTextNode(": " + h.labels[addr].join("; ")),
      ])));
      d.appendChild(ul);
    }

    $("detail-empty").hidden = true;
    d.hidden = false;
    $("decide").hidden = h.status !== "held";
  }

  async function decide(verb) {
    const id = state.selected;
    if (!id) return;
    const msg = $("message");
    const comment = $("comment").value.trim();
    try {
      const res = await call("POST", "/v1/holds/" + encodeURIComponent(id) + "/" + verb, { comment });
      if (verb === "approve") {
        msg.textContent = res.released ? "Approved: the quorum is complete and the hold is released." :
          res.counted ? "Your approval is counted (" + approvalsText(res) + ")." :
          "You had approved this hold already; it counts once.";
      } else {
        msg.textContent = "Rejected: the hold is ended.";
      }
      msg.className = "ok";
      $("comment").value = "";
    } catch (e) {
      msg.textContent = (e.status === 403 ? "Refused: " : "Failed: ") + e.message;
      msg.className = "error";
    }
    await showHold(id);
    await loadHolds();
  }

  // ---- alert feed ---------------------------------------------------------

  async function loadAlerts() {
    const data = await call("GET", "/v1/alerts?limit=50");
    const list = $("alerts");
    list.textContent = "";
    (data.alerts || []).forEach((a) => {
      const row = el("li", "alert-row", [
        el("div", null, [
          el("span", "badge sev-" + a.severity, a.severity), document.createTextNode(" "),
          el("strong", null, a.policy), document.createTextNode(" · " + a.status + " · " + (a.wallet || a.chain)),
        ]),
        el("div", null, (a.reasons || [])[0] || ""),
        el("div", "when", when(a.updated_at) + (a.hold_id ? " · hold " + a.hold_id : "") +
          (a.resolved_by ? " · resolved by " + a.resolved_by : "")),
      ]);
      row.dataset.id = a.id;
      list.appendChild(row);
    });
    $("feed-state").textContent = "live · " + new Date().toLocaleTimeString();
  }

  async function refresh() {
    try {
      await Promise.all([loadHolds(), loadAlerts()]);
      if (state.selected && document.activeElement !== $("comment")) await showHold(state.selected);
    } catch (e) {
      if (e.status === 401) { signOut(); return; }
      $("feed-state").textContent = "cannot reach keywatch: " + e.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const tok = $("token").value.trim();
      $("token").value = "";
      if (tok) signIn(tok);
    });
    $("signout").addEventListener("click", signOut);
    $("approve").addEventListener("click", () => decide("approve"));
    $("reject").addEventListener("click", () => decide("reject"));
    $("status-filter").addEventListener("change", () => loadHolds());
    if (token()) signIn(token());
  });
})();
