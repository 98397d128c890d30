"""``Client``: the SDK on a blocking ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import httpx

from postroom.client import calls
from postroom.client.base import Operations


class Client(Operations):
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, retries=retries)
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _now(self) -> float:
        return time.monotonic()

    def _run(self, op: calls.Op) -> Any:
        answer: Any = None
        try:
            while True:
                step = op.send(answer)
                if isinstance(step, calls.Pause):
                    self._sleep(step.seconds)
                    answer = None
                else:
                    answer = self._send(step)
        except StopIteration as done:
            return done.value

    def _send(self, call: calls.Call) -> Any:
        args = self._request_args(call)
        attempt = 0
        while True:
            content = call.content() if call.content is not None else None
            try:
                response = self._http.request(**args, content=content)
            except httpx.TransportError as exc:
                wait = self._wait_after_failure(call, attempt, exc)
            else:
                again = self._wait_after_answer(call, attempt, response)
                if again is None:
                    return calls.decode(response.status_code, response.headers, response.content)
                wait = again
            self._sleep(wait)
            attempt += 1

    def _pages(self, url: str, kind: str, params: dict[str, Any]) -> Iterator[Any]:
        model = calls.PAGES[kind][1]
        cursor: str | None = None
        while True:
            items, cursor = self._run(calls.page(url, kind, params, cursor))
            for item in items:
                yield model.model_validate(item)
            if not cursor:
                return

    def errors_csv(self, campaign_id: str) -> Iterator[bytes]:
        """The campaign's errors report, streamed in chunks of CSV."""
        args = self._request_args(calls.Call("GET", f"/api/v1/campaigns/{campaign_id}/errors"))
        with self._http.stream(**args) as response:
            if response.status_code >= 400:
                calls.decode(response.status_code, response.headers, response.read())
            yield from response.iter_bytes()
