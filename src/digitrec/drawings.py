"""A drawing as the models read it: decoded and preprocessed once, each model's answer a row.

The service (`digitrec.service`) logs those rows; a comparison has every model read the same
`Drawing`, so the decoding and the preprocessing are done, and counted in each row's latency,
once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from digitrec.inference import Predictor
from digitrec.llm import NAME as LLM
from digitrec.llm import LlmReader
from digitrec.preprocessing import ImageSource, as_canvas, encode_png, png_to_store, to_mnist
from digitrec.storage.records import PredictionRecord


@dataclass(frozen=True)
class Drawing:
    """One upload, decoded once and preprocessed: what every model that reads it shares."""

    pixels: np.ndarray  # (28, 28) float32 in [0, 1]: the model input
    preprocessing_ms: float  # decoding and preprocessing
    image_png: bytes  # the model input as logged
    canvas_png: bytes  # the picture as drawn: the upload itself when it is a bare PNG

    @classmethod
    def of(cls, image: ImageSource) -> Drawing:
        """Decode and preprocess an upload (timed), and make the PNGs a row stores."""
        started = time.perf_counter()
        # The pixels a PNG of it holds, the same in-process and over HTTP: both the model input
        # and the stored canvas come from this one decoding.
        canvas = as_canvas(image)
        pixels = to_mnist(canvas)
        preprocessing_ms = (time.perf_counter() - started) * 1000.0
        return cls(pixels, preprocessing_ms, encode_png(pixels), png_to_store(image, canvas))

    def record(
        self, predictor: Predictor, session_id: str, uid: str, *, request_id: str
    ) -> PredictionRecord:
        """The row of one model's answer; latency: the preprocessing plus its inference."""
        started = time.perf_counter()
        (prediction,) = predictor.predict_preprocessed(self.pixels[None])
        inference_ms = (time.perf_counter() - started) * 1000.0
        return PredictionRecord(
            uid=uid,
            timestamp=datetime.now(UTC),
            session_id=session_id,
            model=predictor.name,
            model_version=predictor.version,
            request_id=request_id,
            prediction=prediction.digit,
            confidence=prediction.confidence,
            probabilities=list(prediction.probabilities),
            latency_ms=self.preprocessing_ms + inference_ms,
            digit_probability=prediction.digit_probability,
            is_digit=prediction.is_digit,
            image_png=self.image_png,
            canvas_png=self.canvas_png,
        )

    def read_by(
        self, reader: LlmReader, session_id: str, uid: str, *, request_id: str
    ) -> PredictionRecord:
        """The row of the chat model's answer: a digit or none, and no probabilities, which
        it does not state (raises LlmError when it gave no answer at all)."""
        answer = reader.read(self.pixels, self.canvas_png)
        return PredictionRecord(
            uid=uid,
            timestamp=datetime.now(UTC),
            session_id=session_id,
            model=LLM,
            request_id=request_id,
            prediction=answer.digit,
            confidence=None,
            probabilities=None,
            latency_ms=self.preprocessing_ms + answer.latency_ms,
            # "none" is its verdict that this is not a digit; "unsure" is no verdict at all.
            is_digit=answer.status != "none",
            image_png=self.image_png,
            canvas_png=self.canvas_png,
        )
