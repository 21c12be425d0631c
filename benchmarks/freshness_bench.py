"""How soon a batch stored by the CLI counts in a running server's answers (issue 14).

    .venv/bin/python benchmarks/freshness_bench.py [--home /tmp/h10-freshness-bench] \
        [--template /tmp/reintegration-protection-bench] [--rows 1000] [--batches 3] [--seed 7]

1. **Store**: ``--home`` gets a copy of ``--template``'s store (about a million scored
   interviews, built by ``benchmarks/protection_bench.py``; read only, copied once) and its
   secret key; the server brings it to the newest migration.
2. **Server**: ``reintegration serve`` on that home; one ``/api/v1/aggregates?by=round``
   loads the frame (its time is the first full read).
3. **Batches** (``--batches``, each after the last):
   ``reintegration synth --returnees ROWS --rounds 1`` (new interviews, some of returnees
   already stored: their case numbers recur), stored by ``reintegration ingest`` in
   another process while a client asks ``/api/v1/aggregates?by=round`` every 20 ms (the
   server's answer cache keys on the data version, so each new version is computed anew).
   Reported: the time from the batch's commit (when another reader first sees its data
   version; also from the CLI's exit) to the first answer that counts the batch's interviews
   (its total returnee-rounds, scored or not, grew by the rows accepted), and the slowest
   answer meanwhile. Goal: 2 s. Then the time of a question not asked before on the updated
   frame: what the answer itself costs, apart from applying the batch (the server logs that).
4. **Baseline, same run**: a write that calls for a full reload (a data version bumped as a
   rescoring does) and the time until an answer reflects it (``data_version``), with the
   slowest answer meanwhile (answers come from the previous frame while it reloads).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from api_bench import Server, run, token  # noqa: E402

QUESTION = "/api/v1/aggregates?by=round"
GOAL_S = 2.0
POLL_S = 0.02


def prepare(home: Path, template: Path) -> None:
    """Copy the template's store into ``home`` once (never writing into the template)."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "reintegration.db").exists():
        print(f"copying {template} to {home} (once)", flush=True)
        # SQLite's backup API, not a file copy: the template may be open in another process.
        source = sqlite3.connect(f"file:{template / 'reintegration.db'}?mode=ro", uri=True)
        target = sqlite3.connect(home / "reintegration.db")
        with target:
            source.backup(target)
        source.close()
        target.close()
        shutil.copyfile(template / "secret.key", home / "secret.key")
        (home / "secret.key").chmod(0o600)


def ask(server: Server, auth: str) -> tuple[dict, float]:
    """The answer (with ``surveys``: its total returnee-rounds, scored or not) and its time."""
    started = time.perf_counter()
    status, body = server.request("GET", QUESTION, auth)
    took = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"{QUESTION} answered {status}: {body[:300]!r}")
    answer = json.loads(body)
    total = answer["cells"][-1]
    answer["surveys"] = (total["returnees"] or 0) + (total["unscored"] or 0)
    return answer, took


