"""The service's overhead: what ``POST /v1/detect`` costs beyond the prediction it runs.

What is measured: requests per second and p50 / p95 latency of ``POST /v1/detect?faces=none`` with one aligned
face crop (a 256x256 PNG of scikit-image's astronaut) against ``clipforensics serve`` running a tiny random
detector (fp32, CPU), at 1 and 8 concurrent clients (threads, each on its own keep-alive connection, loopback
only), each level bounded by ``--requests`` and ``--seconds``. The baseline is the same work through the Python
API in one process, run side by side: ``Predictor.predict([crop], faces="none")`` in a loop on the same model and
file. The model is tiny on purpose, so the figures show the service's own cost (HTTP, multipart streaming to a
private file, the content probe, the hop to the model's worker thread, JSON) rather than the model's; with a
ViT-L/14 (hundreds of ms a crop on CPU) that cost disappears in the model's.

Both sides run torch on one thread (``--threads``): the tiny model gains nothing from more, and with two
threads a forward stalls for whole scheduler time slices whenever another process holds a core, which would
swamp what is measured. The cases run in turns (the API, then 1 client, then 8; three rounds), so that another
process on the machine slows each of them alike. The service runs one request at a time per model (``--jobs 1``),
so 8 clients queue behind each other: their throughput shows whether the service keeps the model busy, their
latency the wait in the queue.

    python bench/serve_load.py [--requests 300] [--seconds 30] [--threads 1] [--json results.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from rss import cpu_name

HERE = Path(__file__).resolve().parent
CONCURRENCY = (1, 8)
CASES = ("api", *(f"service x{clients}" for clients in CONCURRENCY))
WARM_UP = 5
ROUNDS = 3


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """A tiny random detector and one aligned face crop."""
    import torch
    from PIL import Image
    from skimage import data

    from clipforensics.hub.checkpoints import save_model
    from clipforensics.models.backbones import TINY_BACKBONE
    from clipforensics.models.factory import create_model
    from clipforensics.models.model import ModelConfig

    torch.manual_seed(0)
    model = save_model(create_model(ModelConfig(TINY_BACKBONE)).eval(), folder / "model")
    crop = folder / "crop.png"
    Image.fromarray(data.astronaut()[20:276, 130:386]).save(crop)
    return model, crop


def api_calls(predictor, crop: Path, requests: int, seconds: float) -> list[float]:
    """Seconds per ``predict`` call, in this process."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(latencies) < requests and time.perf_counter() < deadline:
        start = time.perf_counter()
        [result] = predictor.predict([crop], faces="none", progress=False)
        latencies.append(time.perf_counter() - start)
        assert result.ok
    return latencies


class Service:
    """``clipforensics serve`` in a subprocess on a free loopback port."""

    def __init__(self, model: Path, state: Path, threads: int):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = Path(sys.executable).with_name("clipforensics")
        self.log = state / "server.log"
        state.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(command), "serve", "--model", str(model), "--port", str(self.port), "--device", "cpu",
                 "--precision", "fp32", "--max-queue", "64", "--state-dir", str(state / "state")],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)})
        deadline = time.monotonic() + 120
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def multipart(crop: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{crop.name}"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + crop.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def load_test(port: int, crop: Path, clients: int, requests: int, seconds: float) -> tuple[list[float], float]:
    """Latencies of ``requests`` POSTs (fewer when ``seconds`` run out) from ``clients`` threads, and the wall
    time they took together."""
    body, content_type = multipart(crop)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    remaining = [requests]
    deadline = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if remaining[0] <= 0 or time.perf_counter() > deadline:
                    return
                remaining[0] -= 1
            start = time.perf_counter()
            connection.request("POST", "/v1/detect?faces=none", body, {"Content-Type": content_type})
            response = connection.getresponse()
            answer = response.read()
            elapsed = time.perf_counter() - start
            with lock:
                if response.status == 200 and json.loads(answer)["results"][0]["error"] is None:
                    latencies.append(elapsed)
                else:
                    failures.append(f"{response.status}: {answer[:200]!r}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies, wall


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"requests": len(ordered), "per_s": len(ordered) / wall, "p50_ms": 1000 * statistics.median(ordered),
            "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests (or API calls) per case, at most")
    parser.add_argument("--seconds", type=float, default=30, help="time per case, at most")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, in the service and the baseline")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores visible)", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="clipforensics-serve-load-"))
    share, time_share = max(1, args.requests // ROUNDS), args.seconds / ROUNDS
    measured: dict[str, tuple[list[float], float]] = {case: ([], 0.0) for case in CASES}
    try:
        model, crop = write_inputs(folder)
        import torch

        import clipforensics

        torch.set_num_threads(args.threads)
        predictor = clipforensics.load(model, device="cpu", precision="fp32")
        api_calls(predictor, crop, WARM_UP, args.seconds)
        service = Service(model, folder, args.threads)
        try:
            load_test(service.port, crop, 1, WARM_UP, args.seconds)
            for _ in range(ROUNDS):  # interleaved, so that a busy machine slows every case alike
                latencies = api_calls(predictor, crop, share, time_share)
                measured["api"] = (measured["api"][0] + latencies, measured["api"][1] + sum(latencies))
                for clients in CONCURRENCY:
                    latencies, wall = load_test(service.port, crop, clients, share, time_share)
                    case = f"service x{clients}"
                    measured[case] = (measured[case][0] + latencies, measured[case][1] + wall)
        finally:
            service.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    figures = {case: summary(*measured[case]) for case in CASES}

    base = figures["api"]
    print(f"\none 256x256 face crop, faces=none, tiny random detector, fp32, CPU, {args.threads} torch thread(s)\n"
          f"{'case':<40}{'requests':>9}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'vs API (per s)':>16}")
    titles = {"api": "baseline: Predictor.predict, one process", "service x1": "POST /v1/detect, 1 client",
              "service x8": "POST /v1/detect, 8 clients"}
    for case, numbers in figures.items():
        numbers["vs_api"] = numbers["per_s"] / base["per_s"]
        print(f"{titles[case]:<40}{numbers['requests']:>9}{numbers['per_s']:>9.1f}{numbers['p50_ms']:>9.1f}"
              f"{numbers['p95_ms']:>9.1f}{numbers['vs_api']:>15.2f}x")
    overhead = figures["service x1"]["p50_ms"] - base["p50_ms"]
    print(f"\nservice overhead per request (p50, 1 client): {overhead:.1f} ms")
    if args.json:
        figures_json = {"cpu": cpu_name(), "threads": args.threads, "figures": figures, "overhead_ms": overhead}
        args.json.write_text(json.dumps(figures_json, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
