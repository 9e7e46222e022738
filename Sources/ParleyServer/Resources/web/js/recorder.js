// Live recording from the microphone into the meeting's ingest socket
// (/ws/meeting/{id}/ingest): the AudioWorklet (capture-worklet.js) turns the microphone into
// 16 kHz mono 16-bit frames of 100 ms, sent as binary messages. The server acknowledges the
// bytes it has stored; the page keeps what is not acknowledged yet (up to BUFFER_LIMIT), and
// when the connection drops it reconnects with the watch socket's backoff and resends from the
// acknowledged count (`?resume=N`: the server skips what it has). Stop sends what is left, then
// `{"type":"stop"}`, and the meeting is processed to the end.
import { accessToken } from "./api.js";

const RATE = 16000;
const BYTES_PER_SECOND = RATE * 2;
// Five minutes of audio waiting for the server: past it, capture pauses (nothing is dropped).
const BUFFER_LIMIT = 5 * 60 * BYTES_PER_SECOND;
// While paused the server hears a ping now and then, so it does not end the recording as abandoned.
const PING_EVERY = 15_000;
const MAX_ATTEMPTS = 8;
// Once recording, the page keeps reconnecting for this long (ms) before it gives up.
const OFFLINE_LIMIT = 10 * 60 * 1000;

// Opens the microphone into the capture worklet: `onMessage` gets its 100 ms frames
// (`{samples, level}`, 16 kHz mono 16-bit) and `{flushed: true}` after a "flush".
export async function openMicrophone(onMessage) {
  if (!Recorder.supported()) {
    throw new Error("Recording needs a browser with microphone access over HTTPS (or on this computer's own address).");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    throw new Error(error.name === "NotAllowedError"
      ? "Microphone access was refused. Allow it in the browser's site settings to record."
      : `The microphone cannot be opened (${error.message || error.name}).`);
  }
  // A 16 kHz context lets the browser resample well; where the microphone cannot join one
  // (Firefox), the context runs at the device's rate and the worklet resamples.
  let context;
  let source;
  try {
    context = new AudioContext({ sampleRate: RATE });
    source = context.createMediaStreamSource(stream);
  } catch {
    if (context) context.close();
    context = new AudioContext();
    source = context.createMediaStreamSource(stream);
  }
  await context.audioWorklet.addModule("/js/capture-worklet.js");
  const node = new AudioWorkletNode(context, "parley-capture", { numberOfInputs: 1, numberOfOutputs: 0 });
  node.port.onmessage = (event) => onMessage(event.data);
  source.connect(node);
  return { stream, context, node };
}

// A short recording kept in the page (a voice to enroll): 16 kHz mono 16-bit frames from the
// microphone, handed over as a WAV file when stopped.
export class Clip {
  constructor(onProgress) {
    this.onProgress = onProgress; // (seconds, level)
    this.frames = [];
    this.bytes = 0;
  }

  async start() {
    this.microphone = await openMicrophone((message) => {
      if (message.flushed) {
        if (this.flushed) this.flushed();
        return;
      }
      this.frames.push(new Uint8Array(message.samples));
      this.bytes += message.samples.byteLength;
      this.onProgress(this.bytes / BYTES_PER_SECOND, message.level);
    });
  }

  // Stops the microphone and returns the recording as a WAV Blob.
  async stop() {
    const { stream, context, node } = this.microphone;
    const flushed = new Promise((resolve) => { this.flushed = resolve; });
    node.port.postMessage("flush");
    await Promise.race([flushed, new Promise((resolve) => setTimeout(resolve, 1000))]);
    node.port.onmessage = null;
    for (const track of stream.getTracks()) track.stop();
    context.close();
    return new Blob([waveHeader(this.bytes), ...this.frames], { type: "audio/wav" });
  }
}

// The 44-byte header of a 16 kHz mono 16-bit PCM WAV file holding `bytes` of samples.
function waveHeader(bytes) {
  const view = new DataView(new ArrayBuffer(44));
  const text = (at, value) => { for (let i = 0; i < 4; i++) view.setUint8(at + i, value.charCodeAt(i)); };
  text(0, "RIFF");
  view.setUint32(4, 36 + bytes, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, RATE, true);
  view.setUint32(28, BYTES_PER_SECOND, true);
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  view.setUint32(40, bytes, true);
  return view.buffer;
}

export class Recorder {
  constructor(meetingID, handlers) {
    this.meetingID = meetingID;
    this.handlers = handlers; // { onState(state, detail), onLevel(level), onProgress(seconds, sentBytes, ackedBytes) }
    this.pending = []; // { start, bytes: Uint8Array } not yet acknowledged, in order
    this.captured = 0; // bytes captured
    this.acked = 0; // bytes the server has stored
    this.connectedOnce = false;
    this.attempts = 0;
    this.socket = null;
    this.state = "idle"; // idle, starting, recording, paused, stopping, stopped, failed
  }

  static supported() {
    return Boolean(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia
      && window.AudioWorkletNode);
  }

  setState(state, detail) {
    this.state = state;
    this.handlers.onState(state, detail);
  }

  async start() {
    this.setState("starting");
    try {
      ({ stream: this.stream, context: this.context, node: this.node } =
        await openMicrophone((message) => this.captureMessage(message)));
    } catch (error) {
      this.setState("idle");
      throw error;
    }
    this.startedAt = performance.now();
    this.pausedFor = 0;
    this.tick = setInterval(() => this.progress(), 250);
    this.pinger = setInterval(() => this.sendText({ type: "ping" }), PING_EVERY);
    this.setState("recording");
    this.connect();
  }

