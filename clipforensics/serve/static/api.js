// The REST API of `clipforensics serve`, as the page uses it: JSON in, the one error body out, jobs polled.

const POLL_MS = 500;
const JOBS_PAGE = 20;

export class ApiError extends Error {
  constructor(message, status = null) {
    super(message);
    this.status = status;
  }
}

export class Api {
  /** `key`: the bearer key when the server was started with --api-key-file, else null. */
  constructor(key = null) {
    this.key = key;
    this.objectUrls = [];
  }

  authorized(options = {}) {
    if (!this.key) return options;
    return { ...options, headers: { ...(options.headers ?? {}), Authorization: `Bearer ${this.key}` } };
  }

  async json(url, options = {}) {
    let response;
    try {
      response = await fetch(url, this.authorized(options));
    } catch (error) {
      throw new ApiError(`The server could not be reached (${error.message}). Is \`clipforensics serve\` still running?`);
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) throw new ApiError(errorText(body, `${response.status} ${response.statusText}`, text), response.status);
    if (body === null) throw new ApiError(`The server answered ${url} with something that is not JSON.`);
    return body;
  }

  /** A file under /v1 as a URL an <img> or <a> can use: itself, or a local copy when a key must be sent. */
  async viewable(url) {
    if (!this.key) return url;
    const response = await fetch(url, this.authorized());
    if (!response.ok) throw new ApiError(`${url} answered ${response.status}`, response.status);
    return this.keep(URL.createObjectURL(await response.blob()));
  }

  /** Remembers an object URL, to be revoked by `release()`. */
  keep(objectUrl) {
    this.objectUrls.push(objectUrl);
    return objectUrl;
  }

  release() {
    for (const url of this.objectUrls) URL.revokeObjectURL(url);
    this.objectUrls = [];
  }

  models() {
    return this.json("/v1/models");
  }

  /** The rows' fields and the CSV columns, as the server defines them. */
  schema() {
    return this.json("/v1/schema");
  }

  /** POST /v1/jobs: `options` {faces, frames, threshold, explain}; faces are the user's choice for detect, while
   * localize keeps its own default (whole images, as DeCLIP reads them) unless the files are face crops; explain
   * asks detect for each face's explanation. */
  startJob(task, files, options) {
    const query = new URLSearchParams({ task });
    if (task === "detect" || options.faces === "none") query.set("faces", options.faces);
    if (task === "detect" && options.explain) query.set("explain", "true");
    if (options.frames) query.set("frames", String(options.frames));
    if (options.threshold !== null && options.threshold !== undefined) query.set("threshold", String(options.threshold));
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    return this.json(`/v1/jobs?${query}`, { method: "POST", body: form });
  }

  /** GET /v1/jobs: a page of this key's jobs, newest first (`cursor`: the previous page's `next_cursor`). */
  jobs(cursor = null) {
    const query = new URLSearchParams({ limit: String(JOBS_PAGE) });
    if (cursor) query.set("cursor", cursor);
    return this.json(`/v1/jobs?${query}`);
  }

  /** Polls the job until it is done (its status returned) or failed (thrown); `onUpdate` sees every status. */
  async waitForJob(job, onUpdate) {
    const url = job.status_url ?? `/v1/jobs/${encodeURIComponent(job.id)}`;
    for (;;) {
      const status = await this.json(url);
      onUpdate(status);
      if (status.status === "done") return status;
      if (status.status === "failed") throw new ApiError(`The job failed: ${status.error ?? "the server gave no reason"}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}

function errorText(body, status, text) {
  if (body && typeof body === "object") {
    const message = body.error ?? body.message ?? (typeof body.detail === "string" ? body.detail : null);
    const detail = body.error !== undefined ? body.detail : null;
    const extra = detail === null || detail === undefined ? "" : ` (${describeDetail(detail)})`;
    if (message) return `The server refused: ${message}${extra} [${status}]`;
    if (Array.isArray(body.detail)) return `The server refused the request [${status}]: ${describeDetail(body.detail)}`;
  }
  return `The server answered ${status}${text ? `: ${text.slice(0, 300)}` : ""}`;
}

function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((item) => (item && typeof item === "object" && ("message" in item || "msg" in item)
      ? `${item.field ? `${item.field}: ` : ""}${item.message ?? item.msg}` : describeDetail(item))).join("; ");
  }
  if (detail && typeof detail === "object") {
    return Object.entries(detail).map(([key, value]) => `${key.replaceAll("_", " ")} ${
      typeof value === "object" ? JSON.stringify(value) : value}`).join(", ");
  }
  return String(detail);
}
