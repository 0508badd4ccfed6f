"""Start the page with ``streamlit run`` (what ``digitrec app`` calls)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

PAGE_PATH = Path(__file__).with_name("page.py")


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


def run_app(host: str, port: int) -> None:
    """Serve the page at http://host:port until interrupted."""
    # Ctrl-C reaches Streamlit too, which shuts itself down.
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(app_command(host, port), check=True)
