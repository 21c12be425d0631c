"""Measure what a generated hostile set costs a live server: memory, liveness, stored data.

    .venv/bin/python benchmarks/hostile_bench.py [--only CASE ...] [--keep] [--work DIR] \
        [--timeout 300] [--abort-mb 4000]

1. **Server**: a fresh ``REINTEGRATION_HOME`` in a temporary folder (or ``--work``) holds a
   small synthetic panel (``reintegration synth --returnees 200 --rounds 2`` then
   ``reintegration ingest``, with ``--consent-recorded-elsewhere`` when the command has it), an
   enumerator and an admin token (``reintegration users add``); ``reintegration serve`` runs on
   a free port of 127.0.0.1.
2. **Idle baseline**: each case gets a new server on that home (so a case is measured from
   an idle server and not from what the one before left behind); after one warm-up request,
   its resident memory (VmRSS from ``/proc``, summed over its process tree) is sampled every
   50 ms for 3 s, and ``/healthz`` is asked 30 times: the idle RSS (median) and the idle
   ``/healthz`` latency (median and max).
3. **Cases**, one at a time (generated once into the work folder; ``--only`` picks some):

   - ``control``: a legitimate 50-row CSV upload; it must be stored (proves the counts move
     when they should).
   - ``bomb10``, ``bomb100``, ``bomb1000``: XLSX workbooks whose worksheet unpacks about 10,
     100 and 1,000 times its packed size (400 MB, 1 GB, 1 GB unpacked).
   - ``rows1m``: 1,000,000 rows x 40 cells, ratio about 93 (34 MB packed, 3.1 GB unpacked;
     the issue's was 37.9 MB and 3.5 GB), rows shaped like real interviews whose consent is
     ``no`` (nothing of them may be stored).
   - ``score60_anon`` and ``score60_token``: a 60 MB JSON body to ``POST /api/v1/score``
     without a token and with the enumerator's.
   - ``dash60_anon``: the same 60 MB to the Dash callback endpoint, without a session.
   - ``nested_jsonl`` and ``nested_score``: one JSON line nested 100,000 deep, as an upload
     and inside a ``/score`` record.
   - ``cells1mb``: a CSV of 20 new interviews, each with a 1 MB ``admin1`` cell.
   - ``truncated``: a multipart upload of 100 new interviews cut in the middle of the file,
     without its closing boundary.

   Uploads go to ``POST /api/v1/batches?wait=60`` (field ``file``) with the enumerator token;
   a batch still processing when the answer comes is followed in the store until it ends or
   the case's time runs out (then reported as still processing). During each
   case a thread asks ``/healthz`` every 100 ms (latency of each; one still unanswered counts
   from when it was sent) and another samples RSS every 50 ms.
4. **Report**: per case the HTTP status (or what the connection did instead), seconds, the
   idle RSS, the peak RSS growth over it (MB) and peak/idle as a ratio, the growth still held
   1 s after the case, the largest ``/healthz`` latency and its ratio to the idle median, and
   whether the stored counts (returnees, submissions, scores, batches that stored rows; read
   from the SQLite store opened read-only; rows kept for the fixable file shown apart) are
   unchanged; ``control`` is expected to add its rows. Verdict per case: RSS growth under
   500 MB, ``/healthz`` under 1 s, stored data unchanged, no 5xx and an HTTP answer.

Safety: only 127.0.0.1; every loop is bounded in count and time (``--timeout`` per case); if
the server grows past ``--abort-mb`` over its baseline it is killed (the case is reported as
such); the next case has a new server anyway. The exit status is 0 unless a server could not
be started: this is a measurement, not a test.

Only the standard library is imported here; the server and the commands are child processes.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

COMMAND = Path(sys.executable).with_name("reintegration")
MB = 2**20
LIMIT_RSS_MB = 500.0
LIMIT_HEALTHZ_S = 1.0
HEALTHZ_EVERY_S = 0.1
RSS_EVERY_S = 0.05
HEALTHZ_TIMEOUT_S = 30.0
NEST_DEPTH = 100_000
SCORE_BODY_MB = 60
CELL_MB = 1
NOTE_CHARS = 160
UPLOAD_WAIT_S = 60

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships '
        f'xmlns="{PKG_REL_NS}"><Relationship Id="rId1" Type="{REL_NS}/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{MAIN_NS}" '
        f'xmlns:r="{REL_NS}"><sheets><sheet name="data" sheetId="1" r:id="rId1"/></sheets>'
        "</workbook>"
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships '
        f'xmlns="{PKG_REL_NS}"><Relationship Id="rId1" Type="{REL_NS}/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>'
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REINTEGRATION_")}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(REINTEGRATION_HOME=str(home), MLFLOW_DISABLE_TELEMETRY="true")
    return env


def run(home: Path, *args: str, ok: tuple[int, ...] = (0, 1)) -> str:
    done = subprocess.run(
        [str(COMMAND), *args],
        env=env_for(home),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode not in ok:
        raise SystemExit(f"reintegration {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


# -- the server and what it costs ----------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ')'.
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_mb(root: int) -> float:
    total_kb = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
                        break
        except OSError:
            continue
    return total_kb / 1024


class Server:
    """``reintegration serve`` in a child process, until stopped."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.log_path = home / f"server-{self.port}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(COMMAND), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env_for(home),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.close()
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"the server stopped at start; its log ends:\n{tail}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("the server did not answer /healthz within 120 s")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.log.close()


