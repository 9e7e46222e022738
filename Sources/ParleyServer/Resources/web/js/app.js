// Parley's pages: log in or register, the meetings list, the live meeting page, and the voices
// (the people the user's meetings recognize). Plain
// ES modules, no build step; routes live in the URL's hash (#/meetings/<id>).
import { accessToken, api, ApiError, keepFresh, login, logout, register, session } from "./api.js";
import { errorBox, h, handle, requireLogin } from "./dom.js";
import { LiveMeeting } from "./live.js";
import { MeetingPage } from "./meeting.js";
import { Clip, Recorder } from "./recorder.js";
import { clock } from "./state.js";

const main = document.getElementById("main");
let current = null; // the page shown, when it has something to stop or to update live
let feed = null; // the user's own notifications (/ws/user), while signed in

function show(...children) {
  main.replaceChildren(...children);
  main.focus({ preventScroll: true });
}

function showAccount() {
  const s = session();
  document.getElementById("account").hidden = !s;
  document.getElementById("who").textContent = s ? `Signed in as ${s.username}` : "";
}

async function route() {
  if (current && current.stop) current.stop();
  current = null;
  document.getElementById("connection").hidden = true;
  showAccount();
  const [path, search = ""] = (location.hash.replace(/^#/, "") || "/meetings").split("?");
  const parts = path.split("/").filter(Boolean);
  const query = new URLSearchParams(search);
  if (parts[0] === "login" || parts[0] === "register") return authPage(parts[0]);
  if (!session()) return requireLogin();
  followFeed();
  if (parts[0] === "voices") return voicesPage();
  if (parts[0] === "search") return searchPage(query.get("q") || "");
  if (parts[0] === "action-items") return actionItemsPage(query.get("done") === "1");
  if (parts[0] === "meetings" && parts[1]) {
    // From a search hit: ?t=<seconds>&segment=<id> opens the meeting there and plays.
    const number = (name) => (query.has(name) && Number.isFinite(Number(query.get(name))) ? Number(query.get(name)) : null);
    current = new MeetingPage(decodeURIComponent(parts[1]), main, { at: number("t"), segment: number("segment") });
    return current.load();
  }
  return meetingsPage();
}

function authPage(mode) {
  const registering = mode === "register";
  document.title = registering ? "Register · Parley" : "Log in · Parley";
  const problem = h("div", { "aria-live": "assertive" });
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password", name: "password", type: "password", required: true,
    autocomplete: registering ? "new-password" : "current-password", minlength: registering ? 8 : undefined,
  });
  const submit = h("button", { type: "submit" }, registering ? "Create account" : "Log in");
  const form = h("form", { class: "card narrow", onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    problem.replaceChildren();
    try {
      if (registering) await register(username.value.trim(), password.value);
      else await login(username.value.trim(), password.value);
      keepFresh();
      const back = sessionStorage.getItem("parley.return") || "#/meetings";
      sessionStorage.removeItem("parley.return");
      location.hash = back === "#/login" || back === "#/register" ? "#/meetings" : back;
    } catch (error) {
      problem.replaceChildren(errorBox(error.status === 401 ? new Error("Wrong username or password.") : error));
      submit.disabled = false;
    }
  } },
    h("h1", {}, registering ? "Create an account" : "Log in to Parley"),
    problem,
    h("label", { for: "username" }, "Username"), username,
    registering ? h("p", { class: "note" }, "3 to 32 letters, digits, dots, dashes or underscores.") : null,
    h("label", { for: "password" }, "Password"), password,
    registering ? h("p", { class: "note" }, "At least 8 characters.") : null,
    h("p", { class: "row" }, submit,
      registering ? h("a", { href: "#/login" }, "I have an account") : h("a", { href: "#/register" }, "Create an account")),
  );
  show(form);
  username.focus();
}

// The user's notifications, from now on, for as long as they are signed in: the meetings
// list follows them in place, and shares and assignments by others show a notice.
function followFeed() {
  if (feed) {
    // Given up after its attempts: a page change tries again.
    if (feed.givenUp) {
      feed.givenUp = false;
      feed.retry();
    }
    return;
  }
  feed = new LiveMeeting(null, {
    onEvent: (event) => {
      if (current && current.notify) current.notify(event);
      notice(event);
    },
    // Missed notifications (away too long): the list on screen is read again.
    onReset: async (connected) => {
      if (current && current.reload) await current.reload();
      return { offset: connected.offset };
    },
    onState: (name) => { if (feed) feed.givenUp = name === "failed"; },
    onGone: () => stopFeed(),
  }, "/ws/user");
  feed.start(null, null);
}

