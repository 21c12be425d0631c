"""Growth table (issue 14): time per question and memory of a server on PostgreSQL stores of
1M, 3M (and 10M where the machine allows) scored interviews.

    createdb -h 127.0.0.1 -U postgres h7_growth
    nice .venv/bin/python benchmarks/growth_bench.py --home /tmp/h7-growth \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/h7_growth --sizes 1,3

1. **Store**: one database grows chunk by chunk; a chunk is ``reintegration synth
   --returnees 400000 --rounds 3 --seed K`` (about 1.03M interviews) stored by ``reintegration
   ingest`` (the product's own path: validation, scoring, pseudonymisation, COPY into
   PostgreSQL), so the stored rows are exactly what ingest stores. Chunks after the first get
   their case numbers prefixed (``G2-``, ``G3-``...): otherwise two seeds reuse the same
   ``country-year-serial`` numbers and a chunk would add rounds to stored returnees instead of
   new returnees. The chunks stored are noted in ``--home``/chunks.json, so a run resumes a
   larger size from a smaller one (1M, then two more chunks for 3M, ...).
2. **Each size** (``--sizes`` in millions of chunks, ascending): ``reintegration serve`` on
   that database; the warm-up (three requests, the first loads the analytics frame: the frame
   load time), the server's RSS after it; then 1 client asking the repeated query
   (``/aggregates?by=sex,age_group,return_type``) for ``--seconds``, then ``--questions`` new
   questions asked once each, one after another (``benchmarks/api_bench.py``'s mixed-filter
   generator, same seed: the same questions at every size); p50, p90, max and the peak RSS of
   the whole run (``VmHWM``: the frame load's peak or the questions'). Each line carries the
   load average (the machine is shared) and the git commit measured.

Measured on 5 December 2026 (2 shared cores, other sessions' tests running; 40 questions,
seed 0; the 1M store is chunk 1 of the 3M one, filled again in a database of its own; both
commits answer from the cube):

| scores | commit | frame | RSS warm / peak | repeated p50/p99 | new p50 / p90 / max | load |
|---|---|---|---|---|---|---|
| 1,028,365 | ce9bea7 | 26 s | 941 / 1,347 MB | 1.0 / 32 ms | 411 / 1,839 / 6,729 ms | 9.9 |
| 3,086,535 | 98bc3cc | 130 s | 2,229 / 3,763 MB | 1.3 / 33 ms | 567 / 5,998 / 29,552 ms | 12.3 |

Before the cube (5f23418, 1M, a 20 s window of about 20 questions): new question p50 806 ms,
p99 4,015 ms, RSS 861 / 1,345 MB, load 8.8. The slow tail at both sizes is the questions
asked while the cubes of the new frame are built in the background (answered from the records
meanwhile). 10M was not run: ingest slowed to 627 s per chunk (load 16) and the server would
need about 6 GB warm and 10 GB at peak (linear from 1M and 3M) on a shared 23 GB machine.

Only the standard library, NumPy and SQLAlchemy are imported here; the server and the commands
are child processes (``api_bench``'s).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import api_bench  # noqa: E402

RETURNEES_PER_CHUNK = 400_000  # three rounds with attrition: about 1.03M interviews


def _commit() -> str:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h %cd", "--date=format:%H:%M"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def _prefixed(source: Path, target: Path, prefix: str) -> None:
    """``source`` with every case number prefixed, other fields written back as they were read."""
    csv.field_size_limit(1 << 24)
    with source.open(newline="") as inp, target.open("w", newline="") as out:
        reader, writer = csv.reader(inp), csv.writer(out, lineterminator="\n")
        header = next(reader)
        writer.writerow(header)
        at = header.index("returnee_id")
        for row in reader:
            if row[at]:
                row[at] = prefix + row[at]
            writer.writerow(row)


def _database_mb(url: str) -> float:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    finally:
        engine.dispose()
    return float(size or 0) / 2**20


def fill(home: Path, url: str, chunks: int, returnees: int) -> None:
    """Store chunks until ``chunks`` are in the database (resuming from chunks.json)."""
    ledger = home / "chunks.json"
    stored: list[dict[str, float]] = json.loads(ledger.read_text()) if ledger.exists() else []
    while len(stored) < chunks:
        k = len(stored) + 1
        raw, panel = home / f"chunk-{k}.raw.csv", home / f"chunk-{k}.csv"
        started = time.perf_counter()
        api_bench.run(
            home,
            "synth",
            "--returnees",
            str(returnees),
            "--rounds",
            "3",
            "--seed",
            str(k),
            "--out",
            str(raw),
        )
        if k == 1:
            raw.rename(panel)
        else:
            _prefixed(raw, panel, f"G{k}-")
            raw.unlink()
        synth_s = time.perf_counter() - started
        started = time.perf_counter()
        done = api_bench.run(home, "ingest", str(panel), "--uploader", "growth", "--json")
        ingest_s = time.perf_counter() - started
        panel.unlink(missing_ok=True)
        for extra in home.glob(f"chunk-{k}*.truth.json"):
            extra.unlink()
        report = json.loads(done.stdout)
        stored.append(
            {"chunk": k, "accepted": report["accepted"], "synth_s": synth_s, "ingest_s": ingest_s}
        )
        ledger.write_text(json.dumps(stored, indent=1))
        print(
            f"chunk {k}: {report['accepted']:,} accepted; synth {synth_s:.0f} s, ingest "
            f"{ingest_s:.0f} s; store {api_bench.stored_scores(home):,} scores, "
            f"{_database_mb(url):,.0f} MB; {api_bench._load_average()}",
            flush=True,
        )


def _questions(server: api_bench.Server, requests: list[tuple[str, bytes]]) -> dict[str, float]:
    """Each question asked once, one after another (1 client): the time of each, by kind.

    A fixed number of questions rather than a fixed time: at 3M a new question can take
    seconds on a busy machine, and a 20 s window held two of them."""
    times: dict[str, list[float]] = {"aggregates": [], "overview": []}
    for kind, request in requests:
        head = request.decode().split("\r\n")
        path = head[0].split(" ")[1]
        auth = next(h for h in head if h.startswith("Authorization:")).split(" ")[-1]
        started = time.perf_counter()
        status, body = server.request("GET", path, auth)
        if status != 200:
            raise SystemExit(f"{path} answered {status}: {body[:300]!r}")
        times[kind].append((time.perf_counter() - started) * 1000)
    every = np.array(times["aggregates"] + times["overview"])
    return {
        "questions": float(len(every)),
        "rps": len(every) / (every.sum() / 1000),
        "p50_ms": float(np.percentile(every, 50)),
        "p90_ms": float(np.percentile(every, 90)),
        "max_ms": float(every.max()),
        **{
            f"{kind}_p50_ms": float(np.percentile(t, 50)) if t else float("nan")
            for kind, t in times.items()
        },
    }


def measure(home: Path, url: str, seconds: float, seed: int, questions: int) -> dict[str, float]:
    tokens = {role: api_bench.token(home, role) for role in ("analyst", "manager", "admin")}
    values = api_bench._store_values(home)
    requests = api_bench.draw_mixed(values, tokens, int(seconds * 50) + 500, seed)
    started = time.perf_counter()
    server = api_bench.Server(home)
    start_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        path = api_bench.AGGREGATES
        status, _ = server.request("GET", path, tokens["analyst"])
        frame_s = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"warm-up {path} answered {status}")
        for path in (api_bench.AGGREGATES + "&protected=true", "/api/v1/overview"):
            status, _ = server.request("GET", path, tokens["analyst"])
            if status != 200:
                raise SystemExit(f"warm-up {path} answered {status}")
        warm_mb = server.memory_mb("VmRSS")
        repeated = api_bench.load(server.port, tokens["admin"], 1, seconds)
        mixed = _questions(server, requests[:questions])
        peak_mb = server.memory_mb("VmHWM")
    finally:
        server.stop()
    return {
        "scores": api_bench.stored_scores(home),
        "database_mb": _database_mb(url),
        "start_s": start_s,
        "frame_s": frame_s,
        "warm_mb": warm_mb,
        "peak_mb": peak_mb,
        "repeated_p50": repeated["p50_ms"],
        "repeated_p99": repeated["p99_ms"],
        "mixed_questions": mixed["questions"],
        "mixed_rps": mixed["rps"],
        "mixed_p50": mixed["p50_ms"],
        "mixed_p90": mixed["p90_ms"],
        "mixed_max": mixed["max_ms"],
        "aggregates_p50": mixed.get("aggregates_p50_ms", float("nan")),
        "overview_p50": mixed.get("overview_p50_ms", float("nan")),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/h7-growth"))
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database of its own")
    parser.add_argument("--sizes", default="1,3", help="chunks of ~1.03M interviews, ascending")
    parser.add_argument("--seconds", type=float, default=20.0, help="of the repeated query")
    parser.add_argument("--questions", type=int, default=40, help="new questions asked once each")
    parser.add_argument("--seed", type=int, default=0, help="of the mixed questions")
    parser.add_argument(
        "--returnees", type=int, default=RETURNEES_PER_CHUNK, help="per chunk (smaller: a trial)"
    )
    args = parser.parse_args()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    api_bench.DATABASE_URL = args.database_url
    api_bench.BIG_HOME[0] = home
    sizes = sorted(int(s) for s in args.sizes.split(","))
    commit = _commit()
    print(f"commit {commit}; {os.cpu_count()} CPUs; {api_bench._load_average()}", flush=True)
    rows = []
    for size in sizes:
        fill(home, args.database_url, size, args.returnees)
        figures = measure(home, args.database_url, args.seconds, args.seed, args.questions)
        rows.append(figures)
        print(json.dumps({"size": size, "commit": commit, **figures}), flush=True)
    print(
        "\n| scores | database | frame load | RSS warm | RSS peak | repeated p50 / p99 | "
        "new question p50 / p90 / max | aggregates / overview p50 | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for f in rows:
        print(
            f"| {f['scores']:,} | {f['database_mb'] / 1024:.1f} GB | {f['frame_s']:.1f} s | "
            f"{f['warm_mb']:,.0f} MB | {f['peak_mb']:,.0f} MB | {f['repeated_p50']:.1f} / "
            f"{f['repeated_p99']:.1f} ms | {f['mixed_p50']:.0f} / {f['mixed_p90']:.0f} / "
            f"{f['mixed_max']:.0f} ms | "
            f"{f['aggregates_p50']:.0f} / {f['overview_p50']:.0f} ms | {f['load']:.1f} |"
        )
    print(f"commit {commit}")


if __name__ == "__main__":
    main()
