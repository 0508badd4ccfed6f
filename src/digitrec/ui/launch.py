"""Start the page with ``streamlit run`` in place of this process (``digitrec app``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

# The entry script: the Draw and the Insights page behind one navigation.
PAGE_PATH = Path(__file__).with_name("app.py")


def app_command(host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line for the page."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PAGE_PATH),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # People using the page need no Deploy button or developer menu, nor stack traces.
        "--client.toolbarMode",
        "minimal",
        "--client.showErrorDetails",
        "type",
    ]


def run_app(host: str, port: int) -> NoReturn:
    """Serve the page at http://host:port until stopped; this process becomes Streamlit."""
    command = app_command(host, port)
    # exec, not a child process: SIGTERM (a container stopping, where this is PID 1) and
    # Ctrl-C reach Streamlit itself, which stops cleanly, and no orphan keeps the port.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
