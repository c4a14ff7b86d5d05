// Pieces every view uses: status badges, error notes, announcements, confirmation.

import { ApiError } from "./api.js";
import { h } from "./dom.js";

/** A status as a badge: the word itself is shown, the colour only repeats it. */
export function badge(status) {
  return h("span", { class: `badge badge-${status}`, "data-status": status }, status);
}

/** What went wrong, as an alert paragraph (the API's problem detail when there is one). */
export function errorNote(error) {
  let text = "Something went wrong.";
  if (error instanceof ApiError) {
    text = `${error.message} (HTTP ${error.status})`;
  } else if (error && error.name === "TypeError") {
    text = "The API cannot be reached. Retrying…";
  } else if (error && error.message) {
    text = error.message;
  }
  return h("p", { class: "error", role: "alert" }, text);
}

/** Say `text` to screen readers and show it briefly. */
export function announce(text) {
  const region = document.getElementById("announcer");
  region.textContent = text;
  region.classList.add("visible");
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => region.classList.remove("visible"), 6000);
}

/** Ask before an action: resolves true when the operator confirms. */
export function confirmAction(title, text, okLabel) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), {
      once: true,
    });
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

/** A table inside a horizontally scrolling, focusable region (small screens). */
export function tableRegion(label, table) {
  return h("div", { class: "table-wrap", role: "region", "aria-label": label, tabindex: 0 }, table);
}

/** The page heading; focused after navigation so keyboard and screen reader users land on it. */
export function heading(text) {
  return h("h1", { tabindex: -1, id: "page-title" }, text);
}
