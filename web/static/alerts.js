// R2M console, alerts page: the rule, override and channel forms, and the
// channel's test send.
//
// A PUT of a rule or a channel replaces it whole, so each form carries the
// record as the API returned it (data-rule-json, data-channel-json) and
// sends it back with the form's fields changed: what the form does not show
// (a rule's channels, a channel's headers) stays as it was, and values the
// API redacted come back redacted, which the API reads as "keep".
(function () {
  "use strict";

  const $ = (sel, root) => (root || document).querySelector(sel);
  const csrf = () => { const m = $('meta[name="r2m-csrf"]'); return m ? m.content : ""; };

  // call answers {ok, data} or {ok: false, message}; it never throws.
  async function call(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf() } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      return { ok: false, message: "cannot reach the server: " + e.message };
    }
    let data = null;
    const text = await resp.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) {
      return { ok: false, message: (data && data.error && data.error.message) || text.trim() || resp.statusText };
    }
    return { ok: true, data };
  }

  // record is the API's record a form started from, without the fields the
  // API writes itself.
  function record(form, attr) {
    const r = JSON.parse(form.getAttribute(attr) || "{}");
    for (const k of ["builtin", "customized", "updated_at", "updated_by"]) { delete r[k]; }
    return r;
  }

  function field(form, name) {
    const el = form.elements[name];
    return el ? el.value.trim() : "";
  }

  function ruleBody(form) {
    const r = record(form, "data-rule-json");
    const th = field(form, "threshold");
    if (th === "" || !isFinite(Number(th))) { throw new Error("threshold: want a number"); }
    r.threshold = Number(th);
    r.for = field(form, "for") || "0s";
    r.severity = field(form, "severity");
    const rep = field(form, "repeat");
    if (rep) { r.repeat = rep; } else { delete r.repeat; }
    r.disabled = !form.elements.enabled.checked;
    return r;
  }

  function overrideBody(form) {
    const r = record(form, "data-rule-json");
    const cluster = field(form, "cluster");
    const o = {};
    const th = field(form, "threshold");
    if (th !== "") {
      if (!isFinite(Number(th))) { throw new Error("threshold: want a number"); }
      o.threshold = Number(th);
    }
    if (field(form, "for")) { o.for = field(form, "for"); }
    if (field(form, "severity")) { o.severity = field(form, "severity"); }
    const state = field(form, "state");
    if (state) { o.disabled = state === "disabled"; }
    if (Object.keys(o).length === 0) { throw new Error("set at least one of threshold, for, severity or state for " + cluster); }
    r.clusters = Object.assign({}, r.clusters, { [cluster]: o });
    return r;
  }

  function channelBody(form) {
    const c = record(form, "data-channel-json");
    c.name = field(form, "name");
    c.type = field(form, "type");
    c.url = field(form, "url");
    const secret = field(form, "secret");
    if (secret) { c.secret = secret; } else { delete c.secret; }
    const min = field(form, "min_severity");
    if (min) { c.min_severity = min; } else { delete c.min_severity; }
    c.skip_resolved = form.elements.skip_resolved.checked;
    c.disabled = !form.elements.enabled.checked;
    return c;
  }

  async function submit(form) {
    const errBox = $(".form-error", form);
    errBox.hidden = true;
    let body, path;
    try {
      switch (form.dataset.kind) {
        case "rule": body = ruleBody(form); path = "/api/v1/monitor/rules/"; break;
        case "override": body = overrideBody(form); path = "/api/v1/monitor/rules/"; break;
        default: body = channelBody(form); path = "/api/v1/monitor/channels/";
      }
    } catch (e) {
      errBox.textContent = e.message;
      errBox.hidden = false;
      return;
    }
    const btn = $("button[type=submit]", form);
    btn.disabled = true;
    const res = await call("PUT", path + encodeURIComponent(body.name), body);
    btn.disabled = false;
    if (!res.ok) {
      errBox.textContent = res.message;
      errBox.hidden = false;
      return;
    }
    location.reload();
  }

  async function removeOverride(btn) {
    const r = record(btn, "data-rule-json");
    if (r.clusters) { delete r.clusters[btn.dataset.cluster]; }
    btn.disabled = true;
    const res = await call("PUT", "/api/v1/monitor/rules/" + encodeURIComponent(r.name), r);
    btn.disabled = false;
    if (!res.ok) { showResult(btn, false, res.message); return; }
    location.reload();
  }

  function showResult(btn, ok, text) {
    const box = $(".test-result", btn.closest("td")) || btn.parentElement.appendChild(document.createElement("div"));
    box.className = "test-result " + (ok ? "ok-box" : "error-box");
    box.dataset.ok = ok ? "true" : "false";
    box.textContent = text;
    box.hidden = false;
  }

  async function testSend(btn) {
    btn.disabled = true;
    const box = $(".test-result", btn.closest("td"));
    if (box) { box.hidden = true; }
    const res = await call("POST", btn.dataset.path, {});
    btn.disabled = false;
    if (!res.ok) { showResult(btn, false, res.message); return; }
    const d = res.data || {};
    const tries = d.attempts === 1 ? "1 attempt" : d.attempts + " attempts";
    if (d.ok) {
      showResult(btn, true, "Delivered (" + tries + ").");
    } else {
      showResult(btn, false, "Not delivered after " + tries + ": " + (d.error || "no reason given"));
    }
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!form.matches("form.alert-form")) { return; }
    ev.preventDefault();
    submit(form);
  });

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button");
    if (!btn) { return; }
    if (btn.classList.contains("test-send")) { testSend(btn); }
    else if (btn.classList.contains("override-delete")) { removeOverride(btn); }
  });
})();