function stopFeed() {
  if (feed) feed.stop();
  feed = null;
}

// A small notice for what someone else did for this user: a meeting shared, an item assigned.
function notice(event) {
  const data = event.data || {};
  if (data.by === session()?.username) return;
  let text, meetingID;
  if (event.type === "meeting_shared") {
    text = `${data.by} shared “${data.meeting.title}” with you.`;
    meetingID = data.meeting.id;
  } else if (event.type === "action_item_assigned") {
    text = `${data.by} assigned you “${data.item.task}” in “${data.title}”.`;
    meetingID = data.meeting_id;
  } else {
    return;
  }
  const box = document.getElementById("notices");
  const item = h("div", { class: "notice", role: "status" },
    h("a", { href: `#/meetings/${encodeURIComponent(meetingID)}` }, text),
    h("button", { type: "button", class: "link", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"));
  box.append(item);
  setTimeout(() => item.remove(), 15_000);
}

async function meetingsPage() {
  document.title = "Meetings · Parley";
  const problem = h("div", { "aria-live": "assertive" });
  const list = h("div", {}, h("p", { class: "note" }, "Loading…"));
  const title = h("input", { id: "new-title", name: "title", required: true, maxlength: 200, placeholder: "Weekly planning" });
  // Who spoke when: the backend and what is known of the number of speakers (all optional).
  const diarizer = h("select", { id: "new-diarizer", name: "diarizer" },
    h("option", { value: "" }, "Automatic (the best one installed)"),
    h("option", { value: "neural" }, "Neural (real voices, overlap)"),
    h("option", { value: "classic" }, "Classic (built in, fastest)"),
    h("option", { value: "command" }, "Outside program (server setting)"));
  const count = (id) => h("input", { id, type: "number", min: 1, max: 64, step: 1, inputmode: "numeric", class: "count" });
  const speakers = count("new-speakers"), fewest = count("new-min-speakers"), most = count("new-max-speakers");
  const create = h("form", { class: "card", id: "new-meeting", onsubmit: async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    const body = { title: title.value.trim() };
    if (diarizer.value) body.diarizer = diarizer.value;
    for (const [key, input] of [["speakers", speakers], ["min_speakers", fewest], ["max_speakers", most]]) {
      if (input.value !== "") body[key] = Number(input.value);
    }
    try {
      const meeting = await api("POST", "/api/meetings", body);
      location.hash = `#/meetings/${encodeURIComponent(meeting.id)}`;
    } catch (error) {
      handle(error, problem);
    }
  } },
    h("h2", {}, "New meeting"),
    h("label", { for: "new-title" }, "Title"),
    h("div", { class: "row" }, title, h("button", { type: "submit" }, "Create")),
    h("details", { class: "speakers-options" },
      h("summary", {}, "Speakers"),
      h("div", { class: "row" },
        h("label", { for: "new-diarizer" }, "Who spoke when"), diarizer),
      h("div", { class: "row" },
        h("label", { for: "new-speakers" }, "Exactly"), speakers,
        h("label", { for: "new-min-speakers" }, "or at least"), fewest,
        h("label", { for: "new-max-speakers" }, "and at most"), most)),
  );
  show(h("h1", {}, "Meetings"), searchForm(""), problem, create,
    h("section", { class: "card", "aria-label": "Your meetings" }, list));
  // The rows by meeting id, kept current by the user's notifications.
  let rows = new Map();
  const draw = () => list.replaceChildren(meetingsTable([...rows.values()], problem));
  const page = {
    async reload() {
      const { meetings } = await api("GET", "/api/meetings");
      rows = new Map(meetings.map((m) => [m.id, m]));
      draw();
    },
    notify(event) {
      const data = event.data || {};
      if (event.type === "meeting_created" || event.type === "meeting_shared") {
        rows.set(data.meeting.id, data.meeting);
      } else if (event.type === "meeting_deleted" || event.type === "meeting_unshared") {
        if (!rows.delete(data.meeting_id)) return;
      } else if (event.type === "meeting_updated") {
        const row = rows.get(data.meeting_id);
        if (!row) return;
        for (const key of ["title", "status", "duration"]) if (data[key] != null) row[key] = data[key];
      } else {
        return;
      }
      draw();
    },
  };
  current = page;
  try {
    await page.reload();
  } catch (error) {
    handle(error, problem);
  }
}

function meetingsTable(meetings, problem) {
  if (!meetings.length) return h("p", { class: "note" }, "No meetings yet: create one above, then upload its recording.");
  const me = session().username;
  const rows = meetings
    .slice()
    .sort((a, b) => b.created_at.localeCompare(a.created_at))
    .map((m) => h("tr", { "data-meeting": m.id, "data-status": m.status },
      h("td", {}, h("a", { href: `#/meetings/${encodeURIComponent(m.id)}` }, m.title)),
      h("td", {}, h("span", { class: `status ${m.status}` }, m.status)),
      h("td", { class: "optional" }, m.duration ? clock(m.duration) : "–"),
      h("td", { class: "optional" }, new Date(m.created_at).toLocaleString()),
      h("td", {}, m.owner === me
        ? h("button", { type: "button", class: "danger", "aria-label": `Delete ${m.title}`, onclick: async () => {
            if (!confirm(`Delete “${m.title}” and its recording? This cannot be undone.`)) return;
            try {
              await api("DELETE", `/api/meetings/${encodeURIComponent(m.id)}`);
              if (current && current.reload) await current.reload();
            } catch (error) {
              handle(error, problem);
            }
          } }, "Delete")
        : h("span", { class: "note" }, `shared by ${m.owner}`)),
    ));
  return h("table", { class: "meetings" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Title"), h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col", class: "optional" }, "Duration"), h("th", { scope: "col", class: "optional" }, "Created"),
      h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
    h("tbody", {}, rows));
}

// Search across every meeting the user may see: what was said, summarized, decided, promised.
function searchForm(words) {
  const q = h("input", { id: "search-q", type: "search", name: "q", required: true, maxlength: 500, value: words,
    placeholder: "billing migration", autocomplete: "off" });
  return h("form", { class: "card search-form", role: "search", onsubmit: (event) => {
    event.preventDefault();
    if (q.value.trim()) location.hash = `#/search?q=${encodeURIComponent(q.value.trim())}`;
  } },
    h("label", { for: "search-q" }, "Search your meetings"),
    h("div", { class: "row" }, q, h("button", { type: "submit" }, "Search")));
}

const KINDS = { segment: "said", summary: "summary", decision: "decision", action_item: "action item" };

async function searchPage(words) {
  document.title = words ? `${words} · Search · Parley` : "Search · Parley";
  const problem = h("div", { "aria-live": "assertive" });
  const results = h("ol", { class: "search-hits", "aria-label": "Results" });
  const summary = h("p", { class: "note", id: "search-summary", "aria-live": "polite" }, words ? "Searching…" : "");
  const more = h("button", { type: "button", class: "secondary", id: "search-more", hidden: true }, "More results");
  show(h("h1", {}, "Search"), searchForm(words), problem, h("section", { class: "card" }, summary, results, more),
    h("p", {}, h("a", { href: "#/meetings" }, "Back to your meetings")));
  if (!words) return;
  let offset = 0;
  const load = async () => {
    more.disabled = true;
    try {
      const answer = await api("GET", `/api/search?q=${encodeURIComponent(words)}&offset=${offset}`);
      results.append(...answer.hits.map(searchHit));
      const shown = results.children.length;
      summary.textContent = shown ? `${shown}${answer.next_offset != null ? "+" : ""} ${shown === 1 ? "result" : "results"} for “${answer.query}”.`
        : `Nothing found for “${answer.query}”.`;
      more.hidden = answer.next_offset == null;
      offset = answer.next_offset ?? offset;
    } catch (error) {
      summary.textContent = "";
      handle(error, problem);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  await load();
}

function searchHit(hit) {
  const at = hit.start != null ? `?t=${hit.start}${hit.kind === "segment" ? `&segment=${hit.item}` : ""}` : "";
  const href = `#/meetings/${encodeURIComponent(hit.meeting_id)}${at}`;
  const meta = [KINDS[hit.kind] || hit.kind, hit.speaker, hit.start != null ? clock(hit.start) : null,
    new Date(hit.created_at).toLocaleDateString()].filter(Boolean).join(" · ");
  return h("li", { class: "search-hit", "data-meeting": hit.meeting_id, "data-kind": hit.kind },
    h("a", { href, class: "hit-open" }, hit.title),
    h("span", { class: "note" }, ` ${meta}`),
    h("p", { class: "snippet" }, ...marked(hit.snippet)));
}

// The server's snippet (escaped HTML whose only tags are <mark>) as text and <mark> nodes.
function marked(html) {
  const text = (part) => part.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"")
    .replace(/&#39;/g, "'").replace(/&amp;/g, "&");
  return html.split(/(<mark>.*?<\/mark>)/).filter(Boolean).map((part) => (part.startsWith("<mark>")
    ? h("mark", {}, text(part.slice(6, -7))) : document.createTextNode(text(part))));
}

// The user's action items across meetings: theirs by name or by assignment, soonest due first;
// ticking one is the same edit as in the meeting.
async function actionItemsPage(showDone) {
  document.title = "Action items · Parley";
  const problem = h("div", { "aria-live": "assertive" });
  const list = h("div", {}, h("p", { class: "note" }, "Loading…"));
  const toggle = h("input", { type: "checkbox", id: "show-done", checked: showDone, onchange: () => {
    location.hash = toggle.checked ? "#/action-items?done=1" : "#/action-items";
  } });
  show(h("h1", {}, "My action items"),
    h("p", { class: "note" }, "Items whose owner has your name, and items assigned to you, in every meeting you can see."),
    h("p", { class: "row" }, toggle, h("label", { for: "show-done" }, "Show done items too")),
    problem, h("section", { class: "card", "aria-label": "Your action items" }, list));
  const page = {
    async reload() {
      const { action_items: items } = await api("GET", `/api/action-items?assignee=me${showDone ? "" : "&open=true"}`);
      list.replaceChildren(actionItemsTable(items, problem));
    },
    // An item assigned to this user, or a meeting gone: the list is read again.
    notify(event) {
      if (["action_item_assigned", "meeting_deleted", "meeting_unshared", "meeting_shared"].includes(event.type)) {
        page.reload().catch((error) => handle(error, problem));
      }
    },
  };
  current = page;
  try {
    await page.reload();
  } catch (error) {
    handle(error, problem);
  }
}

function actionItemsTable(items, problem) {
  if (!items.length) return h("p", { class: "note", id: "no-action-items" }, "Nothing on your list.");
  const today = new Date().toISOString().slice(0, 10);
  const rows = items.map((item) => {
    const tick = h("input", { type: "checkbox", checked: item.done, "aria-label": `Done: ${item.task}` });
    tick.addEventListener("change", async () => {
      problem.replaceChildren();
      try {
        await api("PATCH", `/api/meetings/${encodeURIComponent(item.meeting_id)}/action-items/${item.id}`,
          { done: tick.checked });
        row.classList.toggle("done", tick.checked);
      } catch (error) {
        tick.checked = !tick.checked;
        handle(error, problem);
      }
    });
    const due = item.due_date
      ? h("time", { datetime: item.due_date, class: item.due_date < today && !item.done ? "overdue" : null },
        new Date(`${item.due_date}T00:00:00Z`).toLocaleDateString(undefined, { timeZone: "UTC", weekday: "short", month: "short", day: "numeric" }))
      : null;
    const row = h("tr", { "data-meeting": item.meeting_id, "data-item": item.id, class: item.done ? "done" : null },
      h("td", {}, tick),
      h("td", { class: "task" }, item.task),
      h("td", {}, h("a", { href: `#/meetings/${encodeURIComponent(item.meeting_id)}?t=${item.time}` }, item.title)),
      h("td", { class: "due" }, due, item.due ? h("span", { class: "note" }, ` ${item.due}`) : "–"),
      h("td", { class: "optional" }, item.assignee ? `assigned to ${item.assignee}` : item.owner || ""));
    return row;
  });
  return h("table", { class: "meetings action-items-list" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Done")),
      h("th", { scope: "col" }, "Task"), h("th", { scope: "col" }, "Meeting"), h("th", { scope: "col" }, "Due"),
      h("th", { scope: "col", class: "optional" }, "Whose"))),
    h("tbody", {}, rows));
}

// The people the user's meetings recognize by voice: enroll one from a recording, rename,
// merge two, delete (which deletes the voice data itself).
async function voicesPage() {
  document.title = "Voices · Parley";
  const problem = h("div", { "aria-live": "assertive" });
  const list = h("div", {}, h("p", { class: "note" }, "Loading…"));
  const name = h("input", { id: "enroll-name", required: true, maxlength: 80, placeholder: "Priya" });
  const file = h("input", { id: "enroll-file", type: "file", accept: "audio/*,video/*" });
  // Or recorded here: the microphone until Stop, kept in the page until Add sends it.
  let recorded = null;
  let clip = null;
  const heard = h("span", { id: "enroll-recorded", class: "note", "aria-live": "polite" });
  const record = h("button", { type: "button", id: "enroll-record", class: "secondary" }, "Record");
  if (!Recorder.supported()) {
    record.disabled = true;
    record.title = "Recording needs microphone access over HTTPS (or on this computer's own address).";
  }
  record.addEventListener("click", async () => {
    problem.replaceChildren();
    if (clip) {
      const stopping = clip;
      clip = null;
      current = null;
      recorded = await stopping.stop();
      const seconds = (recorded.size - 44) / 32000;
      heard.textContent = `Recorded ${seconds.toFixed(0)} s: Add sends it.`;
      record.textContent = "Record again";
      file.value = "";
      return;
    }
    recorded = null;
    clip = new Clip((seconds) => { heard.textContent = `Recording… ${seconds.toFixed(0)} s`; });
    try {
      await clip.start();
    } catch (error) {
      clip = null;
      handle(error, problem);
      return;
    }
    // Leaving the page lets go of the microphone.
    const open = clip;
    current = { stop: () => open.stop() };
    record.textContent = "Stop";
    heard.textContent = "Recording… 0 s";
  });
  file.addEventListener("change", () => {
    if (file.files.length) {
      recorded = null;
      heard.textContent = "";
    }
  });
  const enroll = h("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    try {
      if (clip) throw new Error("Stop the recording first.");
      const chosen = recorded || file.files[0];
      if (!chosen) throw new Error("Choose a recording, or record one.");
      const response = await fetch(`/api/voices?name=${encodeURIComponent(name.value.trim())}`, {
        method: "POST", body: chosen,
        headers: { Authorization: `Bearer ${await accessToken()}`,
          "Content-Type": chosen.type && chosen.type.startsWith("audio/") ? chosen.type : "application/octet-stream" },
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new ApiError(response.status, body.error?.code || "error", body.error?.message || `HTTP ${response.status}`);
      }
      name.value = "";
      file.value = "";
      recorded = null;
      voicesPage();
    } catch (error) {
      handle(error, problem);
    }
  } },
    h("h2", {}, "Add a voice"),
    h("p", { class: "note" }, "A short recording of one person alone (half a minute of speech is plenty): "
      + "a file, or recorded here."),
    h("div", { class: "row" }, h("label", { for: "enroll-name" }, "Name"), name),
    h("div", { class: "row" }, h("label", { for: "enroll-file" }, "Recording"), file, h("span", { class: "note" }, "or"),
      record, heard),
    h("div", { class: "row" }, h("button", { type: "submit", id: "enroll-add" }, "Add")));
  show(h("h1", {}, "Voices"),
    h("p", { class: "note" }, "People your meetings recognize by voice. Renaming a speaker in a meeting teaches a voice; "
      + "voice profiles are biometric data: deleting one deletes the voice itself."),
    problem, enroll, h("section", { class: "card", "aria-label": "Your voices" }, list));
  try {
    const { profiles } = await api("GET", "/api/voices");
    list.replaceChildren(voicesTable(profiles, problem));
  } catch (error) {
    handle(error, problem);
  }
}

