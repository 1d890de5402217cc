// The page of `clipforensics serve`: pick files, run them as a job through the REST API, show the verdicts.

import { Api } from "./api.js";
import { timeline } from "./chart.js";
import { explanationFigure } from "./explanations.js";
import { drawFaces, nearestFrame } from "./faces.js";
import { colourName, csvText, formatBytes, formatNumber, formatValue, isScore, plural } from "./format.js";
import { jobEntries } from "./joblist.js";
import { peopleTable, verdictOf } from "./people.js";

const DEFAULT_DRAWING = { fake: "#e62828", real: "#28c83c" };
const DEFAULT_THRESHOLD = 0.5;
const KEY_STORAGE = "clipforensics-api-key";
const SENT_STORAGE = "clipforensics-sent-jobs";  // detect job id -> {localize: its partner's id, threshold}
const $ = (id) => document.getElementById(id);

const state = {
  files: [],        // File objects chosen, in order
  models: null,     // GET /v1/models, once answered
  schema: null,     // GET /v1/schema: the rows' fields and the CSV columns
  rows: [],         // the last job's rows, merged (detect + localize)
  localizations: new WeakMap(),  // row -> {error, p_fake} of its localization, kept out of the downloads
  threshold: null,  // the threshold the shown results were labelled with
  jobs: [],         // GET /v1/jobs: the jobs listed so far, newest first
};
const api = new Api(sessionStorage.getItem(KEY_STORAGE));

// ---- the model panel -------------------------------------------------------------------------

function drawing() {
  return { ...DEFAULT_DRAWING, ...(state.models?.drawing ?? {}) };
}

function detectorInfo() {
  return state.models?.models?.detector ?? null;
}

function localizerInfo() {
  return state.models?.models?.localizer ?? null;
}

function modelThreshold() {
  const value = detectorInfo()?.threshold;
  return typeof value === "number" ? value : DEFAULT_THRESHOLD;
}

function threshold() {
  return state.threshold ?? modelThreshold();
}

function pen() {
  return { threshold: threshold(), colours: drawing() };
}

function canLocalize() {
  return Boolean(localizerInfo()) || Boolean(detectorInfo()?.has_decoder);
}

/** Whether the detector's scores can be explained: only a head's score can. */
function canExplain() {
  return Boolean(detectorInfo()?.has_head);
}

async function loadModels() {
  const panel = $("model");
  try {
    [state.models, state.schema] = await Promise.all([api.models(), api.schema()]);
  } catch (error) {
    if (error.status === 401) {
      $("key-form").hidden = false;
      panel.replaceChildren(paragraph(api.key ? "The server refused this key: enter the right one below."
        : "The server asks for an API key: enter it below.", "error-text"));
      $("key").focus();
      return;
    }
    panel.replaceChildren(paragraph(`${error.message}. Files cannot be checked until the server answers; reload the page to try again.`, "error-text"));
    return;
  }
  $("key-form").hidden = true;
  panel.replaceChildren(describeModels());
  $("threshold").value = String(modelThreshold());
  if (detectorInfo()?.faces) $("faces").value = detectorInfo().faces;
  if (detectorInfo()?.frames) $("frames").value = String(detectorInfo().frames);
  $("limits").textContent = describeLimits(state.models.limits);
  $("localize-option").hidden = !canLocalize();
  $("explain-option").hidden = !canExplain();
  updateSubmit();
  listJobs();
}

function describeModels() {
  const list = document.createElement("dl");
  list.className = "facts model-facts";
  const detector = detectorInfo();
  if (detector) {
    addFact(list, "Detector", describeModel(detector));
    addFact(list, "Threshold", `${formatNumber(modelThreshold())}: a file whose p_fake (probability of fake) is at or above it is called fake (change it below for one job)`);
  } else {
    addFact(list, "Detector", "none reported by the server");
  }
  const localizer = localizerInfo();
  if (localizer) addFact(list, "Localizer", describeModel(localizer));
  else if (detector?.has_decoder) addFact(list, "Localizer", "the detector's own decoder maps manipulated regions");
  else addFact(list, "Localizer", "none loaded: no heatmaps (start the server with --localizer to get them)");
  return list;
}

