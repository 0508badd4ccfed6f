"""Drive the page in AppTest: draw on its slate, press its buttons, read what it shows.

AppTest runs no JavaScript, so the slate's messages are sent as the browser sends them: a
trigger value on the component's event widget, with every other widget's state unchanged.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from typing import Any

import numpy as np
from drawing import rgba_canvas
from PIL import Image
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.testing.v1 import AppTest

SLATE_KEY = "slate"


def png_data_url(pixels: np.ndarray) -> str:
    """The slate's picture as canvas.toDataURL gives it: white ink on opaque black, RGBA PNG.

    `pixels` is a (280, 280) uint8 ink map (255 = ink).
    """
    buffer = io.BytesIO()
    Image.fromarray(rgba_canvas(pixels), mode="RGBA").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def send_from_slate(at: AppTest, event: str, value: Any) -> AppTest:
    """Send one of the slate's trigger values ("press" or "clear") and run the page.

    A press reruns only the page's fragments, and AppTest's tree holds only what a run drew,
    so the page is run once more afterwards: the whole of it, as the browser shows it.
    """
    (element,) = [e for e in at.get("bidi_component") if e.key == SLATE_KEY]
    states = at._tree.get_widget_states()
    trigger = states.widgets.add()
    trigger.id = _make_trigger_id(element.proto.id, "events")
    trigger.json_trigger_value = json.dumps([{"event": event, "value": value}])
    at._run(states)
    return at.run()


def press_predict(
    at: AppTest, pixels: np.ndarray | None, drawing: str | None = None, *, again: bool = False
) -> AppTest:
    """Press the slate's Predict with this drawing on it (None: an empty slate).

    `drawing` is the id the browser gives the drawing (a new one for each new stroke); a
    fresh one by default.
    """
    image = None if pixels is None else png_data_url(pixels)
    press = {"image": image, "drawing": drawing or str(uuid.uuid4()), "again": again}
    return send_from_slate(at, "press", press)


def press_clear(at: AppTest) -> AppTest:
    """Press the slate's Clear (the browser has wiped the slate already)."""
    return send_from_slate(at, "clear", str(uuid.uuid4()))


def texts(at: AppTest) -> str:
    """Every piece of text on the page, one per line (for `in` checks)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption"):
        parts += [str(e.value) for e in getattr(at, kind)]
    for kind in ("info", "success", "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)
