"""Benchmark the HTTP API: /aggregates under 32 concurrent clients, uploads against the CLI,
and /aggregates while a training job runs.

    .venv/bin/python benchmarks/api_bench.py [--home /tmp/reintegration-api-bench] \
        [--clients 32] [--seconds 20] [--upload-rows 100000] [--skip-upload] [--skip-training]

1. **Store**: ``--home`` (outside the repository) is filled once with about a million scored
   interviews (``reintegration synth --returnees 400000 --rounds 3`` then ``reintegration
   ingest``, about 75 s), and reused on later runs.
2. **Aggregates**: ``reintegration serve`` on a free port with that home; one warm-up request
   (the first loads the analytics frame), then ``--clients`` concurrent keep-alive clients ask
   ``GET /api/v1/aggregates?by=sex,age_group,return_type`` for ``--seconds``. The clients run
   in their own process (a minimal asyncio HTTP/1.1 client), so their CPU is not the server's
   GIL. Reports requests/s, p50 and p99. Target: p99 under 150 ms.
3. **Upload vs CLI**: a ``--upload-rows`` canonical CSV, stored into a fresh home by
   ``reintegration ingest FILE`` (the baseline, the command's wall time) and by
   ``POST /api/v1/batches?wait=600`` to a server on another fresh home (the request's wall
   time); the ratio API/CLI.
4. **Aggregates during training**: ``POST /api/v1/models/risk/train`` on the big store, then
   the same load as in 2; p99 target under 500 ms; says whether the job was still running at
   the end of the window (its worker is then stopped: it is the benchmark's own process).

Only the standard library and NumPy are imported here; the server and the commands are child
processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

COMMAND = Path(sys.executable).with_name("reintegration")
AGGREGATES = "/api/v1/aggregates?by=sex,age_group,return_type"
BIG_RETURNEES = 400_000  # three rounds with attrition: about a million interviews (1.03M)
ROWS_PER_RETURNEE = 2.57
TARGET_P99_MS = 150.0
TARGET_P99_TRAINING_MS = 500.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REINTEGRATION_")}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(REINTEGRATION_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    return env


def run(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(COMMAND), *args], env=env_for(home), capture_output=True, text=True, check=False
    )
    if check and done.returncode not in (0, 1):
        raise SystemExit(f"reintegration {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done


def stored_scores(home: Path) -> int:
    import sqlite3

    db = home / "reintegration.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM score").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def ensure_big_store(home: Path) -> int:
    home.mkdir(parents=True, exist_ok=True)
    have = stored_scores(home)
    if have >= 1_000_000:
        return have
    panel = home / "panel.csv"
    print(f"filling {home} with about a million interviews (once; about 2 minutes)", flush=True)
    started = time.perf_counter()
    run(home, "synth", "--returnees", str(BIG_RETURNEES), "--rounds", "3", "--out", str(panel))
    run(home, "ingest", str(panel), "--uploader", "bench")
    panel.unlink(missing_ok=True)
    print(f"  stored in {time.perf_counter() - started:.0f} s", flush=True)
    return stored_scores(home)


def token(home: Path) -> str:
    name = f"bench-{secrets.token_hex(4)}"
    return run(home, "users", "add", name, "--role", "admin").stdout.strip()


class Server:
    """``reintegration serve`` in a child process, until stopped."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="api-bench-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [str(COMMAND), "serve", "--port", str(self.port)],
            env=env_for(home),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server stopped; see {self.log.name}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5)
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the server did not answer /healthz within 120 s")

    def request(
        self, method: str, path: str, auth: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {auth}", **headers},
        )
        try:
            with urllib.request.urlopen(req, timeout=1800) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        os.unlink(self.log.name)


# -- the load: a minimal keep-alive HTTP/1.1 client per task ----------------------------------


async def _client(port: int, request: bytes, until: float, out: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"status {status}: {body[:300]!r}")
            out.append(time.perf_counter() - start)
    finally:
        writer.close()


async def _load(port: int, path: str, auth: str, clients: int, seconds: float) -> list[float]:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {auth}\r\n\r\n"
    ).encode()
    until = time.perf_counter() + seconds
    latencies: list[float] = []
    await asyncio.gather(*(_client(port, request, until, latencies) for _ in range(clients)))
    return latencies


def _load_child(
    port: int, path: str, auth: str, clients: int, seconds: float, queue: object
) -> None:
    try:
        result: object = asyncio.run(_load(port, path, auth, clients, seconds))
    except Exception as exc:  # the parent reports it instead of waiting for a result forever
        result = f"{type(exc).__name__}: {exc}"
    queue.put(result)  # type: ignore[attr-defined]


