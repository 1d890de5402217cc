// Why the detector said fake or real: each person's face with the map of where the detector looked for the score
// its call rests on (for fake, or for real: the face's `explains`) laid over it (rows asked for with `explain=true`).

import { formatNumber, isScore } from "./format.js";

/** Each person's representative face (their largest, in the frame their `frame` names) that has an explanation,
 * with the person: an image's faces, a video's people. */
export function explainedFaces(row) {
  const shown = [];
  for (const person of row.people ?? []) {
    const frame = (row.detail ?? []).find((candidate) => candidate.index === person.frame);
    const face = frame?.faces?.find((candidate) => candidate.person === person.id && candidate.explanation);
    if (face) shown.push({ person, face });
  }
  return shown;
}

/** A figure of the row's explained faces, each map over its face's thumbnail beside the face's p_fake and verdict
 * (`threshold`); `viewable(url)` gives the URL an <img> can load. Null when the row has no explanation. */
export function explanationFigure(row, viewable, threshold) {
  const shown = explainedFaces(row);
  if (!shown.length) return null;
  const figure = document.createElement("figure");
  figure.className = "explanations";
  const list = document.createElement("ul");
  list.className = "explained-faces";
  for (const { person, face } of shown) {
    const item = document.createElement("li");
    const stage = document.createElement("div");
    stage.className = "explained-stage";
    if (person.face) {
      const thumbnail = document.createElement("img");
      thumbnail.src = person.face;
      thumbnail.alt = "";
      stage.append(thumbnail);
    }
    const map = document.createElement("img");
    map.className = "explanation";
    map.alt = `Where the detector looked to call person #${person.id}'s face ${face.explains}: the brighter, the more`;
    viewable(face.explanation).then((url) => { map.src = url; }).catch(() => {
      map.replaceWith(document.createTextNode("The explanation could not be fetched."));
    });
    stage.append(map);
    item.append(stage, verdict(person.id, face.p_fake, threshold), reason(face.explains));
    list.append(item);
  }
  const caption = document.createElement("figcaption");
  caption.textContent = "Why: where the detector looked for the score each face's call rests on, for fake where its"
    + " head says fake, for real where it says real (gradient-weighted attention rollout); the brighter a patch, the"
    + " more it drove that score. These are the detector's reasons, not a map of edited pixels.";
  figure.append(list, caption);
  return figure;
}

function verdict(id, pFake, threshold) {
  const line = document.createElement("span");
  line.className = "explained-verdict";
  const label = !isScore(pFake) ? "error" : pFake >= threshold ? "fake" : "real";
  const badge = document.createElement("span");
  badge.className = `badge ${label}`;
  badge.textContent = label === "error" ? "not scored" : label;
  line.append(`#${id} p_fake ${formatNumber(pFake)} `, badge);
  return line;
}

/** Which score the map shows the reasons for: the head's own call at p_fake 0.5, which an operating threshold
 * other than 0.5 can contradict. */
function reason(explains) {
  const line = document.createElement("span");
  line.className = "explained-reason";
  line.textContent = `the map: why ${explains}`;
  return line;
}
