"""/admin/experts: the registry over HTTP, behind the admin key."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import RuntimeDep
from api.security import AdminDep
from experts.schemas import ExpertOut, ExpertSpec, ExpertUpdate

router = APIRouter(prefix="/admin/experts", tags=["admin"], dependencies=[AdminDep])


@router.get("")
async def list_experts(runtime: RuntimeDep) -> list[ExpertOut]:
    return await runtime.in_registry(lambda repo: repo.list())


@router.get("/{name}")
async def get_expert(name: str, runtime: RuntimeDep) -> ExpertOut:
    return await runtime.in_registry(lambda repo: repo.get(name))


@router.post("", status_code=201)
async def add_expert(spec: ExpertSpec, runtime: RuntimeDep) -> ExpertOut:
    return await runtime.in_registry(lambda repo: repo.add(spec))


@router.patch("/{name}")
async def update_expert(name: str, changes: ExpertUpdate, runtime: RuntimeDep) -> ExpertOut:
    return await runtime.in_registry(lambda repo: repo.update(name, changes))


@router.delete("/{name}", status_code=204)
async def remove_expert(name: str, runtime: RuntimeDep) -> Response:
    await runtime.in_registry(lambda repo: repo.remove(name))
    return Response(status_code=204)
