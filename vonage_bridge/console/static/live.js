// Live calls: one EventSource on /console/api/events (no polling). A "snapshot" event
// replaces the list; "start", "line" and "end" events update it. Text goes in with
// textContent only (never as HTML).
"use strict";
(function () {
  const root = document.getElementById("calls");
  const status = document.getElementById("stream-status");
  const empty = document.getElementById("no-calls");
  const prefix = root.dataset.prefix;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const LABELS = { caller: "Caller", assistant: "Assistant", dtmf: "Key press",
    tool_call: "Tool call", tool_result: "Tool result", barge_in: "Barge-in" };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function entryNode(entry) {
    const li = el("li", { class: "entry role-" + entry.role });
    li.append(el("span", { class: "who" }, LABELS[entry.role] || entry.role));
    if (entry.at) {
      li.append(el("time", { datetime: entry.at }, new Date(entry.at).toISOString().slice(11, 19)));
    }
    li.append(el("span", { class: "text" }, entry.text));
    return li;
  }

  // As live.html says it: name (version N), name (built-in) for version 0.
  function assistantLabel(call) {
    if (!call.assistant) return "default persona";
    return call.assistant + (call.assistant_version ? " (version " + call.assistant_version + ")" : " (built-in)");
  }

  function callNode(call) {
    const art = el("article", { class: "call", "data-call": call.call_uuid, "data-started": call.started_at });
    art.append(el("h2", {}, (call.from || "unknown") + " → " + (call.to || "unknown")));
    const dl = el("dl", { class: "facts" });
    const facts = [["Front door", call.front_door], ["Direction", call.direction],
      ["Elapsed", ""], ["Assistant", assistantLabel(call)]];
    const classes = { Elapsed: "elapsed", Assistant: "assistant" };
    if (call.instance_id) facts.push(["Instance", call.instance_id]); // held by another one
    for (const [k, v] of facts) {
      dl.append(el("dt", {}, k));
      dl.append(el("dd", classes[k] ? { class: classes[k] } : {}, v));
    }
    art.append(dl);
    const form = el("form", { method: "post", action: prefix + "/calls/" + encodeURIComponent(call.call_uuid) + "/hangup" });
    form.append(el("input", { type: "hidden", name: "csrf", value: csrf }));
    form.append(el("button", { type: "submit", class: "danger" }, "Hang up"));
    art.append(form);
    const ol = el("ol", { class: "transcript", "aria-live": "polite" });
    for (const e of call.transcript || []) ol.append(entryNode(e));
    art.append(ol);
    return art;
  }

  function find(id) {
    return Array.from(root.children).find((n) => n.dataset.call === id) || null;
  }

  function refreshEmpty() { empty.hidden = root.children.length > 0; }

  function tick() {
    const now = Date.now();
    for (const art of root.children) {
      const dd = art.querySelector(".elapsed");
      const secs = Math.max(0, Math.round((now - Date.parse(art.dataset.started)) / 1000));
      if (dd) dd.textContent = Math.floor(secs / 60) + " min " + (secs % 60) + " s";
    }
  }

  const source = new EventSource(prefix + "/api/events");
  source.onopen = () => { status.textContent = "Live feed connected."; };
  source.onerror = () => { status.textContent = "Live feed interrupted: reconnecting…"; };
  source.onmessage = (msg) => {
    const ev = JSON.parse(msg.data);
    if (ev.type === "snapshot") {
      root.replaceChildren(...ev.calls.map(callNode));
    } else if (ev.type === "start") {
      const old = find(ev.call.call_uuid);
      if (old) old.remove();
      root.append(callNode(ev.call));
    } else if (ev.type === "line") {
      const art = find(ev.call_uuid);
      if (art) art.querySelector(".transcript").append(entryNode(ev.entry));
    } else if (ev.type === "end") {
      const art = find(ev.call_uuid);
      if (art) art.remove();
      status.textContent = "A call ended: " + ev.reason;
    }
    refreshEmpty();
    tick();
  };
  tick();
  setInterval(tick, 1000); // the elapsed time shown, computed locally: no request
})();
