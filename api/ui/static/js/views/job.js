// One job: its fields, payload, result, last error and attempt history as a timeline, with
// cancel and retry. Refreshed while the job can still change.

import { ACTIVE, api, ApiError, JOB_ID } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import * as fmt from "../format.js";
import { LIVE_INTERVAL_MS, poll } from "../poll.js";
import { announce, badge, errorNote, heading } from "../ui.js";

export function render(main, params, signal, onError) {
  const id = params.get("id");
  const body = h("div", { id: "job-detail" });
  replaceChildren(main, heading(`Job ${id}`), body);
  if (!JOB_ID.test(id)) {
    replaceChildren(body, h("p", { class: "error", role: "alert" }, `${id} is not a job id (26 characters, a ULID).`));
    return;
  }
  let shown = "";
  let missing = false;
  async function refresh() {
    let job;
    try {
      job = await api.get(`/jobs/${id}`, {}, signal);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        missing = true; // shown once: an alert repeated every round would be re-announced
        replaceChildren(body, h("p", { class: "error", role: "alert", id: "job-missing" }, `No job has the id ${id}.`));
        return;
      }
      throw error;
    }
    const key = JSON.stringify(job);
    if (key === shown || signal.aborted) return; // unchanged: leave focus and selection alone
    shown = key;
    replaceChildren(body, ...detail(job, refresh, signal));
  }
  poll(
    async () => {
      if (!missing && (!shown || ACTIVE.has(JSON.parse(shown).status))) await refresh();
    },
    LIVE_INTERVAL_MS,
    signal,
    (error) => {
      if (!onError(error)) replaceChildren(body, errorNote(error));
    },
  );
}

function detail(job, refresh, signal) {
  return [
    actions(job, refresh, signal),
    h("section", { "aria-labelledby": "fields-title" }, h("h2", { id: "fields-title" }, "Details"), fields(job)),
    block("Payload", "payload", fmt.json(job.payload)),
    block("Result", "result", job.status === "completed" ? fmt.json(job.result) : "—"),
    block("Last error", "last-error", job.last_error || "—"),
    h("section", { "aria-labelledby": "history-title" }, h("h2", { id: "history-title" }, "Attempts"), timeline(job.history)),
  ];
}

function fields(job) {
  const rows = [
    ["Status", badge(job.status)],
    ["Type", job.type],
    ["Queue", h("a", { href: `#/jobs?queue=${encodeURIComponent(job.queue)}` }, job.queue)],
    ["Attempts", `${job.attempts}${job.max_attempts ? ` of ${job.max_attempts}` : ""}`],
    ["Timeout", job.timeout_seconds ? `${job.timeout_seconds} s` : "worker's default"],
    ["Correlation id", job.correlation_id || "—"],
    ["Worker", job.worker || "—"],
    ["Cancel requested", job.cancel_requested ? "yes" : "no"],
    ["Created", fmt.time(job.created_at)],
    ["Updated", fmt.time(job.updated_at)],
    ["Run at", fmt.time(job.run_at)],
    ["Next run", fmt.time(job.next_run_at)],
    ["Expires", fmt.time(job.expires_at)],
    ["Started", fmt.time(job.started_at)],
    ["Finished", fmt.time(job.finished_at)],
  ];
  return h(
    "dl",
    { class: "fields" },
    ...rows.map(([name, value]) => h("div", { class: "field-row" }, h("dt", {}, name), h("dd", { "data-field": name.toLowerCase() }, value))),
  );
}

function block(title, slug, text) {
  const id = `${slug}-title`;
  return h(
    "section",
    { "aria-labelledby": id },
    h("h2", { id }, title),
    h("pre", { class: "code", id: `job-${slug}`, tabindex: 0 }, text),
  );
}

function timeline(history) {
  if (!history || history.length === 0) return h("p", { class: "muted" }, "No attempt yet.");
  return h(
    "ol",
    { class: "timeline", id: "job-history" },
    ...history.map((a) =>
      h(
        "li",
        { class: `attempt outcome-${a.outcome.replace(/\W+/g, "-")}` },
        h("p", { class: "attempt-title" }, h("strong", {}, `Attempt ${a.attempt}`), ` — ${a.outcome}`),
        h(
          "p",
          { class: "muted" },
          `${fmt.time(a.started_at)} → ${fmt.time(a.finished_at)} (${fmt.duration(fmt.between(a.started_at, a.finished_at))})`,
          a.worker ? ` on ${a.worker}` : "",
        ),
        a.error ? h("pre", { class: "code attempt-error" }, a.error) : null,
      ),
    ),
  );
}

function actions(job, refresh, signal) {
  const bar = h("div", { class: "actions-bar" });
  if (ACTIVE.has(job.status) && !job.cancel_requested) {
    const cancel = h("button", { type: "button", class: "danger", id: "cancel-job" }, "Cancel job");
    cancel.addEventListener("click", () =>
      act(cancel, () => api.delete(`/jobs/${job.id}`, {}, signal), (r) =>
        r.status === 202 ? "Cancel requested: the worker was asked to stop." : "Job canceled.",
      ).then(refresh),
    );
    bar.append(cancel);
  }
  if (job.status === "failed" || job.status === "canceled") {
    const retry = h("button", { type: "button", id: "retry-job" }, "Retry job");
    retry.addEventListener("click", () =>
      act(retry, () => api.post(`/jobs/${job.id}/retry`, {}, signal), () => "Job queued again.").then(refresh),
    );
    bar.append(retry);
  }
  bar.append(h("a", { href: `#/jobs?queue=${encodeURIComponent(job.queue)}`, class: "button-link" }, `Jobs of ${job.queue}`));
  return bar;
}

async function act(button, call, message) {
  button.disabled = true;
  try {
    announce(message(await call()));
  } catch (error) {
    announce(`Not done: ${error.message}`);
    button.disabled = false;
  }
}
