"""OpenAI's Files API, as much as the Batch API needs: upload JSONL, read it back."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, UploadFile
from fastapi.responses import Response
from openai.types import FileObject

from api.deps import RuntimeDep
from core.errors import InvalidRequest
from workers.files import FileStore
from workers.models import BatchFile

router = APIRouter(tags=["files"])


def file_object(row: BatchFile) -> dict[str, Any]:
    return FileObject(
        id=row.id,
        object="file",
        bytes=row.bytes,
        created_at=int(row.created_at.timestamp()),
        filename=row.filename,
        purpose=row.purpose,  # type: ignore[arg-type]
        status="processed",
    ).model_dump(exclude_none=True)


async def _read_text(file: UploadFile, limit: int) -> str:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InvalidRequest(f"the file is larger than the {limit} bytes this server accepts", param="file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the file is not UTF-8 text: {exc}", param="file") from exc


@router.post("/v1/files")
async def upload_file(runtime: RuntimeDep, file: UploadFile, purpose: Annotated[str, Form()]) -> dict[str, Any]:
    if purpose != "batch":
        raise InvalidRequest(f"purpose '{purpose}' is not supported; use 'batch'", param="purpose")
    content = await _read_text(file, runtime.settings.max_batch_file_bytes)
    if not content.strip():
        raise InvalidRequest("the file is empty", param="file")
    row = await asyncio.to_thread(FileStore(runtime.sessions).create, purpose, file.filename or "upload.jsonl", content)
    return file_object(row)


@router.get("/v1/files/{file_id}")
async def get_file(file_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return file_object(await asyncio.to_thread(FileStore(runtime.sessions).get, file_id))


@router.get("/v1/files/{file_id}/content")
async def get_file_content(file_id: str, runtime: RuntimeDep) -> Response:
    row = await asyncio.to_thread(FileStore(runtime.sessions).get, file_id)
    return Response(row.content, media_type="application/jsonl")
