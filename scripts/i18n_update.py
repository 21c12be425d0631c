"""Extract the strings marked with _() / ngettext() and merge them into the .po catalogues.

    .venv/bin/python scripts/i18n_update.py          # update fr and ar, count what is left
    .venv/bin/python scripts/i18n_update.py --list   # ... and list each untranslated string
    .venv/bin/python scripts/i18n_update.py --check  # change nothing; list; exit 1 if not ready

Translators then edit reintegration/locale/<lang>/LC_MESSAGES/messages.po (no compile step).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reintegration.i18n_catalogues import problems, update  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is missing")
    parser.add_argument("--list", action="store_true", help="list what is missing")
    args = parser.parse_args()
    if not args.check:
        for language, (total, missing) in update().items():
            sys.stdout.write(f"{language}: {total} messages, {missing} to translate\n")
    found = problems()
    if args.check or args.list:
        for line in found:
            sys.stdout.write(line + "\n")
    return 1 if found and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
