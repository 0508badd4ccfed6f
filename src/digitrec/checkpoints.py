"""Checkpoints: a trained network with the config, data, metrics and git revision that made it."""

from __future__ import annotations

import io
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from digitrec.detection import DetectorFit
from digitrec.models import Standardised, build_model, feature_channels
from digitrec.training import TrainConfig, TrainResult


def save_checkpoint(result: TrainResult, path: Path, data_source: str) -> None:
    """Write the weights with the config, data, metrics and git revision that made them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_payload(result, data_source), path)


def checkpoint_bytes(result: TrainResult, data_source: str) -> bytes:
    """The bytes `save_checkpoint` would write (what the model registry keeps)."""
    buffer = io.BytesIO()
    torch.save(_payload(result, data_source), buffer)
    return buffer.getvalue()


def _payload(result: TrainResult, data_source: str) -> dict[str, Any]:
    return {
        "state_dict": result.model.net.state_dict(),
        "temperature": result.temperature,
        "config": asdict(result.config),
        "metrics": result.metrics,
        "history": result.history,
        "data": data_source,
        "git_revision": result.git_revision,
        "torch_version": str(torch.__version__),
        **({"detector": result.detector.payload()} if result.detector is not None else {}),
    }


def load_checkpoint(source: Path | bytes) -> TrainResult:
    """A trained network back from a checkpoint file (or its bytes) `save_checkpoint` wrote."""
    readable = io.BytesIO(source) if isinstance(source, bytes) else source
    saved = torch.load(readable, map_location="cpu", weights_only=True)
    config = replace(TrainConfig(), **saved["config"])
    net = build_model(config.model, config.members)
    net.load_state_dict(saved["state_dict"])
    model = Standardised(net, saved["temperature"])
    model.eval()
    detector = None
    if "detector" in saved:
        detector = DetectorFit.from_payload(saved["detector"], feature_channels(net))
    return TrainResult(
        model=model,
        config=config,
        temperature=saved["temperature"],
        metrics=saved["metrics"],
        history=saved.get("history", []),
        git_revision=saved.get("git_revision", "unknown"),
        detector=detector,
    )
