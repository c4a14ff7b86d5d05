// Formatting values for display. Every function returns plain text.

/** "2030-01-01 12:00:00Z" from an RFC 3339 time; "—" for none. */
export function time(iso) {
  if (!iso) return "—";
  return String(iso).replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** A duration in seconds as "850 ms", "12 s", "4 min 3 s", "2 h 5 min", "3 d 4 h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** Seconds between two RFC 3339 times, or null. */
export function between(startIso, endIso) {
  if (!startIso || !endIso) return null;
  return (Date.parse(endIso) - Date.parse(startIso)) / 1000;
}

/** A count with thousands separators. */
export function count(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

/** Any JSON value, pretty-printed ("null" for null, "—" when absent). */
export function json(value) {
  if (value === undefined) return "—";
  return JSON.stringify(value, null, 2);
}
