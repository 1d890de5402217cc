// The people of a video: a row each (their best face, the frames they are seen in, their p_fake and verdict),
// and who they are in the chart (the colour of their line).

import { formatNumber, isScore, plural } from "./format.js";

/** A video's verdict on a card: `insufficient` (too few frames with a face for a verdict, see the row's note)
 * is neither fake nor real; `error` when nothing was scored. */
export function verdictOf(row) {
  if (row.error || !isScore(row.p_fake)) return "error";
  if (row.label === "insufficient") return "insufficient";
  return row.label === "fake" ? "fake" : "real";
}

/** A person's colour (`#rrggbb`): the server's palette by id, as boxes and charts draw them everywhere. */
export function personColour(id, colours) {
  const palette = colours.people?.length ? colours.people : ["#2866e6"];
  return palette[id % palette.length];
}

/** A table of the row's people, a row each, in order of first appearance, labelled as the server labelled them;
 * the person whose p_fake is the video's is marked. */
export function peopleTable(row, colours) {
  const table = document.createElement("table");
  table.className = "people";
  const caption = document.createElement("caption");
  const count = row.people.length;
  caption.textContent = `${count} ${count === 1 ? "person" : "people"} seen in ${row.frames ?? 0} sampled frames`;
  table.append(caption);
  const head = table.createTHead().insertRow();
  for (const title of ["Face", "Person", "Seen", "p_fake", "Verdict"]) {
    const cell = document.createElement("th");
    cell.scope = "col";
    cell.textContent = title;
    head.append(cell);
  }
  const body = table.createTBody();
  for (const person of row.people) {
    const line = body.insertRow();
    line.dataset.person = String(person.id);
    line.dataset.verdict = person.label ?? "none";
    if (person.id === row.deciding_person) line.classList.add("deciding");
    line.insertCell().append(thumbnail(person));
    const who = line.insertCell();
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = personColour(person.id, colours);
    who.append(swatch, `#${person.id}`);
    if (person.id === row.deciding_person) who.append(note("decides the video"));
    const seen = line.insertCell();
    seen.textContent = `${person.frames} ${plural(person.frames, "frame")}`;
    if (isScore(person.first) && isScore(person.last)) seen.append(note(`${formatTime(person.first)}–${formatTime(person.last)}`));
    const score = line.insertCell();
    score.className = "number";
    score.textContent = formatNumber(person.p_fake);
    const verdict = line.insertCell();
    const badge = document.createElement("span");
    const label = isScore(person.p_fake) && person.label ? person.label : "error";
    badge.className = `badge ${label}`;
    badge.textContent = label === "error" ? "not scored" : label;
    verdict.append(badge);
  }
  return table;
}

function thumbnail(person) {
  if (!person.face) return note("no face kept");
  const image = document.createElement("img");
  image.className = "face";
  image.src = person.face;
  image.alt = `The largest face of person #${person.id}`;
  image.width = image.height = 48;
  return image;
}

function note(text) {
  const span = document.createElement("span");
  span.className = "muted people-note";
  span.textContent = text;
  return span;
}

function formatTime(seconds) {
  return `${Number(seconds.toFixed(1))} s`;
}
