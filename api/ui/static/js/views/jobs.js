// Jobs: a page of `GET /jobs` at a time, filtered by queue, status and type, newest first.
// Paging follows the API's cursor, so however many jobs exist only one page is loaded.
// The filters and the cursor live in the address (#/jobs?queue=..&status=..), so a page
// can be bookmarked and the browser's back button pages back.

import { api, STATUSES } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import * as fmt from "../format.js";
import { badge, errorNote, heading, tableRegion } from "../ui.js";

const PAGE_SIZE = 25;

export function render(main, params, signal, onError) {
  const filters = {
    queue: params.get("queue") || "",
    status: params.get("status") || "",
    type: params.get("type") || "",
  };
  const cursor = params.get("cursor") || "";
  const queueSelect = h("select", { id: "filter-queue", name: "queue" }, h("option", { value: "" }, "All queues"));
  const statusSelect = h(
    "select",
    { id: "filter-status", name: "status" },
    h("option", { value: "" }, "Any status"),
    ...STATUSES.map((s) => h("option", { value: s }, s)),
  );
  statusSelect.value = filters.status;
  const typeInput = h("input", {
    id: "filter-type",
    name: "type",
    type: "text",
    value: filters.type,
    autocomplete: "off",
    spellcheck: "false",
    maxlength: 64,
    "aria-describedby": "filter-type-help",
  });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter jobs" },
    h("div", { class: "field" }, h("label", { for: "filter-queue" }, "Queue"), queueSelect),
    h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
    h("div", { class: "field" }, h("label", { for: "filter-type" }, "Type"), typeInput),
    h("button", { type: "submit" }, "Apply"),
    h(
      "p",
      { class: "muted help", id: "filter-type-help" },
      "Jobs are indexed by queue and status; the type is matched within the jobs read for a page, " +
        "so a rare type can give short pages: follow Next page.",
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = jobsHash({
      queue: queueSelect.value,
      status: statusSelect.value,
      type: typeInput.value.trim(),
    });
  });
  const results = h("div", { id: "jobs-results", "aria-live": "polite", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const limits = h("div", { id: "queue-limits" });
  replaceChildren(main, heading("Jobs"), form, limits, results);
  if (filters.queue) {
    api
      .get(`/queues/${encodeURIComponent(filters.queue)}/limits`, {}, signal)
      .then(({ limits: items }) => {
        if (!signal.aborted && items.length > 0) replaceChildren(limits, limitsTable(filters.queue, items));
      })
      .catch((error) => onError(error));
  }

  api
    .get("/queues", {}, signal)
    .then(({ items }) => {
      for (const q of items) queueSelect.append(h("option", { value: q.name }, q.name));
      if (filters.queue && !items.some((q) => q.name === filters.queue)) {
        queueSelect.append(h("option", { value: filters.queue }, filters.queue));
      }
      queueSelect.value = filters.queue;
    })
    .catch((error) => onError(error));

  api
    .get("/jobs", { ...filters, limit: PAGE_SIZE, cursor }, signal)
    .then((page) => {
      if (!signal.aborted) replaceChildren(results, jobsTable(page.items), pager(filters, cursor, page.next_cursor));
    })
    .catch((error) => {
      if (!onError(error)) replaceChildren(results, errorNote(error));
    })
    .finally(() => results.setAttribute("aria-busy", "false"));
}

export function jobsHash(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  const text = query.toString();
  return text ? `#/jobs?${text}` : "#/jobs";
}

function jobsTable(items) {
  if (items.length === 0) return h("p", { class: "muted", id: "no-jobs" }, "No job matches these filters.");
  const rows = items.map((job) =>
    h(
      "tr",
      { "data-job": job.id },
      h("td", { class: "mono" }, h("a", { href: `#/jobs/${job.id}` }, job.id)),
      h("td", {}, job.type),
      h("td", {}, job.queue),
      h("td", {}, badge(job.status)),
      h("td", { class: "num" }, `${job.attempts}${job.max_attempts ? ` / ${job.max_attempts}` : ""}`),
      h("td", {}, fmt.time(job.created_at)),
      h("td", {}, fmt.time(job.updated_at)),
      h("td", { class: "error-cell" }, job.last_error || ""),
    ),
  );
  const head = ["Id", "Type", "Queue", "Status", "Attempts", "Created", "Updated", "Last error"];
  return tableRegion(
    "Jobs",
    h(
      "table",
      { class: "data", id: "jobs-table" },
      h("caption", {}, `Jobs, newest first (${items.length} on this page)`),
      h("thead", {}, h("tr", {}, ...head.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...rows),
    ),
  );
}

// The queue's concurrency and rate limits (ADR 0017): what each key allows, how many of its
// jobs run now and how many wait for a slot. Set with PUT /queues/{name}/limits/{key}.
function limitsTable(queue, items) {
  const dash = (value) => (value === undefined || value === null ? "–" : String(value));
  const rows = items.map((limit) =>
    h(
      "tr",
      { "data-limit": limit.key },
      h("td", { class: "mono" }, limit.key),
      h("td", { class: "num", "data-field": "max_running" }, dash(limit.max_running)),
      h("td", { class: "num", "data-field": "max_per_second" }, dash(limit.max_per_second)),
      h("td", { class: "num", "data-field": "burst" }, dash(limit.burst)),
      h("td", { class: "num", "data-field": "running" }, fmt.count(limit.running)),
      h("td", { class: "num", "data-field": "held" }, fmt.count(limit.held)),
    ),
  );
  const head = ["Limit key", "Max running", "Max per second", "Burst", "Running", "Held"];
  return tableRegion(
    "Limits",
    h(
      "table",
      { class: "data", id: "limits-table" },
      h("caption", {}, `Concurrency and rate limits of the queue ${queue}`),
      h("thead", {}, h("tr", {}, ...head.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...rows),
    ),
  );
}

function pager(filters, cursor, next) {
  const nav = h("nav", { class: "pager", "aria-label": "Pages" });
  if (cursor) nav.append(h("a", { href: jobsHash(filters), class: "button-link" }, "First page"));
  if (next) nav.append(h("a", { href: jobsHash({ ...filters, cursor: next }), class: "button-link", rel: "next" }, "Next page"));
  if (!cursor && !next) nav.append(h("span", { class: "muted" }, "All matching jobs are on this page."));
  return nav;
}
