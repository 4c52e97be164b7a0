"""What a request carries: an image as raw bytes or multipart files, or landmark JSON; and how
the OpenAPI page describes those bodies (the image routes read the raw body themselves)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from emotion.serve.errors import ApiError
from emotion.serve.schemas import EnrollLandmarks, LandmarksIn

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
# The request bodies the image routes take, for the OpenAPI page (they read the raw body).
IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **{kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_TYPES},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}
ENROLL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **IMAGE_BODY["requestBody"]["content"],
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/LandmarksIn"},
                        {"$ref": "#/components/schemas/EnrollLandmarks"},
                    ]
                }
            },
        },
    }
}
MAX_UPLOADS = 64  # images in one multipart enrolment


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


async def images_of(request: Request, most: int) -> list[bytes]:
    """The image(s) of a request: its raw body, or the files of a multipart form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        raise ApiError(
            415,
            "this route takes an image, not JSON",
            "send JPEG/PNG/WebP bytes (or multipart); landmarks go to the .../predict/landmarks "
            "routes",
        )
    if kind != "multipart/form-data":
        return [await request.body()]
    form = await request.form(max_files=most, max_fields=most)
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files or len(files) > most:
        raise ApiError(
            400,
            f"the multipart form holds {len(files)} files; this route takes "
            + ("one" if most == 1 else f"1 to {most}"),
            "send the image as a form field named file",
        )
    return [await upload.read() for upload in files]


def parse_enroll_json(body: bytes) -> list[LandmarksIn]:
    """One landmark set, or `{"faces": [...]}`; a 422 naming the problem otherwise."""
    for schema in (LandmarksIn, EnrollLandmarks):
        try:
            parsed = schema.model_validate_json(body)
        except ValidationError as error:
            last = error
            continue
        return [parsed] if isinstance(parsed, LandmarksIn) else parsed.faces
    problem = last.errors()[0]
    raise ApiError(
        422,
        f"malformed landmarks: {'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}",
        'send {"landmarks": [[x, y, z] x 478], "image_size": [w, h]} or {"faces": [...]}',
    )
