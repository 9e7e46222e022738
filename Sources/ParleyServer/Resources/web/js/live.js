// A numbered log followed over a WebSocket: a meeting's events (`/ws/meeting/<id>`) or the
// user's own notifications (`/ws/user`). Reconnects with exponential backoff (1 s to 10 s, with
// jitter, at most 5 attempts, then "failed" until a manual retry), always passing `since` with
// the last offset seen so nothing is missed or shown twice; when the server says
// `recovered: false`, `onReset` reloads what the page shows over REST.
import { accessToken } from "./api.js";

const MAX_ATTEMPTS = 5;

export class LiveMeeting {
  // `path`: the socket's address (the meeting's by default).
  constructor(meetingID, handlers, path = `/ws/meeting/${encodeURIComponent(meetingID)}`) {
    this.meetingID = meetingID;
    this.path = path;
    // { onEvent, onReset(connected), onState, onGone, and for a meeting onPresence, onEditing, onCursor }
    this.handlers = handlers;
    this.offset = 0;
    this.epoch = null;
    this.attempts = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
    this.resyncing = null;
  }

  // Starts following from a state loaded over REST (its offset and epoch).
  start(offset, epoch) {
    this.offset = offset;
    this.epoch = epoch;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "page closed");
  }

  // A message to the others watching (what this page edits, where it is), when connected;
  // dropped otherwise (it is refreshed anyway).
  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  retry() {
    this.attempts = 0;
    clearTimeout(this.timer);
    this.connect();
  }

  state(name, detail) {
    this.handlers.onState(name, detail);
  }

  async connect() {
    if (this.stopped) return;
    this.state("connecting");
    let token;
    try {
      token = await accessToken();
    } catch (error) {
      if (error.status === 401) {
        this.handlers.onGone(error);
        return;
      }
      this.scheduleReconnect();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // No offset yet (a feed followed from now on): no `since`, nothing replayed.
    const query = new URLSearchParams(this.offset == null ? {} : { since: String(this.offset) });
    if (this.epoch) query.set("epoch", this.epoch);
    // The token goes as a subprotocol, not in the address: proxies log addresses.
    const socket = new WebSocket(`${scheme}://${location.host}${this.path}?${query}`, ["bearer", token]);
    this.socket = socket;
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (event.code === 4004) {
        this.state("failed", "This meeting was deleted.");
        return;
      }
      if (event.code === 4003) {
        this.state("failed", "You no longer have access to this meeting.");
        return;
      }
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    this.attempts += 1;
    if (this.attempts > MAX_ATTEMPTS) {
      this.state("failed", "Could not reconnect.");
      return;
    }
    const base = Math.min(10_000, 1_000 * 2 ** (this.attempts - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    this.state("disconnected", `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  async receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.type) {
      case "connected":
        this.attempts = 0;
        this.state("live");
        if (this.handlers.onPresence) this.handlers.onPresence(message.viewers || []);
        if (!message.recovered && (this.offset > 0 || this.epoch !== message.epoch)) {
          await this.resync(message);
        }
        this.epoch = message.epoch;
        return;
      case "presence":
        if (this.handlers.onPresence) this.handlers.onPresence(message.data.viewers || []);
        return;
      case "ping":
      case "pong":
        return;
      // Not numbered: what the others edit, and where they are.
      case "editing":
        if (this.handlers.onEditing) this.handlers.onEditing(message.data);
        return;
      case "cursor":
        if (this.handlers.onCursor) this.handlers.onCursor(message.data);
        return;
      case "error":
        // A numbered `error` is the meeting's (processing failed: the stage and why) and is
        // applied like any event; one without a number answers something this client sent.
        if (typeof message.offset !== "number") return;
      // falls through
      default:
        if (typeof message.offset !== "number") return;
        if (this.resyncing) {
          this.resyncing.push(message);
          return;
        }
        this.apply(message);
    }
  }

  apply(event) {
    if (event.offset <= this.offset) return; // seen already
    this.offset = event.offset;
    this.handlers.onEvent(event);
  }

  // The log moved on without us (too old a `since`, or a new upload): reload the state over
  // REST, then apply the live events that came meanwhile and are newer than it.
  async resync(connected) {
    this.resyncing = [];
    try {
      const state = await this.handlers.onReset(connected);
      this.offset = state.offset;
      this.epoch = connected.epoch;
    } finally {
      const queued = this.resyncing;
      this.resyncing = null;
      for (const event of queued) this.apply(event);
    }
  }
}
