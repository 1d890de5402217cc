"""``clipforensics serve``: the predictor behind a REST service, with a job queue kept in SQLite, and the web
page (``static/``).

Nothing here is imported by ``import clipforensics`` or by the command's help: the service's modules (and
FastAPI) load when ``clipforensics serve`` runs. One concern a module:

settings  the service's limits and folders         errors   the one error body, and FastAPI's mapped onto it
auth      the bearer keys, the caller               uploads  multipart bodies streamed to private temporary files
probe     a request holds media, or 415             options  query options -> the predictor's options
rows      results -> response rows (names, URLs)    runners  the loaded models and their worker threads
store     jobs and their rows in SQLite             folders  each job's folder and the files served from it
jobs      the queue: slots, running, cancelling, recovery after a restart, expiry
listing   a job as described, a page of them
service   what the routes share: taking uploads in, requests answered now, jobs queued, start and stop
app       the FastAPI application: ``create_app(settings, runners)``
"""
