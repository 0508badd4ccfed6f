"""The app ``digitrec app`` serves: the Draw page and the Insights page, one navigation."""

from __future__ import annotations

import streamlit as st

from digitrec.ui import insights_page, page


def main() -> None:
    """Run the page the address names (the Draw page at the root)."""
    pages = [
        st.Page(page.main, title="Draw", icon=":material/draw:", default=True),
        st.Page(
            insights_page.main, title="Insights", icon=":material/insights:", url_path="insights"
        ),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
