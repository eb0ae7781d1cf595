"""A small OpenAI-compatible chat-completions server on 127.0.0.1, scripted per request.

The ``openai`` SDK (3.x) talks through httpx2, which httpx mocks do not intercept, so the
tests run the real SDK against this server. A test queues one :class:`Reply` per request
it expects (good answer, malformed JSON, refusal, 429, ...); when the queue is empty the
server gives its default reply (a good answer, after ``delay`` seconds). It counts the
requests it got and the most it had in flight at once.

From another process (a benchmark)::

    python -m tests.fake_openai --port 8900 --delay 1.0

prints its base URL (``http://127.0.0.1:8900/v1``) once it listens; ``--port 0`` picks a
free port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

GOOD_DRAFT: dict[str, Any] = {
    "headline": "Sarah, 15% off the plan you looked at",
    "body_copy": "You looked at our pricing three times. Here is 15% off for a week.",
    "offer_type": "discount",
    "offer_terms": {
        "discount_percent": 15,
        "code": "SARAH",
        "valid_days": 7,
        "conditions": "One use per customer.",
    },
    "channel": "email",
    "reasoning": "Three pricing views and no purchase: a discount may tip the balance.",
}
"""What the fake model writes by default: a valid OfferDraft."""


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    content: str | None = field(default_factory=lambda: json.dumps(GOOD_DRAFT))
    refusal: str | None = None
    finish_reason: str = "stop"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted error"


def good(draft: dict[str, Any] | None = None, *, delay: float = 0.0) -> Reply:
    return Reply(content=json.dumps(draft or GOOD_DRAFT), delay=delay)


def malformed() -> Reply:
    return Reply(content='{"headline": "Half an object", "body_copy": ')


def off_schema() -> Reply:
    return Reply(content=json.dumps({**GOOD_DRAFT, "offer_type": "free_car", "channel": 7}))


def refusal(text: str = "I can't help with that.") -> Reply:
    return Reply(content=None, refusal=text)


def cut_off() -> Reply:
    return Reply(content='{"headline": "A headline that never en', finish_reason="length")


def slow(seconds: float) -> Reply:
    return good(delay=seconds)


def status(code: int, *, retry_after: str | None = None, error: str = "scripted error") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(status=code, content=None, headers=headers, error=error)


class FakeOpenAI:
    """The server: ``await start()``, queue replies in ``script``, ``await stop()``."""

    def __init__(self, *, delay: float = 0.0, model: str = "fake-model") -> None:
        self.default = good(delay=delay)
        self.model = model
        self.script: deque[Reply] = deque()
        self.requests: deque[dict[str, Any]] = deque(maxlen=1000)
        """The bodies of the last 1000 requests (a benchmark sends many more)."""
        self.count = 0
        """Requests received."""
        self.in_flight = 0
        self.most_in_flight = 0
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    def then(self, *replies: Reply) -> FakeOpenAI:
        """Queue replies for the next requests, in order."""
        self.script.extend(replies)
        return self

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.count = 0
        self.most_in_flight = 0

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        # handler_cancellation: a reply sleeping past the client's timeout stops when the
        # client goes, so stop() does not wait for it.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{bound}/v1"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model}]})

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.count += 1
        reply = self.script.popleft() if self.script else self.default
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
        finally:
            self.in_flight -= 1
        if reply.status != 200:
            error = {"error": {"message": reply.error, "type": "scripted", "code": None}}
            return web.json_response(error, status=reply.status, headers=reply.headers)
        return web.json_response(self._completion(body, reply), headers=reply.headers)

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{self.count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": reply.content,
                        "refusal": reply.refusal,
                    },
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }


async def start_fake_openai(*, delay: float = 0.0, port: int = 0) -> FakeOpenAI:
    """A started fake; its ``base_url`` is where to point the SDK."""
    fake = FakeOpenAI(delay=delay)
    await fake.start(port)
    return fake


async def _serve(port: int, delay: float) -> None:
    fake = await start_fake_openai(delay=delay, port=port)
    print(fake.base_url, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="A fake OpenAI chat-completions server on 127.0.0.1 that answers every"
        " request with a valid OfferDraft after --delay seconds. Prints its base URL."
    )
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.port, args.delay))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