function describeModel(info) {
  const name = info.name ?? info.model ?? info.path;
  const parts = [];
  if (info.kind) parts.push(`${info.kind} model`);
  if (info.backbone?.name) parts.push(`backbone ${info.backbone.name}`);
  const abilities = [];
  if (info.has_head) abilities.push("a classification head (gives p_fake)");
  if (info.has_decoder) abilities.push("a localization decoder (gives heatmaps)");
  if (abilities.length) parts.push(`with ${abilities.join(" and ")}`);
  const provenance = describeProvenance(info.provenance, name);
  if (provenance) parts.push(provenance);
  if (info.device) parts.push(`on ${info.device}${info.precision ? `, ${info.precision}` : ""}`);
  const text = parts.join(", ") || "loaded";
  return name ? `${name} — ${text}` : text;
}

/** The provenance record in words, leaving out what repeats the model's name. */
function describeProvenance(provenance, name) {
  if (!provenance) return "";
  if (typeof provenance !== "object") return String(provenance);
  return Object.entries(provenance)
    .filter(([, value]) => value !== null && value !== undefined && value !== "" && typeof value !== "object")
    .filter(([, value]) => String(value) !== String(name))
    .map(([key, value]) => `${key.replaceAll("_", " ")} ${formatValue(value)}`)
    .join(", ");
}

function describeLimits(limits) {
  if (!limits || typeof limits !== "object") return "";
  const known = {
    max_files: (value) => `up to ${value} ${plural(value, "file")} a job`,
    max_upload_mb: (value) => `${Number(value.toFixed(1))} MB in all`,
    max_upload_bytes: (value) => `${formatBytes(value)} in all`,
    max_queue: (value) => `${value} ${plural(value, "job")} waiting or running at most`,
  };
  const parts = Object.entries(limits)
    .filter(([, value]) => value !== null && value !== undefined && typeof value !== "object")
    .map(([key, value]) => (known[key] ? known[key](value) : `${key.replaceAll("_", " ")}: ${formatValue(value)}`));
  return parts.length ? `This server takes ${parts.join(", ")}.` : "";
}

// ---- choosing files --------------------------------------------------------------------------

function addFiles(fileList) {
  for (const file of fileList) {
    const duplicate = state.files.some((f) => f.name === file.name && f.size === file.size && f.lastModified === file.lastModified);
    if (!duplicate) state.files.push(file);
  }
  renderSelection();
}

