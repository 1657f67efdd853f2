// "Talk to the assistant": microphone -> capture worklet -> WebSocket (binary L16 16 kHz,
// 20 ms frames); WebSocket -> player worklet -> speakers. Text messages follow
// vonage_bridge/browser/wire.py: {"event":"clear"} / {"event":"mark"} in, "cleared" and the
// mark echoes out. The page's #phone element counts frames sent and played, and the clears
// (barge-ins) received, in data attributes.
"use strict";
(function () {
  const box = document.getElementById("phone");
  const start = document.getElementById("start");
  const stop = document.getElementById("stop");
  const status = document.getElementById("phone-status");
  const sentOut = document.getElementById("sent");
  const playedOut = document.getElementById("played");
  const prefix = "/console/static/";
  let ctx = null, ws = null, stream = null, sent = 0, clears = 0;

  function setState(state, text) { box.dataset.state = state; status.textContent = text; }

  async function begin() {
    start.disabled = true;
    setState("starting", "Asking for the microphone…");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
      });
      ctx = new AudioContext({ sampleRate: 16000 });
      await ctx.audioWorklet.addModule(prefix + "capture-worklet.js");
      await ctx.audioWorklet.addModule(prefix + "player-worklet.js");
    } catch (err) {
      setState("error", "No microphone: " + err.message);
      start.disabled = false;
      return;
    }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + box.dataset.ws);
    ws.binaryType = "arraybuffer";
    const capture = new AudioWorkletNode(ctx, "capture-processor");
    const player = new AudioWorkletNode(ctx, "player-processor", { outputChannelCount: [1] });
    player.connect(ctx.destination);
    capture.port.onmessage = (e) => {
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(e.data);
        sent += 1;
        box.dataset.framesSent = String(sent);
        sentOut.textContent = String(sent);
      }
    };
    player.port.onmessage = (e) => {
      const m = e.data;
      if (m.played !== undefined) {
        box.dataset.framesPlayed = String(m.played);
        playedOut.textContent = String(m.played);
      } else if (m.mark && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ event: "mark", item: m.mark.item, ms: m.mark.ms }));
      } else if (m.cleared && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ event: "cleared" }));
      }
    };
    ws.onopen = () => {
      ctx.createMediaStreamSource(stream).connect(capture);
      setState("live", "Connected: speak now.");
      stop.disabled = false;
    };
    ws.onmessage = (e) => {
      if (e.data instanceof ArrayBuffer) {
        player.port.postMessage(e.data, [e.data]);
        return;
      }
      const m = JSON.parse(e.data);
      if (m.event === "clear") {
        player.port.postMessage({ clear: true });
        clears += 1;
        box.dataset.clears = String(clears);
      }
      else if (m.event === "mark") player.port.postMessage({ mark: { item: m.item, ms: m.ms } });
    };
    ws.onclose = (e) => { finish("Call ended" + (e.reason ? ": " + e.reason : ".")); };
  }

  function finish(text) {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (ws) {
      ws.onclose = null; // ended here: keep this status, not the close's
      if (ws.readyState <= WebSocket.OPEN) ws.close(1000, "hung up by the operator");
    }
    if (ctx) ctx.close();
    stream = null;
    ws = null;
    ctx = null;
    stop.disabled = true;
    start.disabled = false;
    setState("ended", text);
  }

  start.addEventListener("click", begin);
  stop.addEventListener("click", () => finish("Hung up."));
})();
