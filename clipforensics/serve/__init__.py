"""``clipforensics serve``: the predictor behind a REST service, with a job queue kept in SQLite, and the web
page (``static/``).

Nothing here is imported by ``import clipforensics`` or by the command's help: the service's modules (and
FastAPI) load when ``clipforensics serve`` runs. One concern a module:

settings  the service's limits and folders         errors   the one error body, and FastAPI's mapped onto it
auth      the bearer key                            uploads  multipart bodies streamed to private temporary files
probe     image or video, judged by content         options  query options -> the predictor's options
rows      results -> response rows (names, URLs)    runners  the loaded models and their worker threads
store     jobs and their rows in SQLite             folders  each job's folder and the files served from it
jobs      the queue: slots, running, cancelling, recovery after a restart, expiry
service   what the routes share: taking uploads in, requests answered now, jobs queued, start and stop
app       the FastAPI application: ``create_app(settings, runners)``
"""
