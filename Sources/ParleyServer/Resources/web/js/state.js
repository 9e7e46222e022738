// A meeting's state as its events build it: the same rules as the server's MeetingState, so a
// page that follows live events shows what a reload would.

export const STAGES = ["upload", "diarization", "transcription", "alignment", "summarization"];

export function fromView(view) {
  const state = {
    id: view.id,
    title: view.title,
    owner: view.owner,
    members: view.members || [],
    editors: view.editors || [],
    canEdit: !!view.can_edit,
    status: view.status,
    offset: view.offset,
    epoch: view.epoch,
    duration: view.duration ?? null,
    speakers: view.speakers || [],
    renames: {},
    recognitions: {},
    turns: view.turns || [],
    segments: [],
    summary: view.summary || null,
    actionItems: view.action_items || [],
    error: view.error || null,
    stages: {},
    upload: null,
  };
  for (const segment of view.segments || []) insertSegment(state, segment);
  // Stage by stage from the latest status: earlier stages are done.
  const latest = view.stage;
  if (latest) {
    if (latest.stage === "completed") {
      for (const stage of STAGES) state.stages[stage] = "completed";
    } else if (latest.stage !== "failed") {
      for (const stage of STAGES.slice(0, STAGES.indexOf(latest.stage))) state.stages[stage] = "completed";
      state.stages[latest.stage] = latest.state;
    } else {
      state.stages[latest.stage] = "failed";
    }
    state.stage = latest;
  }
  // A failed meeting: the stages before the one that failed were done.
  if (state.error && STAGES.includes(state.error.stage)) {
    for (const stage of STAGES.slice(0, STAGES.indexOf(state.error.stage))) state.stages[stage] = "completed";
    state.stages[state.error.stage] = "failed";
  }
  return state;
}

function insertSegment(state, segment) {
  if (segment.replaces) state.segments = state.segments.filter((s) => !segment.replaces.includes(s.id));
  state.segments = state.segments.filter((s) => s.id !== segment.id);
  if (!segment.text && !(segment.words || []).length) return; // it only removes
  const index = state.segments.findIndex((s) => s.start > segment.start || (s.start === segment.start && s.id > segment.id));
  state.segments.splice(index < 0 ? state.segments.length : index, 0, segment);
}

// Applies one numbered event; returns which parts of the page it changed.
export function apply(state, event) {
  state.offset = Math.max(state.offset, event.offset);
  const data = event.data || {};
  switch (event.type) {
    case "status":
      state.stage = data;
      if (data.state === "restarted") {
        // The process running the meeting stopped; processing starts again from the recording.
        state.status = "processing";
        state.stages = { upload: "started" };
        state.speakers = Object.entries(state.renames).map(([id, name]) => ({ id, name }));
        state.recognitions = {};
        state.turns = [];
        state.segments = [];
        state.summary = null;
        state.actionItems = [];
        state.error = null;
        return ["stages", "speakers", "transcript", "turns", "summary", "items"];
      }
      if (data.stage === "completed" || data.stage === "failed") {
        state.status = data.stage;
        if (data.stage === "completed") for (const stage of STAGES) state.stages[stage] = "completed";
      } else {
        state.status = "processing";
        state.stages[data.stage] = data.state;
      }
      return ["stages"];
    case "upload_progress":
      state.duration = data.seconds;
      state.upload = { bytes: data.bytes, total: data.total ?? null };
      return ["upload"];
    case "transcript":
      insertSegment(state, data);
      return ["transcript"];
    case "speakers": {
      // As MeetingState.apply does: renames win, then what voice recognition said.
      const previous = state.speakers.map((s) => ({ ...s }));
      const place = (speaker) => {
        const index = state.speakers.findIndex((s) => s.id === speaker.id);
        if (index >= 0) state.speakers[index] = { ...speaker };
        else state.speakers.push({ ...speaker });
      };
      if (data.reason === "rename") {
        for (const speaker of data.speakers) {
          state.renames[speaker.id] = speaker.name;
          delete state.recognitions[speaker.id];
          place({ id: speaker.id, name: speaker.name, profile: speaker.profile });
        }
      } else if (data.reason === "recognized") {
        for (const speaker of data.speakers) {
          if (state.renames[speaker.id] !== undefined) continue;
          state.recognitions[speaker.id] = speaker;
          place(speaker);
        }
      } else if (data.reason === "rejected") {
        for (const speaker of data.speakers) {
          if (state.recognitions[speaker.id]) delete state.recognitions[speaker.id].suggestion;
          const known = state.speakers.find((s) => s.id === speaker.id);
          if (known) delete known.suggestion;
        }
      } else {
        state.speakers = data.speakers.map((s) => {
          if (state.renames[s.id] !== undefined) {
            const profile = previous.find((p) => p.id === s.id)?.profile;
            return { id: s.id, name: state.renames[s.id], profile };
          }
          const recognized = state.recognitions[s.id];
          if (!recognized) return { ...s };
          // A recognized name stays; a suggestion rides along with the pipeline's name.
          if (recognized.profile) return { ...recognized };
          return recognized.suggestion ? { ...s, suggestion: recognized.suggestion } : { ...s };
        });
      }
      // Action items owned by a speaker's old name follow the new one.
      for (const old of previous) {
        const now = state.speakers.find((s) => s.id === old.id);
        if (!now || now.name === old.name) continue;
        for (const item of state.actionItems) if (item.owner === old.name) item.owner = now.name;
      }
      if (data.turns) state.turns = data.turns;
      for (const change of data.changes || []) {
        const segment = state.segments.find((s) => s.id === change.segment_id);
        // A speaker a person gave a segment stays.
        if (segment && !segment.corrected?.speaker) segment.speaker = change.speaker;
      }
      return ["speakers", "transcript", "turns", "items"];
    }
    case "summary":
      state.summary = data;
      return ["summary"];
    case "action_items":
      state.actionItems = data.items || [];
      return ["items"];
    case "error":
      state.error = data;
      if (data.stage) state.stages[data.stage] = "failed";
      return ["stages"];
    default:
      return [];
  }
}

export function speakerName(state, id) {
  const speaker = state.speakers.find((s) => s.id === id);
  return speaker ? speaker.name : id;
}

const PALETTE = ["#2457c5", "#c2410c", "#15803d", "#9333ea", "#b91c1c", "#0e7490", "#a16207", "#be185d"];

export function speakerColor(state, id) {
  const ids = state.speakers.map((s) => s.id).sort();
  let index = ids.indexOf(id);
  if (index < 0) index = [...id].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  return PALETTE[index % PALETTE.length];
}

export function clock(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "–";
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
