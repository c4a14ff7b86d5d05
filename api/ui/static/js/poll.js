// Polling that stops with its view: the next round starts `intervalMs` after the previous
// one ended (never two at once), and nothing runs once `signal` is aborted. An error of a
// round goes to `onError`; polling goes on (the API may be back by the next round).

export const LIVE_INTERVAL_MS = 2000;

export function poll(fn, intervalMs, signal, onError) {
  let timer = null;
  async function round() {
    if (signal.aborted) return;
    try {
      await fn();
    } catch (error) {
      if (!signal.aborted) onError(error);
    }
    if (!signal.aborted) timer = setTimeout(round, intervalMs);
  }
  signal.addEventListener("abort", () => clearTimeout(timer));
  round();
}
