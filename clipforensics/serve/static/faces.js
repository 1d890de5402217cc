// Faces boxed over the uploaded picture: a <canvas> the size of the image, laid over it.

import { formatNumber, isScore } from "./format.js";

/** Boxes and `p_fake 0.87` labels, each on a filled band above its box (inside it at the top where there is
 * no room above), as the CLI's --annotate draws them: `colours.fake` at or above `threshold`, else
 * `colours.real`. Lines and labels keep a readable size on screen whatever the image's size. Returns how many
 * faces were drawn (also left in `canvas.dataset.faces`). */
export function drawFaces(canvas, width, height, faces, { threshold, colours }) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, width, height);
  const shown = canvas.getBoundingClientRect().width || width;
  const scale = width / shown;  // image pixels per screen pixel
  const line = Math.max(2, Math.round(2 * scale));
  const font = Math.max(10, Math.round(13 * scale));
  const pad = Math.max(2, Math.round(3 * scale));
  let drawn = 0;
  for (const face of faces) {
    if (!Array.isArray(face.box) || !isScore(face.p_fake)) continue;
    const [x0, y0, x1, y1] = face.box;
    const colour = face.p_fake >= threshold ? colours.fake : colours.real;
    context.strokeStyle = colour;
    context.lineWidth = line;
    context.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const text = `p_fake ${formatNumber(face.p_fake)}`;
    context.font = `600 ${font}px system-ui, sans-serif`;
    const band = font + 2 * pad;
    const bandWidth = context.measureText(text).width + 2 * pad;
    const top = y0 - band >= 0 ? y0 - band : Math.max(0, y0);
    const left = Math.max(0, Math.min(x0 - line / 2, width - bandWidth));
    context.fillStyle = colour;
    context.fillRect(left, top, bandWidth, band);
    context.fillStyle = "#ffffff";
    context.textBaseline = "middle";
    context.fillText(text, left + pad, top + band / 2);
    drawn += 1;
  }
  canvas.dataset.faces = String(drawn);
  return drawn;
}

/** The sampled frame whose timestamp is nearest `time` (seconds), or the first when none has a time. */
export function nearestFrame(frames, time) {
  let best = null;
  for (const frame of frames) {
    if (typeof frame.timestamp !== "number") continue;
    if (!best || Math.abs(frame.timestamp - time) < Math.abs(best.timestamp - time)) best = frame;
  }
  return best ?? frames[0] ?? null;
}
