// Workers: the live workers from their heartbeats, refreshed every LIVE_INTERVAL_MS. A
// worker whose heartbeat is overdue is flagged stale by the API.

import { api } from "../api.js";
import { h, replaceChildren, setText } from "../dom.js";
import * as fmt from "../format.js";
import { LIVE_INTERVAL_MS, poll } from "../poll.js";
import { errorNote, heading, tableRegion } from "../ui.js";

const HEAD = ["Worker", "State", "Host", "Pid", "Queues", "Concurrency", "In flight", "Processed", "Failed", "Started", "Last seen"];

export function render(main, _params, signal, onError) {
  const problem = h("div");
  const updated = h("p", { class: "muted" }, "Loading…");
  const results = h("div", { id: "workers-results" });
  replaceChildren(main, heading("Workers"), updated, problem, results);
  let shown = "";

  async function refresh() {
    const { items } = await api.get("/workers", {}, signal);
    if (signal.aborted) return;
    problem.replaceChildren();
    setText(updated, `Live: updated ${new Date().toLocaleTimeString("en-GB")}`);
    const key = JSON.stringify(items);
    if (key === shown) return;
    shown = key;
    if (items.length === 0) {
      replaceChildren(results, h("p", { class: "muted", id: "no-workers" }, "No worker has sent a heartbeat recently."));
      return;
    }
    replaceChildren(results, tableRegion("Workers", table(items)));
  }
  poll(refresh, LIVE_INTERVAL_MS, signal, (error) => {
    if (!onError(error)) problem.replaceChildren(errorNote(error));
  });
}

function table(items) {
  return h(
    "table",
    { class: "data", id: "workers-table" },
    h("caption", {}, `Live workers (${items.length})`),
    h("thead", {}, h("tr", {}, ...HEAD.map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      ...items.map((w) =>
        h(
          "tr",
          { "data-worker": w.id, class: w.stale ? "stale" : "" },
          h("th", { scope: "row", class: "mono" }, w.id),
          h("td", {}, w.stale ? h("span", { class: "badge badge-stale" }, "stale") : h("span", { class: "badge badge-live" }, "live")),
          h("td", {}, w.host || "—"),
          h("td", { class: "num" }, w.pid ?? "—"),
          h("td", {}, w.queues.join(", ")),
          h("td", { class: "num", "data-field": "concurrency" }, fmt.count(w.concurrency)),
          h("td", { class: "num", "data-field": "in_flight" }, fmt.count(w.in_flight)),
          h("td", { class: "num", "data-field": "processed" }, fmt.count(w.processed)),
          h("td", { class: "num", "data-field": "failed" }, fmt.count(w.failed)),
          h("td", {}, fmt.time(w.started_at)),
          h("td", {}, fmt.time(w.last_seen)),
        ),
      ),
    ),
  );
}
