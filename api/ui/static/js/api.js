// The API client of the dashboard: every data call goes through here, with the operator's
// bearer token (kept for this browser tab only, in sessionStorage) when one was given.

const TOKEN_KEY = "conveyor.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Raised when the API wants a token this tab does not have (or has a wrong one). */
export class Unauthorized extends ApiError {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The API's root: the page's directory, so the dashboard also works under a path prefix. */
const BASE = new URL(".", document.baseURI);

async function call(method, path, params, signal) {
  const url = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      url.searchParams.append(name, item);
    }
  }
  const headers = { Accept: "application/json" };
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  // The API refuses a state-changing request that is not JSON (415), body or not.
  if (method !== "GET") headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, signal, cache: "no-store" });
  let body = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) body = await response.json();
  if (response.status === 401) throw new Unauthorized(401, body);
  if (!response.ok) throw new ApiError(response.status, body);
  return { status: response.status, body };
}

export const api = {
  get: (path, params, signal) => call("GET", path, params, signal).then((r) => r.body),
  post: (path, params, signal) => call("POST", path, params, signal),
  delete: (path, params, signal) => call("DELETE", path, params, signal),
};

export const JOB_ID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
export const STATUSES = [
  "scheduled",
  "pending",
  "running",
  "retrying",
  "completed",
  "failed",
  "canceled",
  "expired",
];
export const ACTIVE = new Set(["scheduled", "pending", "running", "retrying"]);
