"""The ``siyu`` command: Django's management commands plus Siyu's own.

    siyu migrate | serve [--port P] | worker | sync | demo     the product (siyu.settings)
    siyu import members|orders|events FILE [--dry-run]       customer data from CSV/XLSX
    siyu sim [--port P] [--customers N] [--seed S]             the WeCom emulator (its own settings)

Any other Django command works too (``siyu createsuperuser``, ``siyu shell``...).
"""

from __future__ import annotations

import os
import sys

from django.core.management import execute_from_command_line

SIM_COMMANDS = {"sim"}
# commands whose name is a Python keyword: their module has another name
ALIASES = {"import": "import_data"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    command = argv[1] if len(argv) > 1 else "help"
    if command in SIM_COMMANDS or os.environ.get("SIYU_ROLE") == "sim":
        os.environ["DJANGO_SETTINGS_MODULE"] = "siyu.wecom_sim.settings"
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    argv[0] = "siyu"
    if len(argv) > 1 and argv[1] in ALIASES:
        argv[1] = ALIASES[argv[1]]
    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
