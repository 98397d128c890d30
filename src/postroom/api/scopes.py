"""The scope each API route needs, named once per router: ``responses=error_responses(403),
    dependencies=[needs(read,
write)]`` makes GET and HEAD need ``read`` and every other method ``write``. The key is
checked against it in ``tenants.service.authenticate``."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from postroom.tenants.scopes import required_scope

READ_METHODS = frozenset({"GET", "HEAD"})


def needs(read: str, write: str | None = None) -> Any:
    async def name_the_scope(request: Request) -> None:
        needed = read if request.method in READ_METHODS or write is None else write
        required_scope.set(needed)
        request.state.required_scope = needed

    return Depends(name_the_scope)