def healthz_once(port: int) -> float | None:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/healthz", timeout=HEALTHZ_TIMEOUT_S
        ) as answer:
            answer.read()
    except (OSError, http.client.HTTPException):
        return None
    return time.perf_counter() - started


@dataclass
class Watch:
    """RSS every 50 ms and /healthz every 100 ms, in two threads, while a case runs."""

    server: Server
    abort_mb: float
    baseline_mb: float
    peak_mb: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    aborted: bool = False
    _asked_at: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Watch:
        self._threads = [
            threading.Thread(target=self._rss, daemon=True),
            threading.Thread(target=self._healthz, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(HEALTHZ_TIMEOUT_S + 5)

    def _rss(self) -> None:
        while not self._stop.is_set() and self.server.alive:
            mb = rss_mb(self.server.process.pid)
            self.peak_mb = max(self.peak_mb, mb)
            if mb - self.baseline_mb > self.abort_mb:
                # Past this the machine, not the server, is at risk: stop the measurement.
                self.aborted = True
                self.server.process.kill()
                return
            self._stop.wait(RSS_EVERY_S)

    def _healthz(self) -> None:
        while not self._stop.is_set() and self.server.alive:
            self._asked_at = time.perf_counter()
            latency = healthz_once(self.server.port)
            self._asked_at = None
            if latency is None:
                self.failures += 1
                self.latencies.append(HEALTHZ_TIMEOUT_S)
            else:
                self.latencies.append(latency)
            self._stop.wait(HEALTHZ_EVERY_S)

    @property
    def max_latency(self) -> float:
        pending = time.perf_counter() - self._asked_at if self._asked_at is not None else 0.0
        return max([*self.latencies, pending, 0.0])


def idle_baseline(server: Server, seconds: float = 3.0) -> tuple[float, float, float]:
    """Idle RSS (median MB), idle /healthz latency (median and max seconds)."""
    samples = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        samples.append(rss_mb(server.process.pid))
        time.sleep(RSS_EVERY_S)
    latencies = [healthz_once(server.port) for _ in range(30)]
    answered = [x for x in latencies if x is not None]
    if not answered:
        raise SystemExit("the idle server did not answer /healthz")
    return statistics.median(samples), statistics.median(answered), max(answered)


# -- stored counts ----------------------------------------------------------------------------

COUNT_QUERIES = {
    "returnees": "SELECT count(*) FROM returnee",
    "submissions": "SELECT count(*) FROM submission",
    "scores": "SELECT count(*) FROM score",
    # Batches that stored rows: a refused upload may leave a failed batch record, not this.
    "batches": "SELECT count(*) FROM batch WHERE status = 'done' AND accepted + updated > 0",
    # Rows kept for the fixable file: shown, but not counted as stored data.
    "rejected": "SELECT count(*) FROM rejected_row",
}


def stored_counts(home: Path) -> dict[str, int]:
    if not (home / "reintegration.db").exists():
        return dict.fromkeys(COUNT_QUERIES, 0)
    uri = f"file:{home / 'reintegration.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=30) as conn:
        return {k: int(conn.execute(q).fetchone()[0]) for k, q in COUNT_QUERIES.items()}


def batch_statuses(home: Path) -> dict[str, str]:
    if not (home / "reintegration.db").exists():
        return {}
    uri = f"file:{home / 'reintegration.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=30) as conn:
        return dict(conn.execute("SELECT id, status FROM batch").fetchall())


# -- the hostile set ----------------------------------------------------------------------


def column_letters(n: int) -> str:
    letters = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_xlsx(path: Path, rows: Iterator[str], header: list[str], level: int = 6) -> None:
    """A workbook of one sheet; ``rows`` yields the XML of each data row, streamed to the zip."""
    head = "".join(
        f'<c r="{column_letters(i)}1" t="inlineStr"><is><t>{xml_text(h)}</t></is></c>'
        for i, h in enumerate(header)
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, text in XLSX_PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet '
                f'xmlns="{MAIN_NS}"><sheetData><row r="1">{head}</row>'.encode()
            )
            buffer: list[str] = []
            size = 0
            for row in rows:
                buffer.append(row)
                size += len(row)
                if size > MB:
                    sheet.write("".join(buffer).encode())
                    buffer, size = [], 0
            sheet.write(("".join(buffer) + "</sheetData></worksheet>").encode())


def row_template(values: list[str], refs: bool) -> str:
    """A row's XML with ``\\0`` where its number goes (replaced per row: fast)."""
    if not refs:
        cells = "".join(f'<c t="inlineStr"><is><t>{xml_text(v)}</t></is></c>' for v in values)
        return f"<row>{cells}</row>"
    cells = "".join(
        f'<c r="{column_letters(i)}\0" t="inlineStr"><is><t>{xml_text(v)}</t></is></c>'
        for i, v in enumerate(values)
    )
    return f'<row r="\0">{cells}</row>'


@dataclass
class Panel:
    """Rows of a synthetic panel to shape hostile rows after (never the stored ones)."""

    header: list[str]
    rows: list[list[str]]

    def fresh(self, n: int, tag: int) -> list[list[str]]:
        """``n`` rows with new submission ids and returnee ids no stored row has."""
        out = []
        ids = self.header.index("returnee_id"), self.header.index("submission_id")
        country = self.header.index("country")
        for k in range(n):
            row = list(self.rows[k % len(self.rows)])
            row[ids[0]] = f"{row[country]}-2099-{tag:02d}{k:04d}"
            row[ids[1]] = str(uuid.uuid4())
            out.append(row)
        return out


def load_panel(work: Path) -> Panel:
    path = work / "shapes.csv"
    if not path.exists():
        run(work, "synth", "--returnees", "300", "--rounds", "1", "--seed", "7", "--out", str(path))
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return Panel(header, list(reader))


FILLER = "no specific reason given by the respondent at this time " * 40


def interview_rows(panel: Panel, count: int, random_hex: int) -> Iterator[str]:
    """``count`` rows shaped like interviews whose consent is ``no``, about 3.3 KB each.

    Two row shapes alternate (a long ``reason_to_leave`` takes a row to the size openpyxl's
    would have); each row's submission id ends in ``random_hex`` random hex digits, which is
    what sets the compression ratio (12: about 92, 9: about 98, 8: about 101).
    """
    consent = panel.header.index("consent")
    reason = panel.header.index("reason_to_leave")
    templates = []
    for k in range(2):
        row = list(panel.rows[k])
        row[consent] = "no"
        row[0] = "\1"
        row[reason] = FILLER[: 1500 + 40 * k]
        cells = "".join(f'<c t="inlineStr"><is><t>{xml_text(v)}</t></is></c>' for v in row)
        templates.append(f'<row r="\0">{cells}</row>')
    rng = random.Random(random_hex)
    bits = 4 * random_hex
    for n in range(2, count + 2):
        tail = f"{rng.getrandbits(bits):012x}"
        yield (
            templates[n & 1].replace("\0", str(n)).replace("\1", f"5f0c2d1e-8a4b-4c3d-9e2f-{tail}")
        )


def gen_bomb(path: Path, panel: Panel, ratio: int) -> None:
    """A workbook whose sheet unpacks about ``ratio`` times its packed size."""
    consent = panel.header.index("consent")
    if ratio >= 1000:
        # Deflate codes a run of one byte at about 1,000:1 and a repeated row only at ~170:1
        # (a match is at most 258 bytes and far distances cost extra bits): runs of the
        # whitespace XML allows between rows after each row (4 MB: about 950:1).
        row = list(panel.rows[0])
        row[consent] = "no"
        template = row_template(row, refs=False) + " " * (4 * MB)
        count = (1 << 30) // len(template)
        write_xlsx(path, (template for _ in range(count)), panel.header, level=9)
        return
    if ratio >= 100:
        write_xlsx(path, interview_rows(panel, (1 << 30) // 3300, 9), panel.header)
        return
    # Every cell drawn at random among the values its column takes, ids random: about 10:1.
    rng = random.Random(ratio)
    choices = [sorted({r[i] for r in panel.rows}) for i in range(len(panel.header))]
    unpacked = 40 * MB * ratio

    def rows() -> Iterator[str]:
        size, n = 0, 2
        while size < unpacked:
            values = [rng.choice(c) for c in choices]
            values[consent] = "no"
            values[0] = str(uuid.UUID(int=rng.getrandbits(128)))
            row = row_template(values, refs=True).replace("\0", str(n))
            size += len(row)
            n += 1
            yield row

    write_xlsx(path, rows(), panel.header)


def gen_rows1m(path: Path, panel: Panel) -> None:
    """1,000,000 rows x 40 cells at about 93:1 (the issue's: 37.9 MB, 3.5 GB unpacked)."""
    write_xlsx(path, interview_rows(panel, 1_000_000, 12), panel.header)


def gen_score_body(path: Path, panel: Panel) -> None:
    records = [dict(zip(panel.header, row, strict=True)) for row in panel.fresh(200, 90)]
    chunk = ",".join(json.dumps(r) for r in records)
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"records":[')
        written, first = 0, True
        while written < SCORE_BODY_MB * MB:
            fh.write(("" if first else ",") + chunk)
            written += len(chunk) + 1
            first = False
        fh.write("]}")


def gen_nested_jsonl(path: Path, panel: Panel) -> None:
    row = dict(zip(panel.header, panel.fresh(1, 91)[0], strict=True))
    row["consent"] = "yes"
    line = json.dumps(row)[:-1] + ', "admin1": ' + "[" * NEST_DEPTH + "]" * NEST_DEPTH + "}"
    path.write_text(line + "\n", encoding="utf-8")


def gen_nested_score(path: Path, panel: Panel) -> None:
    row = dict(zip(panel.header, panel.fresh(1, 92)[0], strict=True))
    record = json.dumps(row)[:-1] + ', "admin1": ' + "[" * NEST_DEPTH + "]" * NEST_DEPTH + "}"
    path.write_text('{"records":[' + record + "]}", encoding="utf-8")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def gen_cells(path: Path, panel: Panel) -> None:
    rows = panel.fresh(20, 93)
    admin1 = panel.header.index("admin1")
    for row in rows:
        row[admin1] = "A" * (CELL_MB * MB)
    write_csv(path, panel.header, rows)


def gen_csv(rows: int, tag: int) -> Callable[[Path, Panel], None]:
    def generate(path: Path, panel: Panel) -> None:
        write_csv(path, panel.header, panel.fresh(rows, tag))

    return generate


# -- the requests ----------------------------------------------------------------------------


def multipart(name: str, data: bytes, boundary: str, close: bool = True) -> bytes:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + (f"\r\n--{boundary}--\r\n".encode() if close else b"")


def send(
    port: int, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int | str, bytes]:
    """One request on its own connection; the status, or what went wrong instead.

    The body is written by a thread while this one waits for the answer: a server that
    answers before reading the whole body (413 at once) and closes is heard, not reported as a
    connection reset.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    sent: list[str] = []

    def write() -> None:
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            view = memoryview(body)
            for start in range(0, len(body), 1 << 16):
                sock.sendall(view[start : start + (1 << 16)])
        except OSError as exc:
            sent.append(type(exc).__name__)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, answer.read()
    except (OSError, http.client.HTTPException) as exc:
        return (sent[0] if sent else type(exc).__name__), b""
    finally:
        sock.close()
        writer.join(timeout)


@dataclass
class Case:
    name: str
    file_name: str
    generate: Callable[[Path, Panel], None]
    kind: str  # upload, truncated, score, dash
    token: str | None  # "enumerator" or None
    expect_stored: bool = False


CASES = [
    Case("control", "control.csv", gen_csv(50, 94), "upload", "enumerator", expect_stored=True),
    Case("bomb10", "bomb10.xlsx", lambda p, s: gen_bomb(p, s, 10), "upload", "enumerator"),
    Case("bomb100", "bomb100.xlsx", lambda p, s: gen_bomb(p, s, 100), "upload", "enumerator"),
    Case("bomb1000", "bomb1000.xlsx", lambda p, s: gen_bomb(p, s, 1000), "upload", "enumerator"),
    Case("rows1m", "rows1m.xlsx", gen_rows1m, "upload", "enumerator"),
    Case("score60_anon", "score60.json", gen_score_body, "score", None),
    Case("score60_token", "score60.json", gen_score_body, "score", "enumerator"),
    Case("dash60_anon", "score60.json", gen_score_body, "dash", None),
    Case("nested_jsonl", "nested.jsonl", gen_nested_jsonl, "upload", "enumerator"),
    Case("nested_score", "nested_score.json", gen_nested_score, "score", "enumerator"),
    Case("cells1mb", "cells1mb.csv", gen_cells, "upload", "enumerator"),
    Case("truncated", "truncated.csv", gen_csv(100, 95), "truncated", "enumerator"),
]


def packed_ratio(path: Path) -> str:
    if path.suffix != ".xlsx":
        return ""
    with zipfile.ZipFile(path) as archive:
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
    return (
        f", sheet {sheet.file_size / MB:,.0f} MB unpacked, "
        f"ratio {sheet.file_size / max(sheet.compress_size, 1):.0f}"
    )


@dataclass
class Result:
    case: str
    status: str
    seconds: float
    peak_growth_mb: float
    max_healthz_s: float
    healthz_failures: int
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    note: str = ""
    idle_mb: float = 0.0
    idle_healthz_s: float = 0.0
    retained_mb: float = 0.0

    @property
    def counts_changed(self) -> dict[str, int]:
        return {
            k: self.counts_after[k] - self.counts_before[k]
            for k in self.counts_before
            if self.counts_after[k] != self.counts_before[k]
        }


def follow_batch(server: Server, known: set[str], home: Path, timeout: float) -> str:
    """Wait for the batches this case made to leave ``processing``; their final statuses."""
    deadline = time.monotonic() + timeout
    while True:
        new = {k: v for k, v in batch_statuses(home).items() if k not in known}
        if all(v != "processing" for v in new.values()):
            return ",".join(sorted(new.values())) or "none"
        if time.monotonic() > deadline:
            return ",".join(sorted(new.values())) + " at the time limit"
        if not server.alive:
            return ",".join(sorted(new.values())) + " (server gone)"
        time.sleep(0.5)


def run_case(
    case: Case,
    path: Path,
    server: Server,
    tokens: dict[str, str],
    home: Path,
    baseline_mb: float,
    timeout: float,
    abort_mb: float,
) -> Result:
    headers: dict[str, str] = {}
    if case.token:
        headers["Authorization"] = f"Bearer {tokens[case.token]}"
    data = path.read_bytes()
    if case.kind in ("upload", "truncated"):
        boundary = uuid.uuid4().hex
        if case.kind == "truncated":
            body = multipart(path.name, data[: len(data) // 2], boundary, close=False)
        else:
            body = multipart(path.name, data, boundary)
        # The server answers 202 after ?wait seconds and the batch is then followed from the
        # store, so a slow batch is measured to the case's time limit, not cut by the socket's.
        target = f"/api/v1/batches?wait={int(min(UPLOAD_WAIT_S, timeout / 2))}"
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif case.kind == "score":
        body, target = data, "/api/v1/score"
        headers["Content-Type"] = "application/json"
    else:
        body, target = data, "/dashboard/_dash-update-component"
        headers["Content-Type"] = "application/json"
    del data
    before = stored_counts(home)
    known = set(batch_statuses(home))
    started = time.perf_counter()
    with Watch(server, abort_mb, baseline_mb) as watch:
        status, answer = send(server.port, "POST", target, body, headers, timeout)
        note = ""
        if case.kind in ("upload", "truncated") and server.alive:
            left = max(timeout - (time.perf_counter() - started), 1.0)
            note = "batch " + follow_batch(server, known, home, left)
        seconds = time.perf_counter() - started
    if isinstance(status, int) and status >= 400:
        try:
            problem = json.loads(answer)
            detail = str(problem.get("detail") or problem.get("title") or "")[:NOTE_CHARS]
        except (ValueError, AttributeError):
            detail = answer[:NOTE_CHARS].decode("utf-8", "replace")
        note = (note + "; " if note else "") + detail
    if watch.aborted:
        note = f"KILLED past {abort_mb:.0f} MB growth; " + note
    elif not server.alive:
        note = "SERVER DIED; " + note
    return Result(
        case.name,
        str(status),
        seconds,
        watch.peak_mb - baseline_mb,
        watch.max_latency,
        watch.failures,
        before,
        stored_counts(home),
        note.replace("\n", " "),
    )


def verdict(result: Result, case: Case) -> str:
    problems = []
    if result.peak_growth_mb >= LIMIT_RSS_MB:
        problems.append("RSS")
    if result.max_healthz_s >= LIMIT_HEALTHZ_S:
        problems.append("healthz")
    changed = result.counts_changed
    stored = {k: v for k, v in changed.items() if k != "rejected"}
    if case.expect_stored and not stored:
        problems.append("control not stored")
    if not case.expect_stored and stored:
        problems.append("stored data changed")
    if result.status.isdigit() and int(result.status) >= 500:
        problems.append(f"{result.status}")
    if not result.status.isdigit():
        problems.append("no HTTP answer")
    return "ok" if not problems else "FAILS: " + ", ".join(problems)


def start(home: Path, tokens: dict[str, str]) -> tuple[Server, float, float, float]:
    """A new server on ``home``, warmed up; its idle RSS and /healthz latency (median, max)."""
    server = Server(home)
    auth = {"Authorization": f"Bearer {tokens['admin']}"}
    send(server.port, "GET", "/api/v1/batches", b"", auth, 30)
    return (server, *idle_baseline(server))


def settled_mb(server: Server, seconds: float = 1.0) -> float:
    samples = []
    until = time.monotonic() + seconds
    while time.monotonic() < until and server.alive:
        samples.append(rss_mb(server.process.pid))
        time.sleep(RSS_EVERY_S)
    return statistics.median(samples) if samples else 0.0


def print_table(results: list[tuple[Case, Result]]) -> None:
    print(
        f"limits: peak RSS growth over the server's idle RSS < {LIMIT_RSS_MB:.0f} MB, "
        f"/healthz latency < {LIMIT_HEALTHZ_S:.0f} s; 'x idle' = peak RSS / idle RSS and "
        "max /healthz / idle median /healthz; 'kept' = RSS growth still held 1 s after"
    )
    head = (
        f"{'case':<14} {'status':>10} {'seconds':>8} {'idle MB':>7} {'+RSS MB':>8} "
        f"{'x idle':>6} {'kept MB':>7} {'/healthz s':>10} {'x idle':>7}  {'store':<26} verdict"
    )
    print(head)
    print("-" * len(head))
    for case, r in results:
        changed = r.counts_changed
        store = "unchanged" if not changed else " ".join(f"{k}{v:+d}" for k, v in changed.items())
        print(
            f"{r.case:<14} {r.status[:10]:>10} {r.seconds:>8.1f} {r.idle_mb:>7.0f} "
            f"{r.peak_growth_mb:>8.0f} {(r.idle_mb + r.peak_growth_mb) / r.idle_mb:>6.2f} "
            f"{r.retained_mb:>7.0f} {r.max_healthz_s:>10.3f} "
            f"{r.max_healthz_s / r.idle_healthz_s:>7.0f}  {store:<26} {verdict(r, case)}"
        )
    print()
    for _, r in results:
        if r.note:
            print(f"{r.case}: {r.note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", action="append", choices=[c.name for c in CASES], help="repeatable"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--work", type=Path, help="work folder (generated files are reused)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case")
    parser.add_argument("--abort-mb", type=float, default=4000.0, help="kill the server past this")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]

    work = args.work or Path(tempfile.mkdtemp(prefix="hostile-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    server: Server | None = None
    try:
        panel = load_panel(work)
        print(f"work folder {work}; the hostile set:", flush=True)
        for case in cases:
            path = work / case.file_name
            started = time.perf_counter()
            if not path.exists():
                case.generate(path, panel)
            print(
                f"  {case.file_name}: {path.stat().st_size / MB:,.1f} MB"
                f"{packed_ratio(path)} ({time.perf_counter() - started:.0f} s to make)",
                flush=True,
            )

        stored = home / "panel.csv"
        run(home, "synth", "--returnees", "200", "--rounds", "2", "--out", str(stored))
        ingest = [str(stored), "--uploader", "bench"]
        if "--consent-recorded-elsewhere" in run(home, "ingest", "--help", ok=(0,)):
            ingest.append("--consent-recorded-elsewhere")
        run(home, "ingest", *ingest)
        print(f"store: {stored_counts(home)}", flush=True)
        if not stored_counts(home)["submissions"]:
            print("WARNING: the panel was not stored; the store starts empty", flush=True)
        tokens = {
            role: run(home, "users", "add", f"bench-{role}", "--role", role).strip()
            for role in ("enumerator", "admin")
        }

        results: list[tuple[Case, Result]] = []
        for case in cases:
            # A new server for each case, so each is measured from an idle server's own
            # baseline and not from what the case before left behind.
            server, idle_mb, idle_hz, idle_hz_max = start(home, tokens)
            print(
                f"case {case.name}: server on 127.0.0.1:{server.port}, idle RSS {idle_mb:.0f} MB,"
                f" idle /healthz {idle_hz * 1000:.1f} ms (max {idle_hz_max * 1000:.1f} ms)",
                flush=True,
            )
            result = run_case(
                case,
                work / case.file_name,
                server,
                tokens,
                home,
                idle_mb,
                args.timeout,
                args.abort_mb,
            )
            result.idle_mb, result.idle_healthz_s = idle_mb, idle_hz
            result.retained_mb = max(settled_mb(server) - idle_mb, 0.0) if server.alive else 0.0
            server.stop()
            server = None
            results.append((case, result))
            print(
                f"  {result.status} in {result.seconds:.1f} s, +{result.peak_growth_mb:.0f} MB, "
                f"/healthz max {result.max_healthz_s:.2f} s; {verdict(result, case)}"
                f"{'; ' + result.note if result.note else ''}",
                flush=True,
            )
        print()
        print_table(results)
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        elif args.work:
            shutil.rmtree(home, ignore_errors=True)  # the generated files stay for next time
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
