// Small helpers the pages share: building elements, showing errors, sending to log in.
import { ApiError, clearSession } from "./api.js";

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    // Through the CSSOM: the Content-Security-Policy refuses style attributes (inline styles).
    else if (name === "style") element.style.cssText = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error instanceof ApiError ? error.message : String(error.message || error));
}

// A page that needs a session sends the user to log in, and back here after.
export function requireLogin() {
  sessionStorage.setItem("parley.return", location.hash || "#/meetings");
  clearSession();
  location.hash = "#/login";
}

export function handle(error, box) {
  if (error.status === 401) return requireLogin();
  box.replaceChildren(errorBox(error));
}

