"""The admin API key: `Authorization: Bearer <key>` or `X-API-Key: <key>` must match MOE_ADMIN_KEY."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header

from api.deps import RuntimeDep
from core.errors import Unauthorized


async def require_admin(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    expected = runtime.settings.admin_key
    if not expected:
        raise Unauthorized("admin endpoints are disabled: set MOE_ADMIN_KEY to enable them")
    given = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("a valid admin API key is required (Authorization: Bearer <key> or X-API-Key)")


AdminDep = Depends(require_admin)
AdminOnly = Annotated[None, AdminDep]
