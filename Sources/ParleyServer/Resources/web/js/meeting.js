// The live meeting page: upload with progress, the stages filling in, transcript segments as
// they come (click one to hear it), speakers and who spoke when, summary, decisions and action
// items, exports, who else is watching — all following the meeting's numbered events.
import { api, session, upload, accessToken } from "./api.js";
import { errorBox, h, handle } from "./dom.js";
import { LiveMeeting } from "./live.js";
import { Recorder } from "./recorder.js";
import { STAGES, apply, clock, fromView, speakerColor, speakerName } from "./state.js";

const STAGE_NAMES = {
  upload: "Upload", diarization: "Speakers", transcription: "Transcription", alignment: "Alignment",
  summarization: "Summary",
};

export class MeetingPage {
  constructor(id, main, { at = null, segment = null } = {}) {
    this.id = id;
    this.main = main;
    this.startAt = at; // seconds to play from once loaded (a search hit), and its segment
    this.startSegment = segment;
    this.editingParts = new Set(); // sections with an open editor: not redrawn under the user
    this.rows = new Map(); // segment id -> its <li>
    this.stopAt = null;
    this.others = new Map(); // connection -> { user, item, until } : what others are editing
    this.cursors = new Map(); // connection -> { user, time, segment } : where others are
    this.mine = null; // what this page edits: "segment:12", "action_item:3", "speaker:S2"
    this.selected = null; // the segment this page last played
  }

  path(suffix = "") {
    return `/api/meetings/${encodeURIComponent(this.id)}${suffix}`;
  }

