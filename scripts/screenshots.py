"""Screenshots of the dashboard's main pages, from the real app, for the README.

Either shoot a server that is already running (the demo prints its URL and one token per role;
an admin's token opens every page)::

    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8000/dashboard --token TOKEN

or let the script start the app itself over a synthetic panel in a temporary data folder (the
aggregate pages, data quality and upload; the worklist and models pages need trained models,
so they are shot only from a running demo)::

    .venv/bin/python scripts/screenshots.py

PNGs of 1280x800 go to ``docs/screenshots/`` (quantised to 256 colours when Pillow is there).
Needs Debian's chromium (``REINTEGRATION_CHROMIUM``, default /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("REINTEGRATION_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
# (file name, address under the dashboard, what shows the page is ready)
SHOTS = (
    ("overview", "/overview", ".content .js-plotly-plot g.trace"),
    ("breakdowns", "/breakdowns", ".js-plotly-plot g.trace"),
    ("trajectories", "/trajectories?by=return_type&axis=months", ".js-plotly-plot g.trace"),
    ("assistance", "/assistance?score=economic", ".js-plotly-plot g.trace"),
    ("quality", "/quality", "#quality-batches-table td.dash-cell"),
    ("worklist", "/worklist?band=high", "#worklist-table td.dash-cell"),
    ("models", "/models", ".page-models .js-plotly-plot g.trace"),
)
NEEDS_MODELS = {"worklist", "models"}
# The same pages in the other languages (chosen with the shell's switch, as a user does) and at
# a phone's width: (file name, address, what shows it is ready, language, viewport).
PHONE = {"width": 375, "height": 812}
EXTRA_SHOTS = (
    ("overview-fr", "/overview", ".content .js-plotly-plot g.trace", "fr", VIEWPORT),
    ("breakdowns-ar", "/breakdowns", ".content .js-plotly-plot g.trace", "ar", VIEWPORT),
    ("overview-phone", "/overview", ".content .js-plotly-plot g.trace", "en", PHONE),
)
# The figures a page must have drawn before its picture is taken.
PLOTS = {"overview": 3, "breakdowns": 2, "trajectories": 2, "assistance": 2, "quality": 2}
DRAWN = """(count) => {
    const plots = [...document.querySelectorAll('.content .js-plotly-plot')];
    return plots.length >= count && plots.every(p => p.querySelector('g.trace'));
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _own_server(returnees: int) -> Iterator[tuple[str, str]]:
    """The real app (API and dashboard) over a synthetic panel; yields its URL and a token."""
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="reintegration-shots-") as folder:
        home = Path(folder) / "home"
        os.environ["REINTEGRATION_HOME"] = str(home)
        from api.app import create_app
        from reintegration.index import ReintegrationIndex
        from reintegration.ingest import ingest_file
        from reintegration.policy import cli_caller
        from reintegration.questionnaire import load_questionnaire
        from reintegration.settings import get_settings
        from reintegration.store.engine import open_store
        from reintegration.synth import generate_panel, write_panel
        from reintegration.users import add_user

        settings = get_settings()
        frame, _ = generate_panel(returnees, 3, seed=7)
        write_panel(frame, Path(folder) / "panel.csv")
        engine = open_store(settings.database_url)
        ingest_file(
            Path(folder) / "panel.csv",
            engine,
            scorer=ReintegrationIndex().fit(),
            questionnaire=load_questionnaire(),
            secret=settings.secret_key_bytes(),
            uploader="field-team",
        )
        token = add_user(engine, "screenshots", "admin", caller=cli_caller("screenshots"))
        engine.dispose()
        services = _services(settings)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}/dashboard", token
        finally:
            server.should_exit = True
            time.sleep(0.5)
            services.close()


def _services(settings: Any) -> Any:
    """The server's services; with the built-in index when models/ cannot build them."""
    try:
        from api.services import build_services

        return build_services(settings)
    except ImportError as exc:
        sys.stderr.write(f"(models/ not importable: {exc}; built-in index)\n")
    from api.services import Services
    from api.uploads import Uploads
    from reintegration.analytics import Analytics
    from reintegration.index import ReintegrationIndex
    from reintegration.questionnaire import load_questionnaire
    from reintegration.store.engine import open_store

    class BuiltIn:
        index_ = ReintegrationIndex().fit()

        def index(self) -> tuple[Any, str, None]:
            return self.index_, self.index_.label_, None

        def risk(self) -> None:
            return None

        def refresh(self) -> None:
            return None

    engine = open_store(settings.database_url)
    questionnaire = load_questionnaire()
    return Services(
        settings=settings,
        engine=engine,
        questionnaire=questionnaire,
        analytics=Analytics(engine, min_cell=settings.min_cell),
        champions=BuiltIn(),
        uploads=Uploads(engine, questionnaire, BuiltIn(), secret=settings.secret_key_bytes),
        lifecycle=None,  # type: ignore[arg-type]
    )


def _shrink(path: Path) -> None:
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            path, optimize=True
        )


def shoot(url: str, token: str, out: Path, *, with_models: bool) -> list[Path]:
    """Log in at ``url`` with ``token`` and save a PNG of each main page into ``out``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/login")
        page.fill("#login-token", token)
        page.click("#login-submit")
        page.wait_for_selector("#shell-user")
        for name, address, ready in SHOTS:
            if name in NEEDS_MODELS and not with_models:
                continue
            page.goto(f"{url}{address}")
            page.wait_for_selector(ready)
            if name in PLOTS:
                page.wait_for_function(DRAWN, arg=PLOTS[name])
            page.wait_for_timeout(300)  # let the charts finish their transitions
            path = out / f"{name}.png"
            page.screenshot(path=str(path))
            _shrink(path)
            saved.append(path)
            sys.stdout.write(f"{path} ({path.stat().st_size // 1024} KB)\n")
        for name, address, ready, language, viewport in EXTRA_SHOTS:
            page.set_viewport_size(viewport)
            page.goto(f"{url}{address}")
            page.wait_for_selector("#shell-user")
            if page.get_attribute("html", "lang") != language:
                page.click(f"#shell-language-{language}")
                page.wait_for_selector(f'html[lang="{language}"]')
            page.wait_for_selector(ready)
            page.wait_for_function(DRAWN, arg=1)
            page.wait_for_timeout(300)
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=viewport is PHONE)
            _shrink(path)
            saved.append(path)
            sys.stdout.write(f"{path} ({path.stat().st_size // 1024} KB)\n")
        # The switch is remembered for the user: leave them in English.
        if page.get_attribute("html", "lang") != "en":
            page.click("#shell-language-en")
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running dashboard, e.g. http://127.0.0.1:8000/dashboard")
    parser.add_argument("--token", help="an admin's token for --url")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--returnees", type=int, default=4000)
    args = parser.parse_args()
    if args.url:
        if not args.token:
            parser.error("--url needs --token (an admin's, to open every page)")
        shoot(args.url.rstrip("/"), args.token, args.out, with_models=True)
        return
    with _own_server(args.returnees) as (url, token):
        shoot(url, token, args.out, with_models=False)


if __name__ == "__main__":
    main()
