"""The drawing slate: a small Streamlit component of our own (slate.html, .css, .js beside this).

Pointer events draw with a mouse, a finger or a pen, every sampled point kept; Clear wipes the
slate in the browser at once; Predict sends the picture and the id of the drawing it shows as
one trigger value, so the page never waits for a drawing to catch up with a click.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import streamlit as st

if TYPE_CHECKING:
    from streamlit.components.v2.types import ComponentRenderer

COMPONENT_NAME = "digitrec_slate"
SLATE_SIZE_PX = 280  # 10x the 28 px MNIST field; slate.js draws an 18 px pen on it
PNG_DATA_URL_PREFIX = "data:image/png;base64,"
# The browser makes drawing ids (a UUID, or 32 hex digits where crypto.randomUUID is missing).
DRAWING_ID = re.compile(r"^[0-9a-f-]{32,36}$")


@dataclass(frozen=True)
class Press:
    """One Predict press: the slate's picture and the drawing it shows."""

    png: bytes | None  # the whole slate, 280x280 RGBA PNG, white ink on black; None: empty
    drawing: str  # renewed in the browser by every stroke and by Clear
    again: bool = False  # sent by the page itself after another model was chosen

    @classmethod
    def from_trigger(cls, value: Any) -> Press | None:
        """The press the browser sent; None for anything malformed."""
        if not isinstance(value, dict):
            return None
        drawing, image = value.get("drawing"), value.get("image")
        if not isinstance(drawing, str) or not DRAWING_ID.match(drawing):
            return None
        png = None
        if image is not None:
            if not isinstance(image, str) or not image.startswith(PNG_DATA_URL_PREFIX):
                return None
            try:
                png = base64.b64decode(image.removeprefix(PNG_DATA_URL_PREFIX), validate=True)
            except binascii.Error:
                return None
        return cls(png=png, drawing=drawing, again=value.get("again") is True)


@dataclass(frozen=True)
class SlateEvents:
    """What the slate sent in this run: a press, a Clear, or neither."""

    press: Press | None
    cleared: bool


@functools.cache
def _component() -> ComponentRenderer:
    """Register the component once per process (Streamlit re-registers it per runtime)."""
    folder = resources.files(__package__)
    return st.components.v2.component(
        COMPONENT_NAME,
        html=(folder / "slate.html").read_text(encoding="utf-8"),
        css=(folder / "slate.css").read_text(encoding="utf-8"),
        js=(folder / "slate.js").read_text(encoding="utf-8"),
    )


def _ignore() -> None:
    """Trigger values are read from the component's result; no callback is needed."""


def render_slate(*, key: str, repredict: int) -> SlateEvents:
    """Show the slate; `repredict` going up asks it to send its drawing again at once."""
    result = _component()(
        key=key,
        data={"repredict": repredict},
        on_press_change=_ignore,
        on_clear_change=_ignore,
    )
    return SlateEvents(
        press=Press.from_trigger(result.get("press")), cleared=result.get("clear") is not None
    )
