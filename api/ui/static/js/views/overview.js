// Overview: every queue's counts, oldest waiting job, consumers and recent throughput, and
// whether it is paused (with a button to pause or resume it), refreshed every
// LIVE_INTERVAL_MS without reloading. Rows are updated in place, so focus
// and scroll position survive each refresh.

import { api } from "../api.js";
import { h, replaceChildren, setText } from "../dom.js";
import * as fmt from "../format.js";
import { LIVE_INTERVAL_MS, poll } from "../poll.js";
import { sparkline } from "../sparkline.js";
import { announce, confirmAction, errorNote, heading, tableRegion } from "../ui.js";

const MINUTES = 15;
// Queues shown (the first by name): each row costs a throughput request per refresh.
const MAX_ROWS = 100;
const COUNTS = ["waiting", "running", "scheduled", "retrying", "failed", "expired"];

export function render(main, _params, signal, onError) {
  const tbody = h("tbody");
  const problem = h("div");
  const updated = h("p", { class: "muted", id: "overview-updated" }, "Loading…");
  const empty = h("p", { class: "muted", hidden: true }, "No queue has had a job yet.");
  const more = h("p", { class: "muted", id: "overview-more", hidden: true });
  const table = h(
    "table",
    { class: "data", id: "queues-table" },
    h("caption", {}, "Queues"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Queue"),
        ...COUNTS.map((c) => h("th", { scope: "col", class: "num" }, c[0].toUpperCase() + c.slice(1))),
        h("th", { scope: "col", class: "num" }, "Oldest waiting"),
        h("th", { scope: "col", class: "num" }, "Consumers"),
        h("th", { scope: "col" }, `Finished per minute (last ${MINUTES} min)`),
        h("th", { scope: "col" }, "Failed jobs"),
        h("th", { scope: "col" }, "Starting jobs"),
      ),
    ),
    tbody,
  );
  replaceChildren(
    main,
    heading("Overview"),
    updated,
    problem,
    empty,
    more,
    tableRegion("Queues", table),
  );
  const rows = new Map();

  async function refresh() {
    const { items, total } = await api.get("/queues", { limit: MAX_ROWS }, signal);
    const rates = await Promise.all(
      items.map((q) =>
        api
          .get(`/queues/${encodeURIComponent(q.name)}/throughput`, { minutes: MINUTES }, signal)
          .then((t) => t.minutes)
          .catch(() => null),
      ),
    );
    if (signal.aborted) return;
    empty.hidden = items.length > 0;
    more.hidden = !(total > items.length);
    setText(more, `Showing the first ${items.length} of ${fmt.count(total)} queues by name.`);
    const seen = new Set();
    items.forEach((queue, i) => {
      seen.add(queue.name);
      let row = rows.get(queue.name);
      if (!row) {
        row = newRow(queue.name, signal);
        rows.set(queue.name, row);
      }
      updateRow(row, queue, rates[i]);
      tbody.append(row.tr); // keeps the API's order (by name)
    });
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        rows.delete(name);
      }
    }
    problem.replaceChildren();
    setText(updated, `Live: updated ${new Date().toLocaleTimeString("en-GB")}`);
  }

  poll(refresh, LIVE_INTERVAL_MS, signal, (error) => {
    if (!onError(error)) problem.replaceChildren(errorNote(error));
  });
}

function newRow(name, signal) {
  const cells = {};
  const tr = h("tr", { "data-queue": name });
  const link = h("a", { href: `#/jobs?queue=${encodeURIComponent(name)}` }, name);
  cells.paused = h("span", { class: "badge badge-paused", "data-field": "paused", hidden: true }, "paused");
  tr.append(h("th", { scope: "row" }, link, cells.paused));
  for (const field of COUNTS) {
    cells[field] = h("td", { class: "num", "data-field": field });
    tr.append(cells[field]);
  }
  cells.failedLink = h("a", {
    href: `#/jobs?queue=${encodeURIComponent(name)}&status=failed`,
    "aria-label": `Failed jobs of ${name}`,
  });
  cells.oldest = h("td", { class: "num", "data-field": "oldest_waiting_age_seconds" });
  cells.consumers = h("td", { class: "num", "data-field": "consumers" });
  cells.throughput = h("div", { class: "spark" });
  const retry = h("button", { type: "button" }, "Retry all");
  const purge = h("button", { type: "button", class: "danger" }, "Purge");
  retry.addEventListener("click", () => bulk(name, "retry", signal));
  purge.addEventListener("click", () => bulk(name, "purge", signal));
  cells.retry = retry;
  cells.purge = purge;
  cells.pause = h("button", { type: "button" }, "Pause");
  cells.pause.addEventListener("click", () => togglePause(name, cells, signal));
  tr.append(
    cells.oldest,
    cells.consumers,
    h("td", { "data-field": "throughput" }, cells.throughput),
    h("td", {}, h("div", { class: "actions" }, retry, purge)),
    h("td", {}, cells.pause),
  );
  return { tr, cells, lastSpark: "" };
}

