"""The outbox's file format: one JSON line per queued write, `{"op": ..., <fields>}`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from digitrec.storage.records import Feedback, PredictionRecord

INSERT, FEEDBACK = "insert", "feedback"
OPERATIONS: dict[str, type[PredictionRecord] | type[Feedback]] = {
    INSERT: PredictionRecord,
    FEEDBACK: Feedback,
}


def encode_line(item: PredictionRecord | Feedback) -> bytes:
    """One queue line without its newline, bytes as base64."""
    op = INSERT if isinstance(item, PredictionRecord) else FEEDBACK
    return json.dumps({"op": op, **item.model_dump(mode="json")}, separators=(",", ":")).encode()


def decode_line(line: bytes) -> PredictionRecord | Feedback | None:
    """The write a line holds; None for a blank or torn line."""
    if not line.strip():
        return None
    try:
        fields = json.loads(line)
        op = fields.pop("op")
        if op not in OPERATIONS:
            raise ValueError(f"unknown outbox operation {op!r}")
        return OPERATIONS[op].model_validate(fields)
    except (ValueError, KeyError, TypeError):
        # Only a crash in the middle of an append leaves a torn line, and that write was
        # never acknowledged to anyone. (pydantic's ValidationError is a ValueError.)
        return None


def read_lines(path: Path) -> Iterator[PredictionRecord | Feedback]:
    """Every write in a queue file, in order, one line in memory at a time."""
    with path.open("rb") as lines:
        for line in lines:
            item = decode_line(line)
            if item is not None:
                yield item


def find_insert(data: bytes, uid: str) -> PredictionRecord | None:
    """The queued insert of `uid` in a queue file's bytes (found without decoding the rest)."""
    needle = b'"uid":' + json.dumps(uid).encode()
    at = data.find(needle)
    while at >= 0:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        item = decode_line(data[start : end if end >= 0 else len(data)])
        if isinstance(item, PredictionRecord) and item.uid == uid:
            return item
        at = data.find(needle, at + len(needle))
    return None
