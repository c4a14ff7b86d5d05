// The dashboard's entry point: a small router over the address's fragment (#/, #/jobs,
// #/jobs/<id>, #/workers, #/schedules). Each view gets an AbortSignal that ends its polling and its
// requests when the operator goes elsewhere.

import { JOB_ID, setToken, token, Unauthorized } from "./api.js";
import * as jobView from "./views/job.js";
import * as jobsView from "./views/jobs.js";
import * as overview from "./views/overview.js";
import * as schedulesView from "./views/schedules.js";
import * as tokenView from "./views/token.js";
import * as workersView from "./views/workers.js";

const main = document.getElementById("main");
const forget = document.getElementById("forget-token");
let current = null;

function route() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const [path, query] = raw.split("?", 2);
  const params = new URLSearchParams(query || "");
  const jobMatch = /^\/jobs\/([^/]+)$/.exec(path);
  if (jobMatch) {
    params.set("id", decodeURIComponent(jobMatch[1]));
    return { name: "jobs", view: jobView, params, title: "Job" };
  }
  if (path === "/jobs") return { name: "jobs", view: jobsView, params, title: "Jobs" };
  if (path === "/workers") return { name: "workers", view: workersView, params, title: "Workers" };
  if (path === "/schedules") return { name: "schedules", view: schedulesView, params, title: "Schedules" };
  return { name: "overview", view: overview, params, title: "Overview" };
}

/** True when the error was a missing or refused token: the sign-in form replaces the view. */
function handleError(error) {
  if (!(error instanceof Unauthorized)) return false;
  if (current) current.abort();
  current = null;
  document.title = "Sign in · Conveyor";
  tokenView.render(main, show);
  return true;
}

function show() {
  if (current) current.abort();
  current = new AbortController();
  const { name, view, params, title } = route();
  document.title = `${title} · Conveyor`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  forget.hidden = !token();
  view.render(main, params, current.signal, handleError);
}

function focusHeading() {
  const title = document.getElementById("page-title");
  if (title) title.focus({ preventScroll: false });
}

window.addEventListener("hashchange", () => {
  if (!location.hash.startsWith("#/") && location.hash !== "") return;
  show();
  focusHeading();
});

document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

document.getElementById("search-id").addEventListener("input", (event) => {
  event.target.setCustomValidity("");
});

document.getElementById("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("search-id");
  const id = input.value.trim().toUpperCase();
  input.setCustomValidity(JOB_ID.test(id) ? "" : "A job id is 26 characters (a ULID).");
  if (!input.reportValidity()) return;
  location.hash = `#/jobs/${id}`;
});

forget.addEventListener("click", () => {
  setToken(null);
  show();
});

show();