  async load() {
    this.main.replaceChildren(h("p", { class: "note" }, "Loading the meeting…"));
    let view;
    try {
      view = await api("GET", this.path());
    } catch (error) {
      const box = h("div");
      this.main.replaceChildren(box, h("p", {}, h("a", { href: "#/meetings" }, "Back to your meetings")));
      handle(error, box);
      return;
    }
    this.state = fromView(view);
    this.build();
    this.renderAll();
    this.live = new LiveMeeting(this.id, {
      onEvent: (event) => this.onEvent(event),
      onReset: () => this.reload(),
      onPresence: (viewers) => { this.renderViewers(viewers); this.forgetGone(viewers); },
      onEditing: (data) => this.otherEditing(data),
      onCursor: (data) => this.otherCursor(data),
      onState: (name, detail) => this.renderConnection(name, detail),
      onGone: (error) => handle(error, this.problem),
    });
    this.live.start(this.state.offset, this.state.epoch);
    if (this.startAt != null) this.playFrom(this.startAt, this.startSegment);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.editingTimer);
    clearInterval(this.expiryTimer);
    if (this.live) this.live.stop();
    if (this.audio) this.audio.pause();
    // Leaving the meeting's page ends its recording (what was captured is sent, then `stop`).
    if (this.recorder) this.recorder.stop();
    window.removeEventListener("beforeunload", this.warnBeforeClosing);
  }

  // While recording, closing the tab asks first (the server would finish the meeting after its
  // idle timeout with what it received).
  warnBeforeClosing(event) {
    event.preventDefault();
    event.returnValue = "";
  }

  // The state again over REST (the live log could not be resumed).
  async reload() {
    const view = await api("GET", this.path());
    this.state = fromView(view);
    this.rows.clear();
    this.transcript.replaceChildren();
    this.renderAll();
    this.renderPresence();
    return view;
  }

  onEvent(event) {
    for (const part of apply(this.state, event)) this.render(part);
    this.renderPresence();
  }

  // MARK: Working together

  // Tells the others what this page edits (null: nothing), again every 2 s while it lasts: a
  // page that goes away without saying so stops being shown after a few seconds.
  editing(item) {
    this.mine = item;
    clearInterval(this.editingTimer);
    if (!this.live) return;
    this.live.send({ type: "editing", data: { item } });
    if (item) this.editingTimer = setInterval(() => this.live.send({ type: "editing", data: { item } }), 2000);
  }

  otherEditing(data) {
    if (data.item) this.others.set(data.connection, { user: data.user, item: data.item, until: Date.now() + 6000 });
    else this.others.delete(data.connection);
    if (!this.expiryTimer) this.expiryTimer = setInterval(() => this.expireEditing(), 1000);
    this.renderPresence();
  }

  expireEditing() {
    const now = Date.now();
    let changed = false;
    for (const [connection, record] of this.others) {
      if (record.until < now) {
        this.others.delete(connection);
        changed = true;
      }
    }
    if (changed) this.renderPresence();
  }

  otherCursor(data) {
    this.cursors.set(data.connection, { user: data.user, time: data.time, segment: data.segment });
    this.renderPresence();
  }

  // Who left takes their indicators and cursors along.
  forgetGone(viewers) {
    const here = new Set(viewers.map((v) => v.username));
    for (const map of [this.others, this.cursors]) {
      for (const [connection, record] of map) if (!here.has(record.user)) map.delete(connection);
    }
    this.renderPresence();
  }

  // Where this page is: the playback time and the segment last played, at most twice a second.
  sendCursor(at) {
    const now = Date.now();
    if (!this.live || (this.lastCursor && now - this.lastCursor < 500)) return;
    this.lastCursor = now;
    const playing = this.audio && !Number.isNaN(this.audio.currentTime) ? this.audio.currentTime : null;
    const time = at ?? (playing === null ? null : Math.round(playing * 10) / 10);
    this.live.send({ type: "cursor", data: { time, segment: this.selected } });
  }

  // "Ana is editing" on the item, and each viewer's place: a name on the segment they are
  // at, and a line on the who-spoke-when strip.
  renderPresence() {
    if (!this.transcript) return;
    for (const badge of this.main.querySelectorAll(".editing-badge, .cursor-tag")) badge.remove();
    const selectors = { segment: "li.segment[data-segment=\"ID\"]", action_item: "li[data-item=\"ID\"]",
      speaker: ".speakers-list li[data-speaker=\"ID\"]" };
    const byItem = new Map();
    for (const record of this.others.values()) {
      const names = byItem.get(record.item) || new Set();
      names.add(record.user);
      byItem.set(record.item, names);
    }
    for (const [item, names] of byItem) {
      const [kind, id] = item.split(":");
      if (!selectors[kind]) continue;
      const row = this.main.querySelector(selectors[kind].replace("ID", CSS.escape(id)));
      if (!row) continue;
      const who = [...names].sort();
      row.append(h("span", { class: "editing-badge", role: "status", "data-editing": item },
        `${who.join(", ")} ${who.length > 1 ? "are" : "is"} editing`));
    }
    for (const cursor of this.cursors.values()) {
      if (cursor.segment == null) continue;
      const row = this.rows.get(cursor.segment);
      if (row) row.append(h("span", { class: "cursor-tag", "data-cursor": cursor.user, title: `${cursor.user} is here` }, cursor.user));
    }
    this.renderCursorLines();
  }

  renderCursorLines() {
    const svg = this.turns.querySelector("svg.turns");
    if (!svg) return;
    for (const line of svg.querySelectorAll(".cursor-line")) line.remove();
    const end = Number(svg.dataset.end);
    const ns = "http://www.w3.org/2000/svg";
    for (const cursor of this.cursors.values()) {
      if (cursor.time == null || !end) continue;
      const line = document.createElementNS(ns, "line");
      const x = String(Math.min(1000, (cursor.time / end) * 1000));
      line.setAttribute("class", "cursor-line");
      line.setAttribute("data-cursor", cursor.user);
      for (const [name, value] of [["x1", x], ["x2", x], ["y1", "0"], ["y2", svg.viewBox.baseVal.height]]) line.setAttribute(name, value);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${cursor.user} at ${clock(cursor.time)}`;
      line.append(title);
      svg.append(line);
    }
  }

  // A new title, from this page or told by the user's socket (someone renamed it).
  async retitle() {
    const title = prompt("The meeting's new title", this.state.title);
    if (!title || !title.trim() || title.trim() === this.state.title) return;
    try {
      this.showTitle((await api("PATCH", this.path(), { title: title.trim() })).title);
    } catch (error) {
      handle(error, this.problem);
    }
  }

  showTitle(title) {
    this.state.title = title;
    this.heading.textContent = title;
    document.title = `${title} · Parley`;
  }

  // What the user's own socket says (app.js passes it on while this page is shown).
  notify(event) {
    const data = event.data || {};
    if (!this.heading) return; // not drawn yet: the state it loads has the title
    if (event.type === "meeting_updated" && data.meeting_id === this.id && data.title && data.title !== this.state.title) {
      this.showTitle(data.title);
    }
  }

  // MARK: Layout

  build() {
    const s = this.state;
    document.title = `${s.title} · Parley`;
    this.problem = h("div", { "aria-live": "assertive" });
    this.heading = h("h1", { id: "meeting-title" }, s.title);
    this.statusBadge = h("span", { class: "status" });
    this.stages = h("ol", { class: "timeline", "aria-label": "Processing stages" });
    this.uploadInfo = h("p", { class: "note", "aria-live": "polite" });
    this.uploadBar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
    this.failure = h("div");
    this.transcript = h("ol", { class: "segments", "aria-label": "Transcript", "aria-live": "polite" });
    this.audio = h("audio", { controls: true, preload: "none", "aria-label": "Recording" });
    this.audio.addEventListener("timeupdate", () => {
      if (this.stopAt !== null && this.audio.currentTime >= this.stopAt) {
        this.audio.pause();
        this.stopAt = null;
      }
      this.sendCursor();
    });
    this.audio.addEventListener("error", () => this.retryAudio());
    this.speakers = h("ul", { class: "speakers-list" });
    this.turns = h("div");
    this.summary = h("div");
    this.items = h("div");
    this.viewers = h("ul", { class: "viewers", "aria-label": "Watching now" });

    const exports = h("div", { class: "row", role: "group", "aria-label": "Export" },
      ...[["srt", "SRT"], ["vtt", "VTT"], ["md", "Markdown"], ["json", "JSON"]].map(([format, label]) =>
        h("button", { type: "button", class: "secondary", onclick: () => this.download(format) }, label)));

    const isOwner = session() && session().username === s.owner;
    const recordCard = s.canEdit && s.status === "created" ? this.recordForm() : null;
    const uploadCard = isOwner ? this.uploadForm() : null;
    this.recordCard = recordCard;
    this.uploadCard = uploadCard;
    const shareCard = isOwner ? this.shareForm() : null;

    // (replaceChildren would show a null card as the text "null".)
    this.main.replaceChildren(...[
      h("p", {}, h("a", { href: "#/meetings" }, "← Meetings")),
      h("div", { class: "row" }, this.heading, this.statusBadge,
        s.canEdit ? h("button", { type: "button", class: "link", id: "rename-meeting", onclick: () => this.retitle() },
          "Rename") : null),
      h("p", { class: "note" }, `Owner: ${s.owner} · Meeting ID: `, h("code", { id: "meeting-id" }, this.id), " ",
        h("button", { type: "button", class: "link", id: "copy-id", "aria-label": "Copy the meeting ID",
          onclick: (event) => this.copyID(event.currentTarget) }, "Copy")),
      this.problem,
      recordCard,
      uploadCard,
      h("section", { class: "card", "aria-labelledby": "progress-title" },
        h("h2", { id: "progress-title" }, "Progress"), this.stages, this.uploadBar, this.uploadInfo, this.failure),
      h("div", { class: "layout" },
        h("div", {},
          h("section", { class: "card", "aria-labelledby": "transcript-title" },
            h("h2", { id: "transcript-title" }, "Transcript"),
            h("p", { class: "note" }, "Select a time to hear that part of the recording."),
            this.audio, this.transcript)),
        h("div", {},
          h("section", { class: "card", "aria-labelledby": "viewers-title" },
            h("h2", { id: "viewers-title" }, "Watching now"), this.viewers),
          h("section", { class: "card", "aria-labelledby": "speakers-title" },
            h("h2", { id: "speakers-title" }, "Speakers"), this.speakers, this.turns),
          h("section", { class: "card", "aria-labelledby": "summary-title" },
            h("h2", { id: "summary-title" }, "Summary"), this.summary),
          h("section", { class: "card", "aria-labelledby": "items-title" },
            h("h2", { id: "items-title" }, "Action items"), this.items),
          h("section", { class: "card", "aria-labelledby": "export-title" },
            h("h2", { id: "export-title" }, "Export"), exports),
          shareCard)),
    ].filter(Boolean));
    this.main.focus({ preventScroll: true });
  }

  uploadForm() {
    const input = h("input", { type: "file", id: "audio-file", accept: "audio/*,video/*,.wav,.flac,.ogg,.opus,.mp3,.m4a,.aac,.mp4,.mov,.mkv,.webm,.wma,.amr,.3gp", required: true });
    const button = h("button", { type: "submit" }, "Upload");
    const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Sending the file" });
    const note = h("p", { class: "note", "aria-live": "polite" });
    const problem = h("div", { "aria-live": "assertive" });
    return h("form", { class: "card", "aria-labelledby": "upload-title", onsubmit: async (event) => {
      event.preventDefault();
      const file = input.files && input.files[0];
      if (!file) return;
      button.disabled = true;
      if (this.recordCard) this.recordCard.hidden = true; // the meeting's audio is this file
      problem.replaceChildren();
      bar.hidden = false;
      note.textContent = `Sending ${file.name}…`;
      try {
        await upload(this.id, file, (fraction) => {
          bar.value = fraction;
          note.textContent = `Sending ${file.name}: ${Math.round(fraction * 100)}%`;
        });
        note.textContent = `${file.name} is uploaded; processing goes on below.`;
      } catch (error) {
        note.textContent = "";
        handle(error, problem);
      } finally {
        button.disabled = false;
      }
    } },
      h("h2", { id: "upload-title" }, "Recording"),
      h("label", { for: "audio-file" }, "Audio file"),
      h("div", { class: "row" }, input, button),
      bar, note, problem);
  }

  // Record: microphone permission, a level meter, elapsed time, pause/resume, stop. Offered
  // while the meeting has no audio yet, to its owner and members who may edit.
  recordForm() {
    const record = h("button", { type: "button", id: "record" }, "Record");
    const pause = h("button", { type: "button", id: "record-pause", class: "secondary", hidden: true }, "Pause");
    const stop = h("button", { type: "button", id: "record-stop", class: "danger", hidden: true }, "Stop");
    const level = h("meter", { id: "record-level", min: 0, max: 1, low: 0.6, high: 0.85, optimum: 0.3, value: 0,
      "aria-label": "Microphone level", hidden: true });
    const time = h("span", { id: "record-time", class: "record-time", role: "timer", "aria-live": "off" }, "");
    const note = h("p", { class: "note", id: "record-note", "aria-live": "polite" },
      Recorder.supported() ? "Record the meeting from this device's microphone; the transcript follows as people speak."
        : "Recording needs microphone access, which browsers give only over HTTPS or on this computer's own address.");
    const problem = h("div", { "aria-live": "assertive" });
    const card = h("section", { class: "card record", id: "record-card", "aria-labelledby": "record-title" },
      h("h2", { id: "record-title" }, "Record live"),
      h("div", { class: "row" }, record, pause, stop, h("span", { class: "dot", "aria-hidden": "true" }), time, level),
      note, problem);
    if (!Recorder.supported()) record.disabled = true;
    const recorder = new Recorder(this.id, {
      onState: (state, detail) => {
        card.dataset.state = state;
        if (state === "recording") window.addEventListener("beforeunload", this.warnBeforeClosing);
        if (state === "stopped" || state === "failed") window.removeEventListener("beforeunload", this.warnBeforeClosing);
        // The meeting's audio is this recording: no upload beside it.
        if (this.uploadCard) this.uploadCard.hidden = state !== "idle" && state !== "failed";
        record.hidden = state !== "idle";
        pause.hidden = stop.hidden = !(state === "recording" || state === "paused");
        level.hidden = !(state === "recording" || state === "paused");
        pause.textContent = state === "paused" ? "Resume" : "Pause";
        const words = {
          starting: "Asking for the microphone…",
          recording: "Recording. The transcript appears below as people speak.",
          paused: "Paused.",
          stopping: "Sending the rest of the recording…",
          stopped: "Recording stopped; the meeting is being finished below.",
          failed: "Recording stopped.",
        }[state];
        note.textContent = [words, detail].filter(Boolean).join(" ");
        if (state === "failed") problem.replaceChildren(errorBox(new Error(detail)));
      },
      onLevel: (value) => { level.value = Math.min(1, value * 4); },
      onProgress: (seconds, sent, acked) => {
        time.textContent = clock(seconds);
        card.dataset.captured = String(sent);
        card.dataset.acked = String(acked);
      },
    });
    this.recorder = recorder;
    record.addEventListener("click", async () => {
      problem.replaceChildren();
      try {
        await recorder.start();
      } catch (error) {
        problem.replaceChildren(errorBox(error));
      }
    });
    pause.addEventListener("click", () => (recorder.state === "paused" ? recorder.resume() : recorder.pause()));
    stop.addEventListener("click", () => recorder.stop());
    return card;
  }

  shareForm() {
    const username = h("input", { id: "share-user", autocomplete: "off", required: true });
    const canEdit = h("input", { type: "checkbox", id: "share-edit" });
    const list = h("ul", { class: "members", "aria-label": "Members" });
    const problem = h("div", { "aria-live": "assertive" });
    // Who the meeting is shared with, each with Remove (their open pages lose it at once).
    const show = ({ members, editors }) => {
      this.state.members = members;
      this.state.editors = editors;
      list.replaceChildren(...(members.length ? members.map((name) => h("li", { "data-member": name },
        h("span", {}, name), editors.includes(name) ? h("span", { class: "note" }, " (may edit)") : null, " ",
        h("button", { type: "button", class: "link", "aria-label": `Remove ${name}`, onclick: async () => {
          problem.replaceChildren();
          try {
            show(await api("DELETE", this.path(`/members/${encodeURIComponent(name)}`)));
          } catch (error) {
            handle(error, problem);
          }
        } }, "Remove")))
        : [h("li", { class: "note" }, "Not shared with anyone.")]));
    };
    show(this.state);
    return h("form", { class: "card", "aria-labelledby": "share-title", onsubmit: async (event) => {
      event.preventDefault();
      problem.replaceChildren();
      try {
        show(await api("POST", this.path("/members"), { username: username.value.trim(), can_edit: canEdit.checked }));
        username.value = "";
        canEdit.checked = false;
      } catch (error) {
        handle(error, problem);
      }
    } },
      h("h2", { id: "share-title" }, "Share"), list,
      h("label", { for: "share-user" }, "Username"), username,
      h("div", { class: "check plain" }, canEdit, h("label", { for: "share-edit" }, "May correct the transcript, rename speakers and edit action items")),
      h("button", { type: "submit" }, "Share"), problem);
  }

  // MARK: Rendering

  renderAll() {
    for (const part of ["stages", "upload", "transcript", "speakers", "turns", "summary", "items"]) this.render(part);
  }

  render(part) {
    switch (part) {
      case "stages":
        this.renderStages();
        return this.renderSummary(); // "Summarize again" once the meeting is completed
      case "upload": return this.renderUpload();
      case "transcript": return this.renderTranscript();
      case "speakers": return this.editingParts.has("speakers") ? null : this.renderSpeakers();
      case "turns": return this.renderTurns();
      case "summary": return this.renderSummary();
      case "items": return this.editingParts.has("items") ? null : this.renderItems();
    }
  }

  renderStages() {
    const s = this.state;
    this.statusBadge.className = `status ${s.status}`;
    this.statusBadge.textContent = s.status;
    const steps = STAGES.map((stage) => {
      const state = s.stages[stage] || "waiting";
      const label = { waiting: "waiting", started: "working…", progress: "working…", completed: "done", failed: "failed" }[state] || state;
      return h("li", { class: state, "data-stage": stage }, `${STAGE_NAMES[stage]}: ${label}`);
    });
    this.stages.replaceChildren(...steps,
      h("li", { class: s.status === "completed" ? "completed" : s.status === "failed" ? "failed" : "waiting", "data-stage": "completed" },
        s.status === "completed" ? "Finished" : s.status === "failed" ? "Failed" : "Finished: not yet"));
    this.failure.replaceChildren(s.error
      ? h("p", { class: "error", role: "alert" }, `Processing failed at ${STAGE_NAMES[s.error.stage] || s.error.stage}: ${s.error.message}`)
      : "");
  }

  renderUpload() {
    const upload = this.state.upload;
    if (upload && upload.total) {
      this.uploadBar.hidden = false;
      this.uploadBar.value = upload.bytes / upload.total;
    }
    this.uploadInfo.textContent = this.state.duration ? `${clock(this.state.duration)} of audio received.` : "";
  }

  renderTranscript() {
    const s = this.state;
    if (!s.segments.length && !this.transcript.children.length) {
      this.transcript.replaceChildren(h("li", { class: "note", "data-empty": "" }, "No transcript yet."));
      return;
    }
    const empty = this.transcript.querySelector("[data-empty]");
    if (empty) empty.remove();
    const keep = new Set(s.segments.map((segment) => segment.id));
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        if (this.correcting === id) this.correcting = null; // the pipeline replaced it meanwhile
        row.remove();
        this.rows.delete(id);
      }
    }
    let previous = null;
    for (const segment of s.segments) {
      let row = this.rows.get(segment.id);
      if (!row) {
        row = h("li", { class: "segment", "data-segment": segment.id });
        this.rows.set(segment.id, row);
      }
      this.fillSegment(row, segment);
      const expected = previous ? previous.nextSibling : this.transcript.firstChild;
      if (expected !== row) this.transcript.insertBefore(row, expected);
      previous = row;
    }
  }

  fillSegment(row, segment) {
    // A segment being corrected here is not redrawn under the person typing.
    if (this.correcting === segment.id) return;
    const name = speakerName(this.state, segment.speaker);
    const by = segment.corrected ? segment.corrected.by : "";
    const key = `${segment.speaker}|${name}|${segment.text}|${segment.start}|${Boolean(segment.provisional)}|${by}|${this.state.canEdit}`;
    if (row.dataset.key === key) return;
    row.dataset.key = key;
    row.dataset.speaker = segment.speaker;
    // Speech still going on in a live recording: what was heard so far, replaced when it ends.
    row.classList.toggle("provisional", Boolean(segment.provisional));
    const editable = this.state.canEdit && !segment.provisional;
    // Click the text (or Enter on it) to correct it.
    const text = editable
      ? h("span", { class: "text editable", role: "button", tabindex: "0", title: "Click to correct",
          "aria-label": `Correct: ${segment.text}`,
          onclick: () => this.correctForm(row, segment),
          onkeydown: (event) => { if (event.key === "Enter") { event.preventDefault(); this.correctForm(row, segment); } } },
        segment.text)
      : h("span", { class: "text" }, segment.text);
    row.replaceChildren(
      h("button", { type: "button", class: "time", "aria-label": `Play from ${clock(segment.start)}, ${name}`,
        onclick: () => this.play(segment) }, clock(segment.start)),
      h("div", {},
        h("span", { class: "speaker", style: `color: ${speakerColor(this.state, segment.speaker)}` }, name),
        " ", text,
        segment.corrected ? h("span", { class: "note corrected", title: `corrected by ${by}` }, " (edited)") : null));
  }

  // Corrects a segment in place: its text, and who said it. Enter saves, Escape cancels.
  correctForm(row, segment) {
    if (this.correcting != null) return;
    this.correcting = segment.id;
    this.editing(`segment:${segment.id}`);
    const text = h("textarea", { class: "correct-text", rows: 2, maxlength: 5000, required: true,
      "aria-label": "Corrected text" });
    text.value = segment.text;
    const speaker = h("select", { class: "correct-speaker", "aria-label": "Speaker" },
      ...this.state.speakers.map((s) => h("option", { value: s.id, selected: s.id === segment.speaker }, s.name)));
    const problem = h("div");
    const close = () => {
      this.correcting = null;
      this.editing(null);
      delete row.dataset.key;
      const now = this.state.segments.find((s) => s.id === segment.id);
      if (now) this.fillSegment(row, now);
      else this.renderTranscript();
    };
    const save = async () => {
      const body = {};
      if (text.value.trim() !== segment.text) body.text = text.value;
      if (speaker.value !== segment.speaker) body.speaker = speaker.value;
      if (!Object.keys(body).length) return close();
      try {
        await api("PATCH", this.path(`/segments/${segment.id}`), body);
        close();
      } catch (error) {
        handle(error, problem);
      }
    };
    const form = h("form", { class: "correct", onsubmit: (event) => { event.preventDefault(); save(); },
      onkeydown: (event) => {
        if (event.key === "Escape") { event.preventDefault(); close(); }
        if (event.key === "Enter" && !event.shiftKey && event.target === text) { event.preventDefault(); save(); }
      } },
      speaker, text,
      h("div", { class: "row" }, h("button", { type: "submit" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"),
        h("span", { class: "note" }, "Enter saves, Escape cancels")),
      problem);
    row.replaceChildren(row.firstChild, form);
    text.focus();
  }

  renderSpeakers() {
    const s = this.state;
    if (!s.speakers.length) {
      this.speakers.replaceChildren(h("li", { class: "note" }, "Not known yet."));
      return;
    }
    this.speakers.replaceChildren(...s.speakers.map((speaker) => {
      const swatch = h("span", { class: "swatch", style: `background: ${speakerColor(s, speaker.id)}`, "aria-hidden": "true" });
      const name = h("span", { class: "speaker-name" }, speaker.name);
      // A name recognized from the voice says so (and how sure); a suggestion asks.
      const recognized = speaker.confidence != null
        ? h("span", { class: "note recognized", title: `recognized by voice (${Math.round(speaker.confidence * 100)}%)` }, " (voice)")
        : null;
      const rename = s.canEdit
        ? h("button", { type: "button", class: "link", "aria-label": `Rename ${speaker.name}`,
            onclick: () => this.renameForm(row, speaker) }, "Rename")
        : null;
      const suggestion = speaker.suggestion
        ? h("span", { class: "suggestion", "data-suggestion": speaker.suggestion.profile },
            ` ${speaker.suggestion.name}?`,
            s.canEdit ? h("button", { type: "button", class: "link", "aria-label": `Yes, ${speaker.name} is ${speaker.suggestion.name}`,
              onclick: () => this.answer(speaker, true) }, "Yes") : null,
            s.canEdit ? h("button", { type: "button", class: "link", "aria-label": `No, ${speaker.name} is not ${speaker.suggestion.name}`,
              onclick: () => this.answer(speaker, false) }, "No") : null)
        : null;
      const row = h("li", { "data-speaker": speaker.id }, swatch, name, recognized, suggestion, rename);
      return row;
    }));
  }

  async answer(speaker, accept) {
    try {
      await api("POST", this.path(`/speakers/${encodeURIComponent(speaker.id)}/suggestion`),
        { accept, profile: speaker.suggestion.profile });
    } catch (error) {
      handle(error, this.speakers);
    }
  }

  renameForm(row, speaker) {
    this.editingParts.add("speakers");
    this.editing(`speaker:${speaker.id}`);
    const input = h("input", { value: speaker.name, maxlength: 80, required: true, "aria-label": `New name for ${speaker.name}` });
    const once = h("input", { type: "checkbox" });
    const problem = h("div");
    const close = () => {
      this.editingParts.delete("speakers");
      this.editing(null);
      this.renderSpeakers();
      this.renderPresence();
    };
    const form = h("form", { class: "row", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api("PUT", this.path(`/speakers/${encodeURIComponent(speaker.id)}`), { name: input.value, remember: !once.checked });
        close();
      } catch (error) {
        handle(error, problem);
      }
    }, onkeydown: (event) => { if (event.key === "Escape") close(); } },
      input, h("label", { title: "Do not remember this voice for later meetings" }, once, " just this meeting"),
      h("button", { type: "submit" }, "Save"), h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"), problem);
    row.replaceChildren(form);
    input.focus();
    input.select();
  }

  renderTurns() {
    const s = this.state;
    if (!s.turns.length) {
      this.turns.replaceChildren();
      return;
    }
    const ns = "http://www.w3.org/2000/svg";
    const ids = [...new Set(s.turns.map((t) => t.speaker))].sort();
    const end = Math.max(s.duration || 0, ...s.turns.map((t) => t.end));
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "turns");
    svg.dataset.end = String(end);
    svg.setAttribute("viewBox", `0 0 1000 ${ids.length * 18}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Who spoke when, over ${clock(end)}`);
    for (const turn of s.turns) {
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", String((turn.start / end) * 1000));
      rect.setAttribute("width", String(Math.max(1, ((turn.end - turn.start) / end) * 1000)));
      rect.setAttribute("y", String(ids.indexOf(turn.speaker) * 18 + 2));
      rect.setAttribute("height", "14");
      rect.setAttribute("fill", speakerColor(s, turn.speaker));
      // A second voice heard over another speaker's turn: drawn fainter, said in its title.
      if (turn.overlap) {
        rect.setAttribute("class", "over");
        rect.setAttribute("fill-opacity", "0.45");
      }
      const title = document.createElementNS(ns, "title");
      title.textContent = `${speakerName(s, turn.speaker)}: ${clock(turn.start)}–${clock(turn.end)}`
        + (turn.overlap ? " (over another)" : "");
      rect.append(title);
      svg.append(rect);
    }
    this.turns.replaceChildren(h("h3", { class: "note" }, "Who spoke when"), svg);
  }

  renderSummary() {
    const summary = this.state.summary;
    if (!summary) {
      this.summary.replaceChildren(h("p", { class: "note" }, "Comes when the meeting is processed."));
      return;
    }
    // After corrections and renames, the summary and action items can be made again from the
    // transcript as it is now.
    const problem = h("div");
    const again = this.state.canEdit && this.state.status === "completed"
      ? h("button", { type: "button", class: "secondary", id: "summarize-again",
          title: "Summarize the transcript as it is now (with its corrections and names)",
          onclick: async (event) => {
            const button = event.currentTarget;
            button.disabled = true;
            button.textContent = "Summarizing…";
            try {
              await api("POST", this.path("/summary"));
            } catch (error) {
              handle(error, problem);
            } finally {
              button.disabled = false;
              button.textContent = "Summarize again";
            }
          } }, "Summarize again")
      : null;
    this.summary.replaceChildren(again, problem,
      h("ul", {}, summary.points.map((point) => h("li", {}, point))),
      summary.decisions.length ? h("h3", {}, "Decisions") : null,
      summary.decisions.length ? h("ul", { class: "decisions" }, summary.decisions.map((d) =>
        h("li", {}, h("button", { type: "button", class: "link", onclick: () => this.play({ start: d.time, end: d.time + 15 }) }, clock(d.time)), " ", d.text))) : null);
  }

  renderItems() {
    const s = this.state;
    if (!s.actionItems.length) {
      this.items.replaceChildren(h("p", { class: "note" }, s.summary ? "None found." : "Comes when the meeting is processed."));
      return;
    }
    const problem = h("div", { "aria-live": "assertive" });
    this.items.replaceChildren(problem, h("ul", { class: "items" }, s.actionItems.map((item) => {
      const id = `item-${item.id}`;
      const done = h("input", { type: "checkbox", id, checked: item.done, disabled: !s.canEdit,
        onchange: async () => {
          try {
            await api("PATCH", this.path(`/action-items/${item.id}`), { done: done.checked });
          } catch (error) {
            done.checked = !done.checked;
            handle(error, problem);
          }
        } });
      const details = [item.owner ? `Owner: ${item.owner}` : "No owner", item.due ? `due ${item.due}` : null,
        item.assignee ? `assigned to ${item.assignee}` : null].filter(Boolean).join(" · ");
      const row = h("li", { class: item.done ? "done" : "", "data-item": item.id },
        h("div", { class: "check" }, done, h("label", { for: id, class: "task" }, item.task)),
        h("p", { class: "note" }, details),
        s.canEdit ? h("button", { type: "button", class: "link", "aria-label": `Edit “${item.task}”`,
          onclick: () => this.itemForm(row, item) }, "Edit") : null);
      return row;
    })));
  }

  itemForm(row, item) {
    this.editingParts.add("items");
    this.editing(`action_item:${item.id}`);
    const task = h("input", { id: `task-${item.id}`, value: item.task, maxlength: 500, required: true });
    const owner = h("input", { id: `owner-${item.id}`, value: item.owner || "", maxlength: 100 });
    const due = h("input", { id: `due-${item.id}`, value: item.due || "", maxlength: 100 });
    // Assigned to an account: the meeting's owner or a member (it goes on their list of items).
    const people = [...new Set([this.state.owner, ...(this.state.members || []), item.assignee].filter(Boolean))];
    const assignee = h("select", { id: `assignee-${item.id}` }, h("option", { value: "" }, "Nobody"),
      ...people.map((name) => h("option", { value: name, selected: name === item.assignee }, name)));
    const problem = h("div");
    const close = () => {
      this.editingParts.delete("items");
      this.editing(null);
      this.renderItems();
      this.renderPresence();
    };
    row.replaceChildren(h("form", { class: "item-edit", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api("PATCH", this.path(`/action-items/${item.id}`), {
          task: task.value, owner: owner.value.trim() || null, due: due.value.trim() || null,
          assignee: assignee.value || null,
        });
        close();
      } catch (error) {
        handle(error, problem);
      }
    }, onkeydown: (event) => { if (event.key === "Escape") close(); } },
      h("div", { class: "wide" }, h("label", { for: task.id }, "Task"), task),
      h("div", {}, h("label", { for: owner.id }, "Owner"), owner),
      h("div", {}, h("label", { for: due.id }, "Due"), due),
      h("div", {}, h("label", { for: assignee.id }, "Assigned to"), assignee),
      h("div", { class: "row wide" }, h("button", { type: "submit" }, "Save"),
        h("button", { type: "button", class: "secondary", onclick: close }, "Cancel")),
      h("div", { class: "wide" }, problem)));
    task.focus();
  }

  renderViewers(viewers) {
    this.viewers.replaceChildren(...(viewers.length ? viewers : []).map((viewer) =>
      h("li", { "data-viewer": viewer.username }, viewer.username)));
  }

  // The meeting ID to the clipboard (where the browser allows it; else selected, to copy by hand).
  async copyID(button) {
    try {
      await navigator.clipboard.writeText(this.id);
      button.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren(document.getElementById("meeting-id"));
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  }

  renderConnection(name, detail) {
    // The socket of a page left may still report (its close is asynchronous): the indicator
    // belongs to the page shown now.
    if (this.stopped) return;
    const box = document.getElementById("connection");
    box.hidden = false;
    box.className = `connection ${name}`;
    const words = { live: "Live (WebSocket)", connecting: "Connecting…", disconnected: "Disconnected", failed: "Disconnected" }[name];
    box.replaceChildren(words, detail ? h("span", { class: "note" }, ` ${detail}`) : "",
      name === "disconnected" || name === "failed"
        ? h("button", { type: "button", class: "secondary", onclick: () => this.live.retry() }, "Retry") : "");
    box.dataset.state = name;
  }

  // MARK: Playback and files

  async play(segment) {
    if (segment.id != null) {
      this.selected = segment.id;
      this.lastCursor = 0;
      this.sendCursor(segment.start);
    }
    try {
      if (!this.audio.src) this.audio.src = await this.audioURL();
      this.audio.currentTime = segment.start;
      this.stopAt = segment.end;
      await this.audio.play();
    } catch (error) {
      if (error.name !== "AbortError") this.problem.replaceChildren(errorBox(new Error("The recording cannot be played here yet.")));
    }
  }

  // Opened at a moment (a search hit): that line shown and marked, and the recording played
  // from there on.
  playFrom(at, segmentID) {
    const segment = this.state.segments.find((s) => s.id === segmentID)
      || this.state.segments.find((s) => s.start <= at && at < s.end);
    const row = segment && this.rows.get(segment.id);
    if (row) {
      row.classList.add("found");
      row.scrollIntoView({ block: "center" });
    }
    this.play({ id: segment ? segment.id : null, start: at, end: null });
  }

  // The token in the recording's address expires: take a fresh one once.
  async retryAudio() {
    if (this.audioRetried) return;
    this.audioRetried = true;
    const at = this.audio.currentTime;
    this.audio.src = await this.audioURL();
    this.audio.currentTime = at;
  }

  // The recording's address for <audio>, which cannot send headers: the token in the query.
  async audioURL() {
    return this.path(`/audio?token=${encodeURIComponent(await accessToken())}`);
  }

  async download(format) {
    try {
      const token = await accessToken();
      const response = await fetch(this.path(`/export?format=${format}`), { headers: { Authorization: `Bearer ${token}` } });
      if (!response.ok) throw new Error("The export could not be made. Try again.");
      const blob = await response.blob();
      const name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
      const link = h("a", { href: URL.createObjectURL(blob), download: name ? name[1] : `meeting.${format}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (error) {
      handle(error, this.problem);
    }
  }
}
