// The REST API: the session in localStorage (as the seed design keeps it), tokens refreshed
// before they expire, and errors as words a person understands.

const KEY = "parley.session";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function session() {
  try {
    return JSON.parse(localStorage.getItem(KEY));
  } catch {
    return null;
  }
}

function save(value) {
  localStorage.setItem(KEY, JSON.stringify(value));
}

export function clearSession() {
  localStorage.removeItem(KEY);
}

const friendly = {
  0: "The server cannot be reached. Check your connection and try again.",
  413: "That file is larger than this server accepts.",
  415: "That file is not audio this server can read.",
  429: "Too many attempts. Wait a moment and try again.",
  500: "Something went wrong on the server. Try again in a moment.",
  503: "The server is restarting. Try again in a moment.",
};

async function parse(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.ok) return body;
  const error = body && body.error;
  const message = (error && error.message) || friendly[response.status] || `The server answered ${response.status}.`;
  throw new ApiError(response.status, error ? error.code : "http_" + response.status, sentence(message));
}

function sentence(text) {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : capital + ".";
}

async function send(path, options) {
  try {
    return await fetch(path, options);
  } catch {
    throw new ApiError(0, "offline", friendly[0]);
  }
}

// An unauthenticated JSON POST (the auth routes).
function postJSON(path, body) {
  return send(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function remember(body, username) {
  save({
    username,
    access: body.access_token,
    refresh: body.refresh_token,
    expiresAt: Date.now() + body.expires_in * 1000,
  });
}

export async function login(username, password) {
  remember(await parse(await postJSON("/api/auth/login", { username, password })), username);
}

export async function register(username, password) {
  await parse(await postJSON("/api/auth/register", { username, password }));
  await login(username, password);
}

export async function logout() {
  const current = session();
  clearSession();
  if (current) {
    await postJSON("/api/auth/logout", { refresh_token: current.refresh }).catch(() => {});
  }
}

let refreshing = null;

// The access token, refreshed first when it has less than a minute left.
export async function accessToken() {
  const current = session();
  if (!current) throw new ApiError(401, "unauthorized", "Please log in.");
  if (Date.now() < current.expiresAt - 60_000) return current.access;
  refreshing ??= refresh(current).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function refresh(current) {
  const response = await postJSON("/api/auth/refresh", { refresh_token: current.refresh });
  try {
    remember(await parse(response), current.username);
  } catch (error) {
    if (error.status !== 0) {
      clearSession();
      throw new ApiError(401, "unauthorized", "Your session has ended. Please log in again.");
    }
    throw error;
  }
  return session().access;
}

// Keeps the session fresh while a page is open: refreshes a minute before expiry.
export function keepFresh() {
  const current = session();
  if (!current) return;
  const wait = Math.max(5_000, current.expiresAt - Date.now() - 60_000);
  setTimeout(() => accessToken().then(keepFresh, () => {}), wait);
}

export async function api(method, path, body) {
  const token = await accessToken();
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await send(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    clearSession();
    throw new ApiError(401, "unauthorized", "Your session has ended. Please log in again.");
  }
  return parse(response);
}

// Uploads with progress (fetch reports none for uploads): onProgress(fraction).
export async function upload(meetingID, file, onProgress) {
  const token = await accessToken();
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", `/api/meetings/${encodeURIComponent(meetingID)}/audio`);
    request.setRequestHeader("Authorization", `Bearer ${token}`);
    request.setRequestHeader("Content-Type", file.type && file.type.startsWith("audio/") ? file.type : "application/octet-stream");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    request.onload = () => {
      const response = new Response(request.responseText, { status: request.status });
      parse(response).then(resolve, reject);
    };
    request.onerror = () => reject(new ApiError(0, "offline", friendly[0]));
    request.send(file);
  });
}