function renderSelection() {
  const list = $("selection-list");
  list.replaceChildren(...state.files.map((file, index) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "file-name";
    name.textContent = file.name;
    const size = document.createElement("span");
    size.className = "muted";
    size.textContent = `${kindOfFile(file)}, ${formatBytes(file.size)}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button link";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    remove.addEventListener("click", () => {
      state.files.splice(index, 1);
      renderSelection();
      $("files").focus();
    });
    item.append(name, size, remove);
    return item;
  }));
  $("selection").hidden = state.files.length === 0;
  $("selection-count").textContent = `(${state.files.length} ${plural(state.files.length, "file")})`;
  updateSubmit();
}

function kindOfFile(file) {
  if (file.type.startsWith("video/")) return "video";
  if (file.type.startsWith("image/")) return "image";
  return file.type || "file";
}

function updateSubmit(running = false) {
  $("submit").disabled = running || state.files.length === 0 || !state.models;
}

// ---- running a job ---------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  if (state.files.length === 0) return;
  const files = [...state.files];
  const frames = Number.parseInt($("frames").value, 10);
  const chosen = Number.parseFloat($("threshold").value);
  const limit = Number.isFinite(chosen) && chosen >= 0 && chosen <= 1 ? chosen : modelThreshold();
  const options = { faces: $("faces").value, frames: Number.isFinite(frames) && frames > 0 ? frames : null,
    threshold: limit === modelThreshold() ? null : limit, explain: canExplain() && $("explain").checked };
  const localize = canLocalize() && $("localize").checked;
  hideMessage();
  resetResults();
  updateSubmit(true);
  const tasks = localize ? ["detect", "localize"] : ["detect"];
  showProgress(Object.fromEntries(tasks.map((task) => [task, { status: "queued", done: 0, total: files.length }])),
    files.length);
  try {
    const jobs = await Promise.all(tasks.map((task) => api.startJob(task, files, options)));
    remember(jobs, limit);
    listJobs();
    await follow(jobs, tasks, files, limit);
  } catch (error) {
    showMessage(error.message);
    $("progress-panel").hidden = true;
  } finally {
    updateSubmit(false);
    listJobs();
  }
}

/** Waits for the jobs (a detect job, and its localize job when one was sent), showing their progress, then shows
 * their rows; `files`: the File objects sent, when this page still has them (to preview), else none. */
async function follow(jobs, tasks, files, limit) {
  const progress = Object.fromEntries(tasks.map((task) => [task, { status: "queued", done: 0, total: files.length }]));
  const outcomes = await Promise.allSettled(jobs.map((job, i) => api.waitForJob(job, (status) => {
    progress[tasks[i]] = { status: status.status, ...(status.progress ?? {}) };
    showProgress(progress, status.progress?.total ?? files.length);
  })));
  const [detected, localized] = outcomes;
  if (detected.status === "rejected") throw detected.reason;
  const localizeError = localized?.status === "rejected" ? localized.reason.message : null;
  state.threshold = limit;
  state.rows = mergeRows(detected.value.results ?? [], localized?.value?.results ?? null, localizeError);
  renderResults(state.rows, files);
  $("progress-text").textContent = `Done: ${state.rows.length} ${plural(state.rows.length, "file")} checked.`;
  $("progress").value = $("progress").max;
}

// ---- earlier jobs ----------------------------------------------------------------------------

function sentJobs() {
  try {
    return JSON.parse(sessionStorage.getItem(SENT_STORAGE) ?? "{}");
  } catch {
    return {};
  }
}

/** Keeps, for this tab, which localize job went with a detect job and the threshold they were sent with. */
function remember(jobs, limit) {
  const sent = sentJobs();
  sent[jobs[0].id] = { localize: jobs[1]?.id ?? null, threshold: limit };
  sessionStorage.setItem(SENT_STORAGE, JSON.stringify(sent));
}

/** Lists this key's jobs (the first page, or with `cursor` the next one after those listed). */
async function listJobs(cursor = null) {
  let page;
  try {
    page = await api.jobs(cursor);
  } catch {
    return;  // the list is a convenience: the rest of the page works without it
  }
  state.jobs = cursor ? [...state.jobs, ...page.jobs] : page.jobs;
  const sent = sentJobs();
  $("jobs").replaceChildren(...jobEntries(state.jobs, (job) => sent[job.id]?.localize ?? null, reopen));
  $("jobs-panel").hidden = state.jobs.length === 0;
  $("more-jobs").hidden = !page.next_cursor;
  $("more-jobs").onclick = () => listJobs(page.next_cursor);
}

/** Shows a listed job's results (following it first when it is not finished), with its localize job's heatmaps
 * when this tab sent the two together. */
async function reopen(job) {
  const sent = sentJobs()[job.id];
  const jobs = sent?.localize ? [job, { id: sent.localize }] : [job];
  hideMessage();
  resetResults();
  try {
    await follow(jobs, jobs.length === 2 ? ["detect", "localize"] : [job.task], [], sent?.threshold ?? modelThreshold());
  } catch (error) {
    showMessage(error.message);
    $("progress-panel").hidden = true;
  }
}

function showProgress(progress, fileCount) {
  $("progress-panel").hidden = false;
  const entries = Object.entries(progress);
  const total = entries.reduce((sum, [, p]) => sum + (Number(p.total) || fileCount), 0);
  const done = entries.reduce((sum, [, p]) => sum + (Number(p.done) || 0), 0);
  $("progress").max = Math.max(total, 1);
  $("progress").value = Math.min(done, total);
  const words = entries.map(([task, p]) => {
    const what = task === "detect" ? "Scoring" : "Mapping regions";
    if (p.status === "queued") return `${what}: waiting in the queue`;
    if (p.status === "done") return `${what}: done`;
    return `${what}: ${p.done ?? 0} of ${p.total ?? fileCount} done`;
  });
  $("progress-text").textContent = `${words.join(". ")}.`;
}

/** The detect rows, each given the mask and overlay of the localize row for the same file (as `detect
 * --localize` adds them), and beside each what the localization said: its error, or its map's mean. */
function mergeRows(detectRows, localizeRows, localizeError) {
  return detectRows.map((row, index) => {
    const merged = { ...row };
    const localization = { error: row.error ? null : localizeError, p_fake: null };
    const match = !localizeRows ? null
      : localizeRows[index]?.path === row.path ? localizeRows[index]
      : localizeRows.find((other) => other.path === row.path) ?? null;
    if (match) {
      for (const key of state.schema.map_files) if (match[key]) merged[key] = match[key];
      if (match.error && !row.error) localization.error = match.error;
      localization.p_fake = match.p_fake ?? null;
    }
    state.localizations.set(merged, localization);
    return merged;
  });
}

// ---- results ---------------------------------------------------------------------------------

function resetResults() {
  api.release();
  state.rows = [];
  $("cards").replaceChildren();
  $("results").hidden = true;
}

function renderResults(rows, files) {
  const counts = { fake: 0, real: 0, insufficient: 0, error: 0 };
  for (const row of rows) counts[verdictOf(row)] += 1;
  const insufficient = counts.insufficient ? `${counts.insufficient} with too few frames with a face for a verdict, ` : "";
  $("results-summary").textContent = `${rows.length} ${plural(rows.length, "file")}: ${counts.fake} fake, ${counts.real} real, ${insufficient}${counts.error} could not be scored (threshold ${formatNumber(threshold())}).`;
  $("cards").replaceChildren(...rows.map((row, index) => card(row, fileFor(row, index, files))));
  $("results").hidden = false;
  $("results").dataset.state = "done";
  $("results-heading").focus({ preventScroll: true });
}

function fileFor(row, index, files) {
  if (files[index]?.name === row.path) return files[index];
  return files.find((file) => file.name === row.path || String(row.path).endsWith(`/${file.name}`)) ?? null;
}

function card(row, file) {
  const item = document.createElement("li");
  item.className = "card";
  item.dataset.path = row.path ?? "";
  const verdict = verdictOf(row);
  const failed = verdict === "error";
  item.dataset.verdict = verdict;
  item.style.setProperty("--verdict", verdict === "fake" || verdict === "real" ? drawing()[verdict] : "var(--muted)");

  const head = document.createElement("div");
  head.className = "card-head";
  const title = document.createElement("h3");
  title.className = "card-title";
  title.textContent = row.path ?? file?.name ?? "(no name)";
  const badge = document.createElement("span");
  badge.className = `badge ${verdict}`;
  badge.textContent = verdict === "error" ? "not scored" : verdict === "insufficient" ? "too little evidence" : verdict;
  head.append(title, badge);
  item.append(head);

  if (!failed) item.append(score(row.p_fake));

  const facts = document.createElement("dl");
  facts.className = "facts";
  addFact(facts, "Kind", row.kind ?? "unknown");
  addFact(facts, "Faces", String(row.faces ?? 0));
  if (row.kind === "video") {
    addFact(facts, "Frames", `${row.frames ?? 0} sampled, ${row.frames_with_faces ?? 0} with a face, ${row.frames_without_faces ?? 0} without`);
  }
  item.append(facts);
  if (row.kind === "video" && row.people?.length) item.append(peopleTable(row, drawing()));

  if (row.error) item.append(paragraph(`Could not score this file: ${row.error}`, "error-text"));
  const notes = splitNotes(row.note);
  if (notes.length) {
    const list = document.createElement("ul");
    list.className = "notes";
    list.setAttribute("aria-label", "Notes");
    list.replaceChildren(...notes.map((note) => {
      const li = document.createElement("li");
      li.textContent = note;
      return li;
    }));
    item.append(list);
  }

  const preview = file ? mediaPreview(row, file) : null;
  if (preview) item.append(preview.figure);
  if (row.kind === "video" && Array.isArray(row.detail) && row.detail.length) {
    item.append(chartFigure(row, preview?.seek));
  }
  const explained = explanationFigure(row, (url) => api.viewable(url), threshold());
  if (explained) item.append(explained);
  const localization = state.localizations.get(row);
  if (row.overlay) item.append(overlayFigure(row, localization));
  if (localization?.error) item.append(paragraph(`The heatmap could not be made: ${localization.error}`, "error-text"));
  return item;
}

function score(pFake) {
  const box = document.createElement("div");
  box.className = "score";
  const value = document.createElement("span");
  value.className = "p-fake";
  value.textContent = `p_fake ${formatNumber(pFake)}`;
  const bar = document.createElement("span");
  bar.className = "score-bar";
  bar.setAttribute("role", "img");
  bar.setAttribute("aria-label", `probability of fake ${Math.round(pFake * 100)} percent, threshold ${Math.round(threshold() * 100)} percent`);
  const fill = document.createElement("span");
  fill.className = "score-fill";
  fill.style.width = `${Math.max(0, Math.min(1, pFake)) * 100}%`;
  const mark = document.createElement("span");
  mark.className = "score-threshold";
  mark.style.left = `${threshold() * 100}%`;
  bar.append(fill, mark);
  box.append(value, bar);
  return box;
}

function splitNotes(note) {
  if (!note) return [];
  if (Array.isArray(note)) return note.map(String);
  return String(note).split(/;\s+/).filter(Boolean);
}

// ---- the faces, boxed over the uploaded file --------------------------------------------------

function mediaPreview(row, file) {
  const isVideo = row.kind === "video" || file.type.startsWith("video/");
  if (row.kind === "audio") return null;
  const url = api.keep(URL.createObjectURL(file));
  const figure = document.createElement("figure");
  figure.className = "preview";
  const stage = document.createElement("div");
  stage.className = "stage";
  const canvas = document.createElement("canvas");
  canvas.className = "faces";
  canvas.dataset.faces = "0";
  canvas.setAttribute("aria-hidden", "true");
  const caption = document.createElement("figcaption");
  figure.append(stage, caption);
  const failed = Boolean(row.error) || row.p_fake === null || row.p_fake === undefined;
  const fail = () => {
    stage.remove();
    caption.textContent = failed ? "This browser cannot show this file either."
      : "This browser cannot show this file; the verdict above still stands.";
  };

  if (!isVideo) {
    const img = document.createElement("img");
    img.alt = describeFaces(row);
    img.addEventListener("load", () => {
      const faces = row.detail?.[0]?.faces ?? [];
      const redraw = () => drawFaces(canvas, img.naturalWidth, img.naturalHeight, faces, pen());
      redraw();
      new ResizeObserver(redraw).observe(img);
    });
    img.addEventListener("error", fail);
    img.src = url;
    stage.append(img, canvas);
    caption.textContent = boxesCaption(row);
    return { figure };
  }

  const video = document.createElement("video");
  video.controls = true;
  video.muted = true;
  video.playsInline = true;
  video.preload = "auto";
  video.setAttribute("aria-label", `${file.name}: ${describeFaces(row)}`);
  const frames = Array.isArray(row.detail) ? row.detail : [];
  const redraw = () => {
    if (!video.videoWidth) return;
    const frame = nearestFrame(frames, video.currentTime);
    drawFaces(canvas, video.videoWidth, video.videoHeight, frame?.faces ?? [], pen());
  };
  for (const name of ["loadeddata", "seeked", "timeupdate"]) video.addEventListener(name, redraw);
  video.addEventListener("error", fail);
  new ResizeObserver(redraw).observe(video);
  video.src = url;
  stage.append(video, canvas);
  caption.textContent = `${boxesCaption(row)} Boxes follow the sampled frame nearest the playing time.`;
  const seek = (frame) => {
    if (typeof frame.timestamp === "number" && Number.isFinite(video.duration || NaN)) {
      video.currentTime = Math.min(frame.timestamp, video.duration);
    }
  };
  return { figure, seek };
}

function boxesCaption(row) {
  const colours = drawing();
  const boxed = (row.detail ?? []).some((frame) => (frame.faces ?? []).some((face) => Array.isArray(face.box)));
  if (!boxed) return row.faces ? "The faces were scored as given (no boxes to draw)." : "No face was found to box.";
  return `Each face found is boxed with its p_fake: ${colourName(colours.fake)} at or above the threshold, ${colourName(colours.real)} below.`;
}

function describeFaces(row) {
  const faces = (row.detail ?? []).flatMap((frame) => frame.faces ?? []).filter((face) => face.p_fake !== null && face.p_fake !== undefined);
  if (row.kind === "video") return `video with ${row.frames_with_faces ?? 0} of ${row.frames ?? 0} sampled frames showing a face`;
  if (!faces.length) return "uploaded image, no face scored";
  return `uploaded image with ${faces.length} ${plural(faces.length, "face")} boxed: ${faces.map((f) => `p_fake ${formatNumber(f.p_fake)}`).join(", ")}`;
}

// ---- a video's p_fake over time --------------------------------------------------------------

function chartFigure(row, seek) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  let drawnWidth = 0;
  const draw = () => {
    const width = Math.max(240, Math.round(figure.clientWidth || 480));
    if (width === drawnWidth) return;
    drawnWidth = width;
    const svg = timeline(row.detail, { threshold: threshold(), colours: drawing(), seek, width });
    const old = figure.querySelector("svg.timeline");
    if (old) old.replaceWith(svg);
    else figure.prepend(svg);
  };
  draw();
  new ResizeObserver(draw).observe(figure);
  const caption = document.createElement("figcaption");
  const faceless = row.detail.filter((frame) => !isScore(frame.p_fake)).length;
  caption.textContent = `p_fake of each person over time, a line each in the colour of their row above; the dashed line is the threshold (${formatNumber(threshold())}).`
    + (faceless ? ` × marks ${faceless} ${plural(faceless, "frame")} where no face was found.` : "")
    + (seek ? " Click a point to see that frame above." : "");
  figure.append(caption);
  return figure;
}

// ---- the heatmap -----------------------------------------------------------------------------

function overlayFigure(row, localization) {
  const figure = document.createElement("figure");
  figure.className = "overlay";
  const isVideo = /\.(mp4|webm|mkv|mov)$/i.test(new URL(row.overlay, location.href).pathname);
  let media;
  if (isVideo) {
    media = document.createElement("video");
    media.controls = true;
    media.muted = true;
    media.preload = "auto";
    media.setAttribute("aria-label", `Heatmap of manipulated regions over ${row.path}`);
  } else {
    media = document.createElement("img");
    media.alt = `Heatmap of manipulated regions over ${row.path}, with its colour scale from 0 to 1 in the corner`;
    media.loading = "lazy";
  }
  media.className = "overlay-media";
  const caption = document.createElement("figcaption");
  api.viewable(row.overlay).then((url) => { media.src = url; }).catch((error) => {
    media.remove();
    caption.prepend(paragraph(`The heatmap could not be fetched: ${error.message}`, "error-text"));
  });
  caption.append("Where the localizer sees manipulation: blue untouched, red manipulated (scale 0 to 1 in the corner).");
  if (row.mask && /\.png$/i.test(new URL(row.mask, location.href).pathname)) {
    caption.append(" ");
    const link = document.createElement("a");
    api.viewable(row.mask).then((url) => { link.href = url; }).catch(() => link.remove());
    link.textContent = "Probability mask (PNG)";
    link.download = "";
    caption.append(link);
  }
  if (typeof localization?.p_fake === "number") caption.append(` Mean of the map: ${formatNumber(localization.p_fake)}.`);
  figure.append(media, caption);
  return figure;
}

// ---- downloads -------------------------------------------------------------------------------

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---- small helpers ---------------------------------------------------------------------------

function addFact(list, term, description) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = description;
  list.append(dt, dd);
}

function paragraph(text, className = "") {
  const p = document.createElement("p");
  p.textContent = text;
  if (className) p.className = className;
  return p;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = false;
}

function hideMessage() {
  $("message").hidden = true;
  $("message").textContent = "";
}

// ---- wiring ----------------------------------------------------------------------------------

function bindDropZone() {
  const zone = $("dropzone");
  const input = $("files");
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "dragend"]) {
    zone.addEventListener(name, (event) => {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
    });
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer?.files?.length) addFiles(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not make the browser leave the page to show it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

function main() {
  bindDropZone();
  $("clear").addEventListener("click", () => {
    state.files = [];
    renderSelection();
    $("files").focus();
  });
  $("job-form").addEventListener("submit", submit);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    api.key = $("key").value.trim() || null;
    if (api.key) sessionStorage.setItem(KEY_STORAGE, api.key);
    else sessionStorage.removeItem(KEY_STORAGE);
    loadModels();
  });
  $("download-csv").addEventListener("click", () => download("clipforensics-results.csv",
    csvText(state.rows, state.schema.csv_columns), "text/csv"));
  $("download-json").addEventListener("click", () => download("clipforensics-results.json",
    `${JSON.stringify(state.rows, null, 2)}\n`, "application/json"));
  $("results-heading").tabIndex = -1;
  loadModels();
}

main();
