"""`digitrec app` starts the page with `streamlit run`."""

from __future__ import annotations

import sys

from digitrec.ui.launch import PAGE_PATH, app_command


def test_app_command_runs_the_page_headless_on_the_given_address() -> None:
    command = app_command("0.0.0.0", 8502)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(PAGE_PATH)]
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options == {
        "--server.port": "8502",
        "--server.address": "0.0.0.0",
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "minimal",
        "--client.showErrorDetails": "type",
    }
    assert PAGE_PATH.is_file()