class Poller:
    """Asks the overview every POLL_S seconds from a thread, noting each answer's time."""

    def __init__(self, server: Server, auth: str) -> None:
        self.server, self.auth = server, auth
        self.answers: list[tuple[float, dict, float]] = []  # (clock at the answer, body, took)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            body, took = ask(self.server, self.auth)
            self.answers.append((time.perf_counter(), body, took))
            time.sleep(POLL_S)

    def first(self, after: float, test) -> tuple[float, dict] | None:
        for clock, body, _ in list(self.answers):
            if clock >= after and test(body):
                return clock, body
        return None

    def took(self, clock: float) -> float:
        """How long the answer received at ``clock`` took."""
        return next(t for c, _, t in self.answers if c == clock)

    def slowest(self, after: float) -> float:
        return max((took for clock, _, took in self.answers if clock >= after), default=0.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def wait_for(poller: Poller, after: float, test, timeout: float) -> tuple[float, dict]:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        found = poller.first(after, test)
        if found is not None:
            return found
        time.sleep(0.01)
    raise SystemExit(f"no answer reflected the change within {timeout:.0f} s")


class VersionWatch:
    """Reads the store's data version every 5 ms from a thread: when a commit became visible."""

    def __init__(self, home: Path) -> None:
        import sqlite3

        self._conn = sqlite3.connect(home / "reintegration.db", check_same_thread=False)
        self.changes: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = None
        while not self._stop.is_set():
            (version,) = self._conn.execute("SELECT version FROM data_version").fetchone()
            if version != last:
                self.changes.append((time.perf_counter(), int(version)))
                last = version
            time.sleep(0.005)

    def seen(self, version: int) -> float:
        return min(clock for clock, v in self.changes if v >= version)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._conn.close()


def store_batch(
    home: Path, server: Server, poller: Poller, watch: VersionWatch, auth: str, rows: int, seed: int
) -> float:
    """One batch by the CLI; the seconds from its commit to the first answer counting it."""
    batch = home / f"batch-{seed}.csv"
    run(
        home,
        "synth",
        "--returnees",
        str(rows),
        "--rounds",
        "1",
        "--seed",
        str(seed),
        "--out",
        str(batch),
    )
    before, _ = ask(server, auth)
    try:
        clock = time.perf_counter()
        done = run(home, "ingest", str(batch), "--uploader", "bench", "--json")
        stored = time.perf_counter()
    finally:
        batch.unlink(missing_ok=True)
    accepted = int(json.loads(done.stdout)["accepted"])
    goal = before["surveys"] + accepted
    seen, body = wait_for(poller, clock, lambda b: b["surveys"] == goal, 60)
    committed = watch.seen(before["data_version"] + 1)
    fresh_s = seen - committed
    took = poller.took(seen)
    applied = _applied(server, time.time() - (time.perf_counter() - committed), body)
    print(
        f"batch of {rows} rows ({accepted} accepted; CLI {stored - clock:.1f} s) counted by "
        f"the server {fresh_s:.2f} s after its commit ({seen - stored:+.2f} s from the CLI's "
        f"exit; goal {GOAL_S:.0f} s: {'met' if fresh_s <= GOAL_S else 'MISSED'}); surveys "
        f"{before['surveys']:,} -> {body['surveys']:,}; slowest answer meanwhile "
        f"{poller.slowest(committed) * 1000:.0f} ms; the answer that counted it took "
        f"{took:.2f} s; {applied}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return fresh_s


def _applied(server: Server, commit_wall: float, body: dict) -> str:
    """When the server finished applying the batch (its log line), from the commit."""
    pattern = re.compile(
        r"^(\S+ \S+) INFO reintegration\.frame_cache: analytics frame: data version \d+ -> "
        r"(\d+) applied in ([0-9.]+) s"
    )
    for line in Path(server.log.name).read_text().splitlines():
        found = pattern.match(line)
        if found and int(found.group(2)) == body["data_version"]:
            stamp = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            return (
                f"applied in {float(found.group(3)):.2f} s, done {stamp - commit_wall:+.2f} s "
                "after the commit (server log)"
            )
    return "no update line in the server log"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/h10-freshness-bench"))
    parser.add_argument(
        "--template", type=Path, default=Path("/tmp/reintegration-protection-bench")
    )
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    args = parser.parse_args()
    home = args.home.resolve()
    prepare(home, args.template)
    auth = token(home, "analyst")
    print("starting the server", flush=True)
    server = Server(home)
    try:
        started = time.perf_counter()
        before, _ = ask(server, auth)
        print(
            f"first full read (server start, first answer): {time.perf_counter() - started:.1f} s;"
            f" {before['surveys']:,} surveys, data version {before.get('data_version')}",
            flush=True,
        )
        poller = Poller(server, auth)
        watch = VersionWatch(home)
        time.sleep(1)
        times = [
            store_batch(home, server, poller, watch, auth, args.rows, args.seed + i)
            for i in range(args.batches)
        ]
        print(
            f"commit to answer over {len(times)} batches: median "
            f"{sorted(times)[len(times) // 2]:.2f} s, max {max(times):.2f} s",
            flush=True,
        )
        # What the answer itself costs on the updated frame (a question not asked before).
        costs = []
        for sex in ("female", "male", "other"):
            started = time.perf_counter()
            status, _ = server.request("GET", f"{QUESTION}&sex={sex}", auth)
            costs.append(time.perf_counter() - started)
        print(
            f"a new question on the updated frame (no update to apply) takes "
            f"{sorted(costs)[1] * 1000:.0f} ms (median of 3): the answer's own share of the time",
            flush=True,
        )

        # The baseline: a full reload, in the same run.
        import sqlalchemy as sa

        from reintegration.store.data_version import bump_data_version, read_data_version

        engine = sa.create_engine(f"sqlite:///{home / 'reintegration.db'}")
        with engine.begin() as conn:
            bump_data_version(conn)  # "other", as a rescoring: the frame is read whole again
            version = read_data_version(conn)
        engine.dispose()
        bumped = time.perf_counter()
        seen, body = wait_for(poller, bumped, lambda b: b["data_version"] >= version, 300)
        print(
            f"full reload (baseline): reflected {seen - bumped:.2f} s after the write; slowest "
            f"answer meanwhile {poller.slowest(bumped) * 1000:.0f} ms (from the previous "
            "frame)",
            flush=True,
        )
        poller.stop()
        watch.stop()
        for line in Path(server.log.name).read_text().splitlines():
            if "analytics frame" in line or "Traceback" in line or "ERROR" in line:
                print("server log:", line)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
