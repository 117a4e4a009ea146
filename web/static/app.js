// R2M console: the little JavaScript the server-rendered pages need.
//
// Every change goes from here to the real /api/v1 endpoint with the session
// cookie and the X-CSRF-Token header the page carries in
// <meta name="r2m-csrf">; the console's own handlers only serve pages.
// Operations always show their dry-run plan first (showPlan), and run only
// from the plan dialog's Run button.
(function () {
  "use strict";

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const meta = (name) => { const m = $('meta[name="' + name + '"]'); return m ? m.content : ""; };

  // call sends one API request and never throws: it answers
  // {ok, status, data} or {ok: false, status, error: {code, message}}.
  async function call(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { "X-CSRF-Token": meta("r2m-csrf") } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      return { ok: false, status: 0, error: { code: "network", message: "cannot reach the server: " + e.message } };
    }
    const text = await resp.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!resp.ok) {
      const error = (data && data.error) || { code: "http", message: text.trim() || resp.statusText };
      return { ok: false, status: resp.status, error };
    }
    return { ok: true, status: resp.status, data };
  }

  function showError(box, msg) {
    if (!box) { return; }
    box.textContent = msg;
    box.hidden = false;
  }
  function hideError(box) { if (box) { box.hidden = true; box.textContent = ""; } }

  // parseWeights reads "addr=2, addr2=0" into {addr: 2, addr2: 0}.
  function parseWeights(text) {
    const out = {};
    for (const part of text.split(/[,\n]/)) {
      const p = part.trim();
      if (!p) { continue; }
      const i = p.lastIndexOf("=");
      const w = i > 0 ? Number(p.slice(i + 1)) : NaN;
      if (i <= 0 || !isFinite(w) || w < 0) {
        throw new Error("weights: \"" + p + "\" is not node=weight with a weight of 0 or more");
      }
      out[p.slice(0, i).trim()] = w;
    }
    return out;
  }

  // formParams turns a form into the JSON body of its request: empty
  // fields are left out (the server's defaults apply), numbers are numbers
  // and a ticked checkbox is true.
  function formParams(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) { continue; }
      if (el.type === "checkbox") {
        if (el.checked) { out[el.name] = true; }
        continue;
      }
      const v = el.value.trim();
      if (v === "") { continue; }
      if (el.dataset.kind === "weights") { out[el.name] = parseWeights(v); continue; }
      if (el.type === "number") { out[el.name] = Number(v); continue; }
      out[el.name] = v;
    }
    return out;
  }

  // ---- operations: plan first, then run ----

  let pending = null; // {path, params} of the plan on show

  async function showPlan(form) {
    const errBox = $(".form-error", form);
    hideError(errBox);
    let params;
    try { params = formParams(form); } catch (e) { showError(errBox, e.message); return; }
    const btn = $("button[type=submit]", form);
    if (btn) { btn.disabled = true; }
    const res = await call("POST", form.dataset.opPath, Object.assign({}, params, { dry_run: true }));
    if (btn) { btn.disabled = false; }
    if (!res.ok) { showError(errBox, res.error.message); return; }
    const owner = form.closest("dialog");
    if (owner) { owner.close(); }
    pending = { path: form.dataset.opPath, params };
    const dlg = $("#plan-dialog");
    $("#plan-title").textContent = (form.dataset.opTitle || "Operation") + ": plan";
    $("#plan-text").textContent = res.data.plan_text || "(the server gave no plan text)";
    const steps = $("#plan-steps");
    steps.replaceChildren(...(res.data.steps || []).map((s) => {
      const li = document.createElement("li");
      li.textContent = s;
      return li;
    }));
    hideError($("#plan-error"));
    $("#plan-run").disabled = false;
    dlg.showModal();
  }

  async function runPlan() {
    if (!pending) { return; }
    const btn = $("#plan-run");
    btn.disabled = true;
    const res = await call("POST", pending.path, pending.params);
    if (!res.ok) {
      btn.disabled = false;
      showError($("#plan-error"), res.error.message);
      return;
    }
    pending = null;
    location.href = "/ops/" + encodeURIComponent(res.data.id);
  }

  // ---- plain API forms and buttons ----

  async function submitAPIForm(form) {
    const errBox = $(".form-error", form);
    hideError(errBox);
    const ok = $(".form-ok", form);
    if (ok) { ok.hidden = true; }
    let params;
    try { params = formParams(form); } catch (e) { showError(errBox, e.message); return; }
    const res = await call(form.dataset.method || "POST", form.dataset.path, params);
    if (!res.ok) { showError(errBox, res.error.message); return; }
    after(form.dataset.then, form, res);
  }

  function after(then, el, res) {
    switch (then) {
      case "reload": location.reload(); break;
      case "live": refreshLive(); break;
      case "message": {
        const ok = $(".form-ok", el);
        if (ok) { ok.hidden = false; }
        if (el.reset) { el.reset(); }
        break;
      }
      default:
        // "go:/path" leaves the page, which no longer shows anything real.
        if (then && then.startsWith("go:")) { location.href = then.slice(3); }
    }
  }

  async function clickCall(btn) {
    if (btn.dataset.arm && !btn.dataset.armed) {
      // A second click confirms: no browser dialog to dismiss.
      btn.dataset.armed = "1";
      btn.dataset.label = btn.textContent;
      btn.textContent = btn.dataset.arm;
      setTimeout(() => {
        if (btn.isConnected) { delete btn.dataset.armed; btn.textContent = btn.dataset.label; }
      }, 4000);
      return;
    }
    btn.disabled = true;
    const method = btn.dataset.call;
    const res = await call(method, btn.dataset.path, method === "DELETE" ? undefined : {});
    btn.disabled = false;
    if (!res.ok) {
      let box = btn.parentElement.querySelector(".call-error");
      if (!box) {
        box = document.createElement("div");
        box.className = "error-box call-error";
        btn.parentElement.append(box);
      }
      showError(box, res.error.message);
      return;
    }
    after(btn.dataset.then, btn, res);
  }

  // ---- operation page: follow the event stream ----

  let liveTimer = null;

  async function refreshLive() {
    liveTimer = null;
    const live = $("#op-live");
    if (!live) { return; }
    const resp = await fetch(location.pathname + "?fragment=live", { credentials: "same-origin", headers: { "HX-Request": "true" } });
    if (!resp.ok) { return; }
    const tpl = document.createElement("template");
    tpl.innerHTML = (await resp.text()).trim();
    const fresh = tpl.content.firstElementChild;
    if (fresh && fresh.id === "op-live") {
      $("#op-live").replaceWith(fresh);
    }
  }

  function followOp() {
    const live = $("#op-live");
    if (!live || live.dataset.active !== "true" || !window.EventSource) { return; }
    const es = new EventSource("/api/v1/ops/" + encodeURIComponent(live.dataset.opId) + "/events");
    // Each change re-renders the progress panel from the server, at most
    // every 250 ms however fast the events come.
    es.addEventListener("op", () => {
      if (!liveTimer) { liveTimer = setTimeout(refreshLive, 250); }
    });
    es.addEventListener("done", () => {
      es.close();
      clearTimeout(liveTimer);
      refreshLive();
    });
    window.addEventListener("pagehide", () => es.close());
  }

  // ---- slot map ----

  const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#86bcb6",
    "#8cd17d", "#499894", "#d4a6c8", "#a0cbe8", "#ffbe7d", "#79706e", "#d7b5a6", "#b6992d"];
  // 512 slots per row, 32 rows; each slot a 4×8 cell of the 2048×256 canvas.
  const COLS = 512, CW = 4, CH = 8;
  let openSlots = [];

  function slotMapData() {
    const cv = $("#slotmap");
    if (!cv) { return null; }
    if (!cv._map) { cv._map = JSON.parse(cv.dataset.map || "{}"); }
    return cv._map;
  }

  function drawSlotMap() {
    const cv = $("#slotmap");
    const map = slotMapData();
    if (!cv || !map) { return; }
    const ctx = cv.getContext("2d");
    ctx.fillStyle = "#d9dde3"; // unassigned
    ctx.fillRect(0, 0, cv.width, cv.height);
    for (const o of map.owners || []) {
      ctx.fillStyle = PALETTE[o.color % PALETTE.length];
      for (const [s, e] of o.ranges) {
        for (let slot = s; slot <= e; slot++) {
          ctx.fillRect((slot % COLS) * CW, Math.floor(slot / COLS) * CH, CW, CH);
        }
      }
    }
    // Open slots: red, with a dark frame, so even one stands out.
    for (const o of openSlots) {
      for (let slot = o.range[0]; slot <= o.range[1]; slot++) {
        const x = (slot % COLS) * CW, y = Math.floor(slot / COLS) * CH;
        ctx.fillStyle = "#111";
        ctx.fillRect(x - 2, y - 2, CW + 4, CH + 4);
        ctx.fillStyle = "#e02424";
        ctx.fillRect(x, y, CW, CH);
      }
    }
    // Faint lines every 1024 slots help to read positions.
    ctx.fillStyle = "rgba(255,255,255,0.7)";
    for (let row = 2; row < cv.height / CH; row += 2) { ctx.fillRect(0, row * CH - 1, cv.width, 2); }
  }

  function slotAt(cv, ev) {
    const r = cv.getBoundingClientRect();
    const x = (ev.clientX - r.left) * (cv.width / r.width);
    const y = (ev.clientY - r.top) * (cv.height / r.height);
    const slot = Math.floor(y / CH) * COLS + Math.floor(x / CW);
    return slot >= 0 && slot < 16384 ? slot : -1;
  }

  function describeSlot(slot) {
    const map = slotMapData();
    let owner = "unassigned";
    for (const o of map.owners || []) {
      for (const [s, e] of o.ranges) {
        if (slot >= s && slot <= e) { owner = o.addr + " (" + o.id.slice(0, 8) + ")"; }
      }
    }
    let text = "slot " + slot + " → " + owner;
    for (const o of openSlots) {
      if (slot >= o.range[0] && slot <= o.range[1]) { text += " · OPEN on " + o.node + ": " + o.detail; }
    }
    return text;
  }

  function setupSlotMap() {
    const cv = $("#slotmap");
    if (!cv) { return; }
    drawSlotMap();
    cv.addEventListener("mousemove", (ev) => {
      const slot = slotAt(cv, ev);
      if (slot >= 0) { $("#slotmap-info").textContent = describeSlot(slot); }
    });
  }

  // The check panel arrives after the page (it asks every node); it carries
  // the open slots for the map.
  function takeCheck() {
    const res = $("#check-result");
    if (!res) { return; }
    try { openSlots = JSON.parse(res.dataset.open || "[]"); } catch (e) { openSlots = []; }
    const n = Number(res.dataset.openCount || 0);
    const label = $("#open-count");
    if (label) { label.textContent = n + " " + (n === 1 ? "slot" : "slots") + " now"; }
    drawSlotMap();
  }

  // ---- charts ----

  function noData(el, text) {
    el.replaceChildren();
    const span = document.createElement("span");
    span.className = "nodata";
    span.textContent = text;
    el.append(span);
  }

  function fmt(unit, v) {
    if (v == null) { return ""; }
    if (unit === "bytes") {
      const u = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
      return (Math.round(v * 10) / 10) + " " + u[i];
    }
    if (unit === "ratio") { return Math.round(v * 1000) / 10 + "%"; }
    if (unit === "seconds") { return v < 1 ? Math.round(v * 1e4) / 10 + " ms" : Math.round(v * 100) / 100 + " s"; }
    if (Math.abs(v) >= 10000) { return (Math.round(v / 100) / 10) + "k"; }
    return String(Math.round(v * 100) / 100);
  }

  const LINE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563"];

  // plot draws one or more series that share the time axis: xs are unix
  // seconds, each of ys[i] has one value (or null) per x.
  function plot(el, xs, ys, labels, unit) {
    el.replaceChildren();
    if (!window.uPlot) { noData(el, "charts need uPlot, which did not load"); return; }
    const many = ys.length > 1;
    const u = new window.uPlot({
      width: Math.max(200, el.clientWidth), height: many ? 130 : 150,
      legend: { show: many, live: false },
      cursor: { y: false },
      scales: {
        // One sample would span years on uPlot's own range: show the last
        // ten minutes around it instead. Counts start at zero.
        x: { time: true, range: (_, min, max) => (max - min < 600 ? [max - 600, max + 30] : [min, max]) },
        y: { range: (_, min, max) => [Math.min(0, min), max > 0 ? max * 1.15 : 1] },
      },
      axes: [{ stroke: "#667", grid: { stroke: "#eef0f3" } },
        { stroke: "#667", grid: { stroke: "#eef0f3" }, size: 80, values: (_, ticks) => ticks.map((t) => fmt(unit, t)) }],
      series: [{}].concat(ys.map((_, i) => ({
        label: labels[i], stroke: LINE[i % LINE.length], width: 1.5,
        fill: many ? undefined : "rgba(37,99,235,0.08)", points: { show: xs.length < 3 }, spanGaps: false,
        value: (_, v) => fmt(unit, v),
      }))),
    }, [xs].concat(ys), el);
    if (window.ResizeObserver) {
      new ResizeObserver(() => {
        if (el.isConnected && el.clientWidth) { u.setSize({ width: el.clientWidth, height: many ? 130 : 150 }); }
      }).observe(el);
    }
  }

  // readSeries fills a chart area from the monitoring history, one line
  // per series (see metrics.go for the contract). A server without
  // monitoring answers 404, a subject not measured yet an empty list: both
  // say "no data yet", and nothing is drawn that was not measured.
  async function readSeries(el) {
    let refs = [];
    try { refs = JSON.parse(el.dataset.series || "[]"); } catch (e) { refs = []; }
    const answers = await Promise.all(refs.map(async (r) => {
      try {
        const resp = await fetch(meta("r2m-series") + "?" + r.q + "&from=-1h", { credentials: "same-origin" });
        if (!resp.ok) { return { status: resp.status, pts: [] }; }
        const body = await resp.json();
        return { status: resp.status, pts: Array.isArray(body) ? body : (body && Array.isArray(body.points) ? body.points : []) };
      } catch (e) {
        return { status: 0, pts: [] };
      }
    }));
    if (answers.length > 0 && answers.every((a) => a.status === 404)) {
      noData(el, "no data yet — this server does not run monitoring");
      return;
    }
    const used = answers.map((a, i) => ({ label: refs[i].label, pts: a.pts })).filter((s) => s.pts.length > 0);
    if (used.length === 0) {
      const failed = answers.find((a) => a.status !== 200 && a.status !== 404);
      noData(el, failed ? "no data yet (HTTP " + failed.status + ")" : "no data yet");
      return;
    }
    const times = new Set();
    for (const s of used) { for (const p of s.pts) { times.add(Math.round(Date.parse(p.t) / 1000)); } }
    const xs = Array.from(times).sort((a, b) => a - b);
    const ys = used.map((s) => {
      const at = new Map(s.pts.map((p) => [Math.round(Date.parse(p.t) / 1000), p.avg]));
      return xs.map((x) => (at.has(x) ? at.get(x) : null));
    });
    plot(el, xs, ys, used.map((s) => s.label), el.dataset.unit);
  }

  function drawCharts(root) {
    for (const el of $$(".chart[data-series]", root)) { readSeries(el); }
    for (const el of $$(".chart[data-points]", root)) {
      let pts = [];
      try { pts = JSON.parse(el.dataset.points || "[]") || []; } catch (e) { pts = []; }
      if (pts.length === 0) { noData(el, "no samples yet"); continue; }
      plot(el, pts.map((p) => p[0]), [pts.map((p) => p[1])], ["clients"], el.dataset.unit);
    }
  }

  // ---- command console ----

  function setupCLI() {
    const form = $("#cli-form");
    if (!form) { return; }
    const input = $("#cli-input"), out = $("#cli-out"), bar = $("#cli-confirm");
    const history = [];
    let hpos = 0;
    let confirming = null;

    function entry(cmd) {
      const div = document.createElement("div");
      div.className = "cli-entry";
      const c = document.createElement("div");
      c.className = "cli-cmd";
      c.textContent = form.dataset.app + "> " + cmd;
      const pre = document.createElement("pre");
      pre.className = "cli-res pending";
      pre.textContent = "…";
      div.append(c, pre);
      out.append(div);
      out.scrollTop = out.scrollHeight;
      return (text, kind, node) => {
        pre.className = "cli-res " + kind;
        pre.textContent = text;
        if (node) { pre.title = "answered by " + node; }
        out.scrollTop = out.scrollHeight;
      };
    }

    async function send(cmd, confirm) {
      const show = entry(cmd);
      const body = confirm ? { command: cmd, confirm: true } : { command: cmd };
      const res = await call("POST", form.dataset.path, body);
      if (res.ok) {
        show((res.data.output || "").replace(/\n$/, "") + (res.data.truncated ? "\n(output cut at the console's limit)" : ""), "ok", res.data.node);
      } else if (res.status === 409 && res.error.code === "confirm") {
        show("(needs confirmation) " + res.error.message, "confirm");
        confirming = cmd;
        $("#cli-confirm-msg").textContent = res.error.message + ": run \"" + cmd + "\"?";
        bar.hidden = false;
        $("#cli-confirm-run").focus();
      } else if (res.status === 403) {
        show("(refused) " + res.error.message, "refused");
      } else {
        show("(error) " + res.error.message, "error");
      }
    }

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const cmd = input.value.trim();
      if (!cmd) { return; }
      history.push(cmd);
      hpos = history.length;
      input.value = "";
      bar.hidden = true;
      confirming = null;
      send(cmd, false);
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "ArrowUp" && hpos > 0) { hpos--; input.value = history[hpos]; ev.preventDefault(); }
      if (ev.key === "ArrowDown") {
        hpos = Math.min(history.length, hpos + 1);
        input.value = history[hpos] || "";
        ev.preventDefault();
      }
    });
    $("#cli-confirm-run").addEventListener("click", () => {
      const cmd = confirming;
      bar.hidden = true;
      confirming = null;
      if (cmd) { send(cmd, true); }
      input.focus();
    });
    $("#cli-confirm-cancel").addEventListener("click", () => {
      bar.hidden = true;
      confirming = null;
      input.focus();
    });
  }

  // ---- wiring ----

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.matches("form.op-form")) { ev.preventDefault(); showPlan(form); }
    else if (form.matches("form.api-form")) { ev.preventDefault(); submitAPIForm(form); }
    else if (form.id === "login-form") { ev.preventDefault(); login(form); }
  });

  document.addEventListener("click", (ev) => {
    const t = ev.target.closest("button");
    if (!t) { return; }
    if (t.dataset.open) { const d = document.getElementById(t.dataset.open); if (d) { d.showModal(); } }
    else if (t.hasAttribute("data-close")) { const d = t.closest("dialog"); if (d) { d.close(); } }
    else if (t.id === "plan-run") { runPlan(); }
    else if (t.dataset.call) { clickCall(t); }
    else if (t.id === "logout") { logout(); }
  });

  document.addEventListener("change", async (ev) => {
    const sel = ev.target;
    if (!sel.matches("select.role-select")) { return; }
    const res = await call("PUT", sel.dataset.path, { role: sel.value });
    if (!res.ok) { alertBox(sel, res.error.message); return; }
    location.reload();
  });

  function alertBox(el, msg) {
    let box = el.parentElement.querySelector(".call-error");
    if (!box) { box = document.createElement("div"); box.className = "error-box call-error"; el.parentElement.append(box); }
    showError(box, msg);
  }

  async function login(form) {
    const errBox = $(".form-error", form);
    hideError(errBox);
    const res = await call("POST", "/api/v1/login", { user: form.elements.user.value, password: form.elements.password.value });
    if (!res.ok) { showError(errBox, res.error.message); return; }
    location.href = form.dataset.next || "/clusters";
  }

  async function logout() {
    await call("POST", "/api/v1/logout", {});
    location.href = "/login";
  }

  document.addEventListener("htmx:afterSettle", (ev) => {
    const el = ev.detail && ev.detail.elt;
    if (!el) { return; }
    if (el.id === "check-panel" || $("#check-result", el)) { takeCheck(); }
    drawCharts(el);
  });
  document.addEventListener("htmx:oobAfterSwap", (ev) => {
    if (ev.detail && ev.detail.target) { drawCharts(ev.detail.target); }
  });

  function init() {
    setupSlotMap();
    drawCharts(document);
    followOp();
    setupCLI();
    document.body.dataset.ready = "true";
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
