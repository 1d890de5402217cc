// The earlier jobs of this key, as GET /v1/jobs lists them: one entry a submission, its results a click away.

import { plural } from "./format.js";

const SHOWN_NAMES = 3;
const TASKS = { detect: "Scoring", localize: "Heatmaps" };

/** `jobs` (the listing's, newest first) as entries, each with a button that calls `open(job)`; `partnerOf(job)`: the
 * localize job sent with a detect job from this page, listed within its entry rather than apart. */
export function jobEntries(jobs, partnerOf, open) {
  const partners = new Set(jobs.map(partnerOf).filter(Boolean));
  return jobs.filter((job) => !partners.has(job.id)).map((job) => {
    const item = document.createElement("li");
    item.className = "job";
    item.dataset.id = job.id;
    item.dataset.status = job.status;
    const names = document.createElement("span");
    names.className = "file-name";
    const more = job.files.length - SHOWN_NAMES;
    names.textContent = job.files.slice(0, SHOWN_NAMES).join(", ") + (more > 0 ? ` and ${more} more` : "");
    const facts = document.createElement("span");
    facts.className = "muted";
    const what = partnerOf(job) ? `${TASKS.detect} and heatmaps` : TASKS[job.task] ?? job.task;
    facts.textContent = `${what}, ${job.files.length} ${plural(job.files.length, "file")}: ${describeStatus(job)}. `
      + `Sent ${new Date(job.created).toLocaleString()}.`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button secondary";
    button.textContent = job.status === "done" ? "Show results" : "Follow";
    button.setAttribute("aria-label", `${button.textContent}: ${names.textContent}`);
    button.disabled = job.status === "cancelled";
    button.addEventListener("click", () => open(job));
    item.append(names, facts, button);
    return item;
  });
}

function describeStatus(job) {
  const { done, failed, total } = job.progress;
  if (job.status === "queued") return "waiting in the queue";
  if (job.status === "running") return `running, ${done} of ${total} done`;
  if (job.status === "failed") return `failed (${job.error ?? "no reason given"})`;
  if (job.status === "cancelled") return "cancelled";
  return failed ? `done, ${failed} could not be checked` : "done";
}
