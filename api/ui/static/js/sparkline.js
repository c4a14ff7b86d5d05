// A small line chart of recent values, drawn as inline SVG with DOM calls only.

import { s } from "./dom.js";

const WIDTH = 120;
const HEIGHT = 28;
const PAD = 2;

/** An SVG sparkline of `values` (oldest first); `label` is its accessible description. */
export function sparkline(values, label) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? (WIDTH - 2 * PAD) / (values.length - 1) : 0;
  const points = values
    .map((v, i) => {
      const x = PAD + i * step;
      const y = HEIGHT - PAD - (v / max) * (HEIGHT - 2 * PAD);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
  return s(
    "svg",
    {
      class: "sparkline",
      width: WIDTH,
      height: HEIGHT,
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: "img",
      "aria-label": label,
    },
    s("title", {}, label),
    s("line", { class: "baseline", x1: 0, y1: HEIGHT - PAD, x2: WIDTH, y2: HEIGHT - PAD }),
    s("polyline", { class: "line", points, fill: "none" }),
  );
}
