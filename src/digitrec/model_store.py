"""The models a service answers with: each name's champion in the registry, swapped in when
a new one is promoted, by every replica, without a restart.

A thread polls the registry (one small query every `poll_s`); when a name's champion changes
it fetches the ONNX bytes, checks their digest and builds a predictor before swapping it in, so
a version that fails to load never replaces a working one. Names the registry does not know
(or a database that is down) are served from the model folder.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from digitrec.contract import StorageUnavailableError
from digitrec.inference import Predictor, available_models, load_predictor, shipped_model_dir
from digitrec.storage.registry import (
    CANDIDATE,
    CHAMPION,
    ChampionRef,
    champions,
    fetch_onnx,
    list_versions,
    register_version,
    sha256_of,
)

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
# Predictors built from registry bytes, by name, version and digest: one ONNX Runtime session
# per version per process, however many services (or refreshes) ask for it.
MAX_LOADED = 16
_LOADED: dict[tuple[str, ChampionRef], Predictor] = {}
_LOADED_LOCK = threading.Lock()


class ModelStore:
    """Thread-safe: `predictor(name)` is a dictionary read; the poller swaps entries."""

    def __init__(self, engine: Engine, model_dir: Path | None, *, poll_s: float | None) -> None:
        self.engine = engine
        self.model_dir = model_dir
        self._serving: dict[str, tuple[ChampionRef, Predictor]] = {}
        self._unloadable: set[tuple[str, ChampionRef]] = set()  # logged once, not every poll
        self._registered = False  # the model files are in the registry (done once per process)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if poll_s is not None:
            self._thread = threading.Thread(
                target=self._poll_forever, args=(poll_s,), name="digitrec-models", daemon=True
            )
            self._thread.start()

    def predictor(self, name: str) -> Predictor:
        """The champion of `name`, or the file of that name (UnknownModelError if neither)."""
        served = self._serving.get(name)
        if served is not None:
            return served[1]
        return load_predictor(name, self.model_dir)

    def names(self) -> list[str]:
        """Every name a request may ask for: the model files' and the registry's."""
        files = available_models(self.model_dir)
        return files + sorted(set(self._serving) - set(files))

    def refresh(self) -> list[str]:
        """Load the registry's current champions now; returns the names that changed."""
        try:
            if not self._registered:
                register_shipped_models(self.engine, self.model_dir)
                self._registered = True
            current = champions(self.engine)
        except StorageUnavailableError as exc:
            logger.debug("model registry unavailable, serving what is loaded: %s", exc)
            return []
        changed = []
        for name, ref in current.items():
            served = self._serving.get(name)
            if (served is not None and served[0] == ref) or (name, ref) in self._unloadable:
                continue
            predictor = self._load(name, ref)
            if predictor is None:
                self._unloadable.add((name, ref))
            else:
                with self._lock:
                    self._serving[name] = (ref, predictor)
                changed.append(name)
                logger.info("serving %s version %d", name, ref.version)
        return changed

    def close(self) -> None:
        """Stop polling."""
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)

    def _load(self, name: str, ref: ChampionRef) -> Predictor | None:
        key = (name, ref)
        with _LOADED_LOCK:
            if key in _LOADED:  # another service of this process loaded the same bytes
                return _LOADED[key]
        try:
            onnx = fetch_onnx(self.engine, name, ref.version)  # its digest is checked
            predictor = Predictor(onnx, name, version=ref.version)
        except Exception:  # a corrupt or unloadable file: keep serving the one we have
            logger.exception("%s version %d cannot be loaded; not serving it", name, ref.version)
            return None
        with _LOADED_LOCK:
            if len(_LOADED) >= MAX_LOADED:
                _LOADED.pop(next(iter(_LOADED)))  # the oldest: versions only ever move on
            return _LOADED.setdefault(key, predictor)

    def _poll_forever(self, poll_s: float) -> None:
        # The service refreshes once when it is built; the thread keeps it current.
        while not self._stopping.wait(poll_s):
            try:
                self.refresh()
            except Exception:  # the poller must outlive any one failure
                logger.exception("model registry poll failed")


def register_shipped_models(engine: Engine, model_dir: Path | None) -> list[str]:
    """Register each model file the registry does not hold yet.

    A name the registry does not know gets the file as its version 1 champion. A file that
    differs from every version of a known name (a newer release) becomes the next version: the
    champion if the serving one was shipped too, else a candidate, since a champion learned
    here must not be replaced behind its operator's back.
    """
    versions: dict[str, list[Any]] = {}
    for row in list_versions(engine):
        versions.setdefault(row.name, []).append(row)
    added = []
    for name in available_models(model_dir):
        path = (model_dir or shipped_model_dir()) / f"{name}.onnx"
        data = path.read_bytes()
        known = versions.get(name, [])
        if any(row.sha256 == sha256_of(data) for row in known):
            continue
        serving = next((row for row in known if row.status == CHAMPION), None)
        replaces = serving is None or bool(dict(serving.trained_on).get("shipped"))
        number = max((row.version for row in known), default=0) + 1
        if not known:
            by, reason = "digitrec (first start)", "the model shipped with the app"
        elif replaces:
            by, reason = "digitrec (start-up)", "a newer model shipped with the app"
        else:
            by = "digitrec (start-up)"
            reason = (
                "a newer model shipped with the app; the champion was learned here, so it waits:"
                f" digitrec models promote {name} {number}"
            )
        metadata = load_predictor(name, model_dir).metadata
        try:
            register_version(
                engine,
                name,
                data,
                temperature=float(metadata.get("temperature", 1.0)),
                metrics=_as_dict(metadata.get("metrics")),
                trained_on={"shipped": True, "recipe": metadata.get("recipe")},
                status=CHAMPION if replaces else CANDIDATE,
                by=by,
                reason=reason,
                # Fixed: a second replica starting at the same moment fails on (name, number).
                version=number,
            )
        except StorageUnavailableError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                continue  # another replica registered it at the same moment
            raise
        added.append(name)
    return added


def _as_dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}
