// The microphone's samples, in the audio thread: mixed to mono, low-passed and resampled to
// 16 kHz (a box filter as wide as one output sample, then linear interpolation), converted to
// 16-bit integers and posted in frames of 100 ms with their RMS level for the meter.
// `sampleRate` is the AudioContext's rate (a global of the AudioWorklet scope).
const TARGET = 16000;
const FRAME = 1600;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET; // input samples per output sample
    this.position = 0; // where the next output sample falls, in input samples from `history`'s start
    this.history = new Float32Array(0);
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
    this.energy = 0;
    this.paused = false;
    this.port.onmessage = (event) => {
      if (event.data === "pause") this.paused = true;
      if (event.data === "resume") this.paused = false;
      if (event.data === "flush") {
        this.flush();
        this.port.postMessage({ flushed: true });
      }
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (this.paused || !input || input.length === 0) return true;
    const length = input[0].length;
    const mono = new Float32Array(this.history.length + length);
    mono.set(this.history);
    for (let c = 0; c < input.length; c++) {
      const channel = input[c];
      for (let i = 0; i < length; i++) mono[this.history.length + i] += channel[i] / input.length;
    }
    const width = Math.max(1, Math.round(this.step));
    // Output samples whose filter window ends within what we have.
    while (this.position + width + 1 < mono.length) {
      const base = Math.floor(this.position);
      const fraction = this.position - base;
      let a = 0;
      let b = 0;
      for (let k = 0; k < width; k++) {
        a += mono[base + k];
        b += mono[base + k + 1];
      }
      const value = ((1 - fraction) * a + fraction * b) / width;
      this.push(value);
      this.position += this.step;
    }
    const keep = Math.floor(this.position);
    this.history = mono.slice(keep);
    this.position -= keep;
    return true;
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.energy += clipped * clipped;
    this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    if (this.filled === FRAME) this.flush();
  }

  flush() {
    if (this.filled === 0) return;
    const samples = this.frame.slice(0, this.filled);
    const level = Math.sqrt(this.energy / this.filled);
    this.port.postMessage({ samples: samples.buffer, level }, [samples.buffer]);
    this.filled = 0;
    this.energy = 0;
  }
}

registerProcessor("parley-capture", CaptureProcessor);