function updateRow(row, queue, minutes) {
  const { cells } = row;
  for (const field of COUNTS) {
    if (field === "failed" && queue.failed > 0) {
      setText(cells.failedLink, fmt.count(queue.failed));
      if (cells.failed.firstChild !== cells.failedLink) cells.failed.replaceChildren(cells.failedLink);
    } else {
      setText(cells[field], fmt.count(queue[field]));
    }
  }
  setText(cells.oldest, fmt.duration(queue.oldest_waiting_age_seconds));
  setText(cells.consumers, fmt.count(queue.consumers));
  cells.retry.disabled = queue.failed === 0;
  cells.purge.disabled = queue.failed === 0;
  cells.retry.setAttribute("aria-label", `Retry all failed jobs of ${queue.name}`);
  cells.purge.setAttribute("aria-label", `Purge the failed jobs of ${queue.name}`);
  showPaused(cells, queue.name, queue.paused);
  if (minutes) {
    const values = minutes.map((m) => m.completed + m.failed);
    const key = values.join(",");
    if (key !== row.lastSpark) {
      row.lastSpark = key;
      const last = values[values.length - 1];
      const total = values.reduce((a, b) => a + b, 0);
      const label = `${queue.name}: ${total} finished in the last ${values.length} minutes, ${last} this minute`;
      replaceChildren(
        cells.throughput,
        sparkline(values, label),
        h("span", { class: "spark-value", "data-field": "finished-total" }, fmt.count(total)),
      );
    }
  }
}

function showPaused(cells, name, paused) {
  cells.paused.hidden = !paused;
  cells.pauseState = paused;
  setText(cells.pause, paused ? "Resume" : "Pause");
  cells.pause.setAttribute(
    "aria-label",
    paused ? `Resume the queue ${name}: its jobs start again` : `Pause the queue ${name}: none of its jobs starts`,
  );
}

/** Pause a running queue (after confirmation) or resume a paused one. */
async function togglePause(queue, cells, signal) {
  const resume = cells.pauseState === true;
  if (
    !resume &&
    !(await confirmAction(
      "Pause queue",
      `Start no job of the queue ${queue} until it is resumed? Running jobs finish.`,
      "Pause",
    ))
  )
    return;
  const path = `/queues/${encodeURIComponent(queue)}/${resume ? "resume" : "pause"}`;
  try {
    const { body } = await api.post(path, {}, signal);
    showPaused(cells, queue, body.paused);
    announce(`${queue}: ${body.paused ? "paused" : "resumed"}.`);
  } catch (error) {
    announce(`${queue}: ${error.message}`);
  }
}

/** Retry or purge every failed job of a queue, after confirmation, a bounded batch per call. */
async function bulk(queue, action, signal) {
  const words =
    action === "retry"
      ? ["Retry failed jobs", `Run every failed job of the queue ${queue} again?`, "Retry all"]
      : [
          "Purge failed jobs",
          `Delete every failed job of the queue ${queue} now? They cannot be retried afterwards.`,
          "Purge",
        ];
  if (!(await confirmAction(...words))) return;
  const path = `/queues/${encodeURIComponent(queue)}/${action === "retry" ? "retry-failed" : "purge"}`;
  const params = action === "retry" ? {} : { status: "failed" };
  const verb = action === "retry" ? "retried" : "purged";
  let total = 0;
  try {
    for (;;) {
      const { body } = await api.post(path, params, signal);
      total += body[verb];
      if (body.remaining === 0 || body[verb] === 0) break;
    }
    announce(`${queue}: ${total} failed job${total === 1 ? "" : "s"} ${verb}.`);
  } catch (error) {
    announce(`${queue}: ${verb} ${total}, then: ${error.message}`);
  }
}