function voicesTable(profiles, problem) {
  if (!profiles.length) return h("p", { class: "note" }, "No voices yet: rename a speaker in a meeting, or add one above.");
  const act = async (method, path, body) => {
    try {
      await api(method, path, body);
      voicesPage();
    } catch (error) {
      handle(error, problem);
    }
  };
  const rows = profiles.map((p) => {
    const path = `/api/voices/${encodeURIComponent(p.id)}`;
    const into = h("select", { "aria-label": `Merge ${p.name} into` },
      h("option", { value: "" }, "Merge into…"),
      ...profiles.filter((o) => o.id !== p.id).map((o) => h("option", { value: o.id }, o.name)));
    into.addEventListener("change", () => {
      if (into.value && confirm(`Merge “${p.name}” into “${into.selectedOptions[0].textContent}”?`)) {
        act("POST", `/api/voices/${encodeURIComponent(into.value)}/merge`, { from: p.id });
      }
    });
    return h("tr", { "data-voice": p.id },
      h("td", { class: "voice-name" }, p.name),
      h("td", {}, p.meetings === 1 ? "1 meeting" : `${p.meetings} meetings`),
      h("td", {},
        h("button", { type: "button", class: "link", "aria-label": `Rename ${p.name}`, onclick: () => {
          const name = prompt(`New name for ${p.name}`, p.name);
          if (name && name.trim()) act("PATCH", path, { name: name.trim() });
        } }, "Rename"),
        profiles.length > 1 ? into : null,
        h("button", { type: "button", class: "danger", "aria-label": `Delete ${p.name}`, onclick: () => {
          if (confirm(`Delete the voice of “${p.name}”? Meetings will no longer recognize them.`)) act("DELETE", path);
        } }, "Delete")));
  });
  return h("table", { class: "meetings voices" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Heard in"),
      h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
    h("tbody", {}, rows));
}

document.getElementById("logout").addEventListener("click", async () => {
  stopFeed();
  await logout();
  location.hash = "#/login";
});
window.addEventListener("hashchange", route);
keepFresh();
route();
