// The token prompt: shown when the API answers 401. The token is kept for this browser tab
// only (sessionStorage) and sent as a bearer token with every API call.

import { setToken, token } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { heading } from "../ui.js";

export function render(main, onDone) {
  const input = h("input", {
    id: "token-input",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    minlength: 16,
    maxlength: 256,
    "aria-describedby": "token-help",
  });
  const form = h(
    "form",
    { class: "token-form", id: "token-form" },
    h("label", { for: "token-input" }, "API token"),
    input,
    h(
      "p",
      { id: "token-help", class: "muted" },
      "This API needs a bearer token (one of CONVEYOR_API_TOKENS or CONVEYOR_API_READ_TOKENS). " +
        "It is kept in this browser tab only and forgotten when the tab closes.",
    ),
    h("button", { type: "submit" }, "Sign in"),
  );
  const notes = [];
  if (token()) notes.push(h("p", { class: "error", role: "alert", id: "token-refused" }, "The API did not accept this token."));
  replaceChildren(main, heading("Sign in"), ...notes, form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    setToken(value);
    onDone();
  });
  input.focus();
}
