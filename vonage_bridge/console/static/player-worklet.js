// Reply audio -> the speakers. The page posts 20 ms frames (Int16 ArrayBuffers at 16 kHz),
// playback markers ({mark}) and {clear}. A marker is posted back once every sample queued
// before it has been played; {played: n} reports whole frames played.
class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // Float32Array chunks and {mark} objects, in order
    this.offset = 0; // samples of queue[0] already played
    this.samplesPlayed = 0;
    this.framesReported = 0;
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m instanceof ArrayBuffer) {
        const pcm = new Int16Array(m);
        const f = new Float32Array(pcm.length);
        for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 0x8000;
        this.queue.push(f);
      } else if (m.mark) {
        this.queue.push({ mark: m.mark });
      } else if (m.clear) {
        this.queue = [];
        this.offset = 0;
        this.port.postMessage({ cleared: true });
      }
    };
  }
  process(_inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length) {
      const head = this.queue[0];
      if (!(head instanceof Float32Array)) {
        this.port.postMessage({ mark: head.mark });
        this.queue.shift();
        continue;
      }
      const n = Math.min(out.length - i, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + n), i);
      i += n;
      this.offset += n;
      this.samplesPlayed += n;
      if (this.offset === head.length) { this.queue.shift(); this.offset = 0; }
    }
    while (this.queue.length && !(this.queue[0] instanceof Float32Array)) {
      this.port.postMessage({ mark: this.queue.shift().mark });
    }
    for (; i < out.length; i++) out[i] = 0;
    const frames = Math.floor(this.samplesPlayed / 320);
    if (frames !== this.framesReported) {
      this.framesReported = frames;
      this.port.postMessage({ played: frames });
    }
    return true;
  }
}
registerProcessor("player-processor", PlayerProcessor);
