// Schedules: the periodic schedules, with their next and last fire, refreshed every
// LIVE_INTERVAL_MS. The last job links to its page.

import { api } from "../api.js";
import { h, replaceChildren, setText } from "../dom.js";
import * as fmt from "../format.js";
import { LIVE_INTERVAL_MS, poll } from "../poll.js";
import { errorNote, heading, tableRegion } from "../ui.js";

const HEAD = ["Schedule", "Type", "Queue", "When", "Overlap", "Catch up", "Next run", "Last run", "Last job"];

export function render(main, _params, signal, onError) {
  const problem = h("div");
  const updated = h("p", { class: "muted" }, "Loading…");
  const results = h("div", { id: "schedules-results" });
  replaceChildren(main, heading("Schedules"), updated, problem, results);
  let shown = "";

  async function refresh() {
    const { items } = await api.get("/schedules", {}, signal);
    if (signal.aborted) return;
    problem.replaceChildren();
    setText(updated, `Live: updated ${new Date().toLocaleTimeString("en-GB")}`);
    const key = JSON.stringify(items);
    if (key === shown) return;
    shown = key;
    if (items.length === 0) {
      replaceChildren(results, h("p", { class: "muted", id: "no-schedules" }, "No periodic schedule is defined."));
      return;
    }
    replaceChildren(results, tableRegion("Schedules", table(items)));
  }
  poll(refresh, LIVE_INTERVAL_MS, signal, (error) => {
    if (!onError(error)) problem.replaceChildren(errorNote(error));
  });
}

function when(s) {
  return s.every_seconds !== null ? `every ${s.every_seconds} s` : `${s.cron} (${s.timezone})`;
}

function table(items) {
  return h(
    "table",
    { class: "data", id: "schedules-table" },
    h("caption", {}, `Periodic schedules (${items.length})`),
    h("thead", {}, h("tr", {}, ...HEAD.map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      ...items.map((s) =>
        h(
          "tr",
          { "data-schedule": s.name },
          h("th", { scope: "row", class: "mono" }, s.name),
          h("td", {}, s.type),
          h("td", {}, s.queue),
          h("td", { class: "mono" }, when(s)),
          h("td", {}, s.overlap),
          h("td", {}, s.catch_up),
          h("td", { "data-field": "next_run_at" }, fmt.time(s.next_run_at)),
          h("td", { "data-field": "last_run_at" }, fmt.time(s.last_run_at)),
          h(
            "td",
            { class: "mono" },
            s.last_job_id ? h("a", { href: `#/jobs/${encodeURIComponent(s.last_job_id)}` }, s.last_job_id) : "—",
          ),
        ),
      ),
    ),
  );
}