  captureMessage(message) {
    if (message.flushed) {
      if (this.flushed) this.flushed();
      return;
    }
    const bytes = new Uint8Array(message.samples);
    this.handlers.onLevel(message.level);
    this.pending.push({ start: this.captured, bytes });
    this.captured += bytes.length;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(bytes);
    if (this.captured - this.acked > BUFFER_LIMIT && this.state === "recording") {
      this.pause("The server has not stored the last five minutes; recording is paused until it is back.", true);
    }
  }

  elapsed() {
    if (!this.startedAt) return 0;
    const pausedNow = this.pausedAt ? performance.now() - this.pausedAt : 0;
    return (performance.now() - this.startedAt - this.pausedFor - pausedNow) / 1000;
  }

  progress() {
    this.handlers.onProgress(this.elapsed(), this.captured, this.acked);
  }

  pause(detail, byBuffer = false) {
    if (this.state !== "recording") return;
    this.node.port.postMessage("pause");
    this.pausedAt = performance.now();
    this.pausedByBuffer = byBuffer;
    this.pausedDetail = detail;
    this.setState("paused", detail);
  }

  resume() {
    if (this.state !== "paused") return;
    this.pausedByBuffer = false;
    this.pausedDetail = undefined;
    this.node.port.postMessage("resume");
    this.pausedFor += performance.now() - this.pausedAt;
    this.pausedAt = null;
    this.setState("recording");
  }

  // Sends what is left and `stop`; resolves when the server says the recording has ended.
  async stop() {
    if (this.state !== "recording" && this.state !== "paused") return;
    if (this.pausedAt) {
      this.pausedFor += performance.now() - this.pausedAt;
      this.pausedAt = null;
    }
    const flushed = new Promise((resolve) => { this.flushed = resolve; });
    this.node.port.postMessage("flush");
    await Promise.race([flushed, new Promise((resolve) => setTimeout(resolve, 1000))]);
    this.release();
    this.setState("stopping");
    this.finished = new Promise((resolve) => { this.onStopped = resolve; });
    this.sendStopWhenCaughtUp();
    return this.finished;
  }

  release() {
    if (this.node) this.node.port.onmessage = null;
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    if (this.context) this.context.close();
    clearInterval(this.tick);
    this.progress();
  }

  sendStopWhenCaughtUp() {
    if (this.state === "stopping" && this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.sendText({ type: "stop" });
    }
  }

  sendText(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  async connect() {
    if (this.state === "stopped" || this.state === "failed") return;
    let token;
    try {
      token = await accessToken();
    } catch (error) {
      if (error.status === 401) {
        this.fail("Your session has ended. Log in again; the recording so far is kept on the server.");
        return;
      }
      this.scheduleReconnect();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = this.connectedOnce ? `?resume=${this.acked}` : "";
    const socket = new WebSocket(
      `${scheme}://${location.host}/ws/meeting/${encodeURIComponent(this.meetingID)}/ingest${query}`, ["bearer", token]);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      this.connectedOnce = true;
      this.attempts = 0;
      this.handlers.onState(this.state, this.state === "paused" ? this.pausedDetail : undefined);
      for (const chunk of this.pending) socket.send(chunk.bytes);
      this.sendStopWhenCaughtUp();
    };
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.state === "stopped" || this.state === "failed") return;
      if (event.code === 4010) {
        this.fail("This meeting is being recorded from another window.");
        return;
      }
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    this.attempts += 1;
    if (this.attempts === 1) this.offlineSince = performance.now();
    // A recording that started keeps trying for as long as the page can hold its audio (a
    // restarting server, or a recording moving to another node, can take a while).
    const givingUp = this.connectedOnce
      ? performance.now() - this.offlineSince > OFFLINE_LIMIT
      : this.attempts > MAX_ATTEMPTS;
    if (givingUp) {
      this.fail(this.connectedOnce
        ? "The server cannot be reached. What it acknowledged is kept; the rest of this recording is lost."
        : "The recording could not start: the server refused it or cannot be reached.");
      return;
    }
    const base = Math.min(10_000, 1_000 * 2 ** (this.attempts - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    this.handlers.onState(this.state, `Connection lost; reconnecting in ${Math.ceil(delay / 1000)} s. Nothing recorded is lost.`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "ack") {
      this.acked = Math.max(this.acked, message.bytes);
      while (this.pending.length && this.pending[0].start + this.pending[0].bytes.length <= this.acked) this.pending.shift();
      if (this.state === "paused" && this.captured - this.acked <= BUFFER_LIMIT / 2 && this.pausedByBuffer) this.resume();
    } else if (message.type === "stopped") {
      this.acked = message.bytes;
      this.pending = [];
      this.finish(message.reason);
    } else if (message.type === "error" && message.data) {
      this.handlers.onState(this.state, message.data.message);
    }
  }

  finish(reason) {
    clearInterval(this.pinger);
    clearTimeout(this.timer);
    if (this.state !== "stopping") this.release();
    this.setState("stopped", reason === "stop" ? undefined
      : reason === "idle" ? "The server ended the recording: it heard nothing for too long."
      : reason === "too_large" ? "The recording reached the server's size limit."
      : "The server ended the recording.");
    if (this.socket) this.socket.close(1000, "recording ended");
    if (this.onStopped) this.onStopped();
  }

  fail(detail) {
    clearInterval(this.pinger);
    clearTimeout(this.timer);
    this.release();
    this.setState("failed", detail);
    if (this.socket) this.socket.close(1000, "giving up");
    if (this.onStopped) this.onStopped();
  }
}
