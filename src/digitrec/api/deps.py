"""Typed dependencies of the routes: the service, and the image of a prediction request."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from digitrec.contract import IDEMPOTENCY_KEY_HEADER, InvalidImageError, SessionRequiredError
from digitrec.schemas import PredictRequest, SessionId
from digitrec.service import PredictionService

# Model names, prediction ids and idempotency keys end up in SQL rows, file names and metric
# labels: keep them to a short, printable alphabet.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
PREDICTION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN, examples=["default"])]
ModelT = TypeVar("ModelT", bound=BaseModel)


async def get_service(request: Request) -> PredictionService:
    """The service built by `create_app`, shared by every request of this worker."""
    # async: a plain function would be sent to the threadpool, a thread hop for nothing.
    service: PredictionService = request.app.state.service
    return service


ServiceDep = Annotated[PredictionService, Depends(get_service)]


class PredictFields(BaseModel):
    """The fields that come with an image: which session, which model."""

    session_id: SessionId | None = None
    model: ModelName | None = None  # None: the service's default model


class PredictBody(PredictFields, PredictRequest):
    """`PredictRequest` with the ids held to the API's alphabet."""


@dataclass(frozen=True)
class PredictInput:
    """An image to recognise, decoded from whichever form the request used."""

    image: bytes
    session_id: str | None  # None: the service starts a new session
    model: str | None  # None: the service's default model
    idempotency_key: str | None  # one per Predict press; None: every request is a new row


async def read_predict_input(request: Request) -> PredictInput:
    """Read the image from a JSON body (base64) or a multipart upload (field `file`)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: PredictFields
    if media_type == "application/json":
        fields = body = _validated(PredictBody, await request.body())
        image = decode_base64_image(body.image)
    elif media_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidImageError("the multipart field 'file' with the image is missing")
            image = await upload.read()
            fields = _validated(
                PredictFields, {k: form[k] for k in PredictFields.model_fields if k in form}
            )
    else:
        raise HTTPException(
            415, "send JSON {\"image\": <base64>} or a multipart upload in the field 'file'"
        )
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is not None and not IDEMPOTENCY_KEY_PATTERN.match(key):
        raise HTTPException(422, f"{IDEMPOTENCY_KEY_HEADER}: 1 to 128 of A-Z a-z 0-9 _ . : -")
    if key is not None and fields.session_id is None:
        raise SessionRequiredError(
            f"an {IDEMPOTENCY_KEY_HEADER} needs the session_id it belongs to"
        )
    return PredictInput(image, fields.session_id, fields.model, key)


PredictInputDep = Annotated[PredictInput, Depends(read_predict_input)]


def decode_base64_image(text: str) -> bytes:
    """The bytes of a base64 image, with or without a `data:image/...;base64,` prefix."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageError("the image is not valid base64") from exc


def _validated(model: type[ModelT], data: bytes | dict[str, Any]) -> ModelT:
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


# The OpenAPI description of the request body, which FastAPI can't infer from a Request.
PREDICT_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictBody.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        **PredictFields.model_json_schema()["properties"],
                    },
                },
                "encoding": {"file": {"contentType": "image/png, image/jpeg"}},
            },
        },
    }
}
