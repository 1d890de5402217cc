// A video's p_fake over time, as an inline SVG chart: a line per person.

import { formatNumber, isScore } from "./format.js";
import { personColour } from "./people.js";

const SVG = "http://www.w3.org/2000/svg";

/** An inline SVG of each person's p_fake against the time of the sampled frames they are seen in (or the frame's
 * index when a frame has no time): a line each, in their colour (faces of no person: one line of their own), the
 * points filled in the fake or real colour, the threshold as a dashed line, frames without a face as × on the
 * axis. `seek(frame)`, when given, is called when a point is clicked. `width`: in CSS pixels, so that text keeps
 * its size (draw it again when the space changes). */
export function timeline(frames, { threshold, colours, seek = null, width = 480 }) {
  const height = 220;
  const margin = { left: 44, right: 16, top: 14, bottom: 40 };
  const timed = frames.every((frame) => typeof frame.timestamp === "number");
  const xs = frames.map((frame) => (timed ? frame.timestamp : frame.index));
  let low = Math.min(...xs), high = Math.max(...xs);
  if (low === high) { low -= 1; high += 1; }
  const x = (value) => margin.left + ((value - low) / (high - low)) * (width - margin.left - margin.right);
  const y = (value) => margin.top + (1 - value) * (height - margin.top - margin.bottom);
  const limit = threshold;

  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, class: "timeline", role: "img" });
  const series = peopleSeries(frames, xs);
  const summary = [...series].map(([person, points]) => `${who(person)}: ${points.map((point) =>
    `${formatX(point.at, timed)} ${formatNumber(point.face.p_fake)}`).join(", ")}`);
  svg.append(svgElement("title", {}, `p_fake per person over the sampled frames (${series.size} ${series.size === 1 ? "line" : "lines"})`));
  svg.setAttribute("aria-label", `Chart of each person's p_fake against ${timed ? "time" : "frame number"}. ${summary.join("; ")}.`);

  const axes = svgElement("g", { class: "axes" });
  axes.append(svgElement("line", { x1: margin.left, y1: y(0), x2: width - margin.right, y2: y(0) }));
  axes.append(svgElement("line", { x1: margin.left, y1: y(0), x2: margin.left, y2: y(1) }));
  for (const tick of [0, 0.5, 1]) {
    axes.append(svgElement("line", { class: "grid", x1: margin.left, y1: y(tick), x2: width - margin.right, y2: y(tick) }));
    axes.append(svgElement("text", { x: margin.left - 6, y: y(tick), "text-anchor": "end", "dominant-baseline": "middle" }, String(tick)));
  }
  for (const tick of xTicks(low, high, timed)) {
    axes.append(svgElement("line", { x1: x(tick), y1: y(0), x2: x(tick), y2: y(0) + 4 }));
    axes.append(svgElement("text", { x: x(tick), y: y(0) + 16, "text-anchor": "middle" }, formatX(tick, timed)));
  }
  axes.append(svgElement("text", { x: (margin.left + width - margin.right) / 2, y: height - 4, "text-anchor": "middle", class: "axis-label" },
    timed ? "time (s)" : "frame"));
  axes.append(svgElement("text", { x: 12, y: y(0.5), "text-anchor": "middle", class: "axis-label",
    transform: `rotate(-90 12 ${y(0.5)})` }, "p_fake"));
  svg.append(axes);

  svg.append(svgElement("line", { class: "threshold", x1: margin.left, y1: y(limit), x2: width - margin.right, y2: y(limit),
    "stroke-dasharray": "6 4" }));
  svg.append(svgElement("text", { class: "threshold-label", x: width - margin.right, y: y(limit) - 5, "text-anchor": "end" },
    `threshold ${formatNumber(limit)}`));

  const clickable = (mark, frame) => {
    if (!seek) return mark;
    mark.classList.add("seekable");
    mark.addEventListener("click", () => seek(frame));
    return mark;
  };
  const at = (point) => `${timed ? "time" : "frame"} ${formatX(point.at, timed)}${timed ? ` (frame ${point.frame.index})` : ""}`;
  for (const [person, points] of series) {
    const group = svgElement("g", { class: "person", "data-person": person ?? "none" });
    const line = person === null ? {} : { style: `stroke: ${personColour(person, colours)}` };
    if (points.length > 1) {
      group.append(svgElement("polyline", { class: "series", ...line,
        points: points.map((point) => `${x(point.at)},${y(point.face.p_fake)}`).join(" ") }));
    }
    for (const point of points) {
      const mark = svgElement("circle", { class: "point", cx: x(point.at), cy: y(point.face.p_fake), r: 4.5,
        fill: point.face.p_fake >= limit ? colours.fake : colours.real, ...line });
      mark.append(svgElement("title", {}, `${who(person)}, ${at(point)}: p_fake ${formatNumber(point.face.p_fake)}`));
      group.append(clickable(mark, point.frame));
    }
    svg.append(group);
  }
  frames.forEach((frame, i) => {
    if ((frame.faces ?? []).some((face) => isScore(face.p_fake))) return;
    const cx = x(xs[i]), cy = y(0);
    const mark = svgElement("path", { class: "no-face", d: `M${cx - 4},${cy - 4}L${cx + 4},${cy + 4}M${cx - 4},${cy + 4}L${cx + 4},${cy - 4}` });
    mark.append(svgElement("title", {}, `${at({ frame, at: xs[i] })}: no face found`));
    svg.append(clickable(mark, frame));
  });
  return svg;
}

/** Person id (null: faces of no person) -> their scored faces in frame order, each with its frame and x value. */
function peopleSeries(frames, xs) {
  const series = new Map();
  frames.forEach((frame, i) => {
    for (const face of frame.faces ?? []) {
      if (!isScore(face.p_fake)) continue;
      const person = Number.isInteger(face.person) ? face.person : null;
      if (!series.has(person)) series.set(person, []);
      series.get(person).push({ frame, face, at: xs[i] });
    }
  });
  return new Map([...series].sort(([a], [b]) => (a ?? -1) - (b ?? -1)));
}

function who(person) {
  return person === null ? "faces" : `person #${person}`;
}

function xTicks(low, high, timed) {
  const span = high - low;
  const raw = span / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks = [];
  for (let tick = Math.ceil(low / step) * step; tick <= high + 1e-9; tick += step) {
    ticks.push(timed ? Number(tick.toFixed(6)) : Math.round(tick));
  }
  return [...new Set(ticks)];
}

function formatX(value, timed) {
  return timed ? `${Number(value.toFixed(2))}` : String(value);
}

function svgElement(name, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== null) element.textContent = text;
  return element;
}