def load(port: int, auth: str, clients: int, seconds: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_load_child, args=(port, AGGREGATES, auth, clients, seconds, queue))
    started = time.perf_counter()
    child.start()
    result = queue.get(timeout=seconds + 120)
    child.join()
    if isinstance(result, str):
        raise SystemExit(f"the load failed: {result}")
    latencies = np.array(result, dtype=float) * 1000
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "max_ms": float(latencies.max()),
        "wall_s": elapsed,
    }


def show_load(title: str, figures: dict[str, float], target_ms: float) -> None:
    verdict = "meets" if figures["p99_ms"] < target_ms else "MISSES"
    print(
        f"{title}: {figures['requests']:.0f} requests, {figures['rps']:.0f} req/s, "
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms "
        f"(max {figures['max_ms']:.0f} ms); {verdict} the p99 target of {target_ms:.0f} ms",
        flush=True,
    )


# -- the steps --------------------------------------------------------------------------------


def bench_aggregates(home: Path, clients: int, seconds: float) -> None:
    auth = token(home)
    server = Server(home)
    try:
        started = time.perf_counter()
        status, _ = server.request("GET", AGGREGATES, auth)
        print(f"first request (loads the frame): {time.perf_counter() - started:.2f} s, {status}")
        show_load(
            f"{clients} clients for {seconds:.0f} s",
            load(server.port, auth, clients, seconds),
            TARGET_P99_MS,
        )
    finally:
        server.stop()


def bench_upload(rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="api-bench-upload-") as folder:
        root = Path(folder)
        batch = root / "batch.csv"
        run(
            root,
            "synth",
            "--returnees",
            str(round(rows / ROWS_PER_RETURNEE)),
            "--rounds",
            "3",
            "--out",
            str(batch),
        )
        size_mb = batch.stat().st_size / 2**20
        cli_home, api_home = root / "cli", root / "api"
        started = time.perf_counter()
        done = run(cli_home, "ingest", str(batch), "--json")
        cli_s = time.perf_counter() - started
        received = json.loads(done.stdout)["received"]
        api_home.mkdir()
        auth = token(api_home)
        server = Server(api_home)
        try:
            boundary = secrets.token_hex(16)
            body = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="batch.csv"\r\nContent-Type: text/csv\r\n\r\n'
                ).encode()
                + batch.read_bytes()
                + f"\r\n--{boundary}--\r\n".encode()
            )
            started = time.perf_counter()
            status, answer = server.request(
                "POST",
                "/api/v1/batches?wait=600",
                auth,
                body,
                **{"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            api_s = time.perf_counter() - started
        finally:
            server.stop()
        if status != 201:
            raise SystemExit(f"upload answered {status}: {answer[:500]!r}")
        accepted = json.loads(answer)["accepted"]
        print(
            f"upload of {received} rows ({size_mb:.0f} MB): CLI ingest {cli_s:.1f} s, "
            f"API POST /batches?wait {api_s:.1f} s ({accepted} accepted); "
            f"ratio API/CLI {api_s / cli_s:.2f}",
            flush=True,
        )


def bench_training(home: Path, clients: int, seconds: float) -> None:
    auth = token(home)
    server = Server(home)
    try:
        server.request("GET", AGGREGATES, auth)  # warm: the frame is loaded before the job
        status, answer = server.request(
            "POST", "/api/v1/models/risk/train", auth, b"{}", **{"Content-Type": "application/json"}
        )
        if status != 202:
            raise SystemExit(f"training answered {status}: {answer[:500]!r}")
        job_id = json.loads(answer)["job_id"]
        time.sleep(1.0)
        figures = load(server.port, auth, clients, seconds)
        _, job = server.request("GET", f"/api/v1/jobs/{job_id}", auth)
        state = json.loads(job)
        if state["status"] in ("queued", "running") and state.get("pid"):
            # The worker is this benchmark's own process: it is not left training on.
            os.kill(int(state["pid"]), signal.SIGTERM)
        show_load(
            f"{clients} clients for {seconds:.0f} s while training (job {state['status']} at the "
            f"end, progress {state.get('progress', 0):.2f})",
            figures,
            TARGET_P99_TRAINING_MS,
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--home", type=Path, default=Path(tempfile.gettempdir()) / "reintegration-api-bench"
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--upload-rows", type=int, default=100_000)
    parser.add_argument("--skip-upload", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    scores = ensure_big_store(args.home)
    print(f"store: {args.home} with {scores} stored scores (SQLite)", flush=True)
    bench_aggregates(args.home, args.clients, args.seconds)
    if not args.skip_upload:
        bench_upload(args.upload_rows)
    if not args.skip_training:
        bench_training(args.home, args.clients, args.seconds)


if __name__ == "__main__":
    main()
