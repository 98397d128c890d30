"""``AsyncClient``: the SDK on ``httpx.AsyncClient``; every method is a coroutine (the
``iter_*`` methods and ``errors_csv`` are async iterators)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any

import httpx

from postroom.client import calls
from postroom.client.base import Operations


async def _stream(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class AsyncClient(Operations):
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, retries=retries)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, *exc: type[BaseException] | BaseException | TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _now(self) -> float:
        return time.monotonic()

    async def _run(self, op: calls.Op) -> Any:
        answer: Any = None
        try:
            while True:
                step = op.send(answer)
                if isinstance(step, calls.Pause):
                    await self._sleep(step.seconds)
                    answer = None
                else:
                    answer = await self._send(step)
        except StopIteration as done:
            return done.value

    async def _send(self, call: calls.Call) -> Any:
        args = self._request_args(call)
        attempt = 0
        while True:
            content = _stream(call.content()) if call.content is not None else None
            try:
                response = await self._http.request(**args, content=content)
            except httpx.TransportError as exc:
                wait = self._wait_after_failure(call, attempt, exc)
            else:
                again = self._wait_after_answer(call, attempt, response)
                if again is None:
                    return calls.decode(response.status_code, response.headers, response.content)
                wait = again
            await self._sleep(wait)
            attempt += 1

    async def _pages(self, url: str, kind: str, params: dict[str, Any]) -> AsyncIterator[Any]:
        model = calls.PAGES[kind][1]
        cursor: str | None = None
        while True:
            items, cursor = await self._run(calls.page(url, kind, params, cursor))
            for item in items:
                yield model.model_validate(item)
            if not cursor:
                return

    async def errors_csv(self, campaign_id: str) -> AsyncIterator[bytes]:
        """The campaign's errors report, streamed in chunks of CSV."""
        args = self._request_args(calls.Call("GET", f"/api/v1/campaigns/{campaign_id}/errors"))
        async with self._http.stream(**args) as response:
            if response.status_code >= 400:
                calls.decode(response.status_code, response.headers, await response.aread())
            async for chunk in response.aiter_bytes():
                yield chunk
