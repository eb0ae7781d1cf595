"""The model writer: an offer draft from a chat model, through the ``openai`` SDK.

Any OpenAI-compatible server works (OpenAI, the local llama.cpp server, ...): the draft
is asked for as structured output validated by :class:`OfferDraft` itself. A model
fault never fails the offer: timeouts, connection errors, 408/409/429 and 5xx answers,
refusals, answers cut at the length limit and answers that are not valid JSON or break
the schema are tried again with backoff, up to ``llm_max_attempts``; other 4xx answers
(a bad key, an unknown model) are not. When no attempt gave a draft, the built-in
writer writes it and the trace says why, with the model's last answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import openai
from openai.lib._pydantic import to_strict_json_schema  # what `parse` uses
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import ValidationError

from proffer_stream.core.retry import Backoff
from proffer_stream.core.settings import Settings
from proffer_stream.offers.models import CatalogBrief, OfferDraft, WriterTrace
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.prompt import Prompt, offer_prompt
from proffer_stream.offers.rules import TriggerRule
from proffer_stream.offers.writer import write_builtin
from proffer_stream.signals.models import CustomerProfile

log = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({408, 409, 429})
"""4xx answers worth another try (and every 5xx); any other 4xx will not change."""
MAX_RAW_ANSWER_CHARS = 20_000
"""Most of a model's answer the trace keeps."""


BACKOFF = Backoff(first=0.2, most=2.0, jitter=True)
"""Between attempts; jittered, so that many writers do not retry in step."""
LONGEST_RETRY_AFTER = 5.0
"""A Retry-After up to this long is waited for; a longer one ends the attempts."""


@dataclass(frozen=True)
class _Failure:
    """Why one attempt gave no draft: plain words, whether to try again, what was answered."""

    reason: str
    retry: bool
    raw_answer: str | None = None
    wait: float | None = None
    """The server asked to wait this long (Retry-After), if it did."""


class LLMWriter:
    """Writes drafts with a chat model; falls back to the built-in writer, never raises
    for a model fault. One client (one connection pool) serves every concurrent write."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_seconds: float = 20.0,
        max_attempts: int = 3,
        backoff: Backoff = BACKOFF,
        longest_retry_after: float = LONGEST_RETRY_AFTER,
    ) -> None:
        self.model = model
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.longest_retry_after = longest_retry_after
        # max_retries=0: the SDK's own retries would not say why they happened, nor
        # retry what it cannot see (refusals, answers that break the schema).
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            # The SDK refuses an empty key; a local server needs none.
            api_key=api_key or "none",
            timeout=timeout_seconds,
            max_retries=0,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMWriter:
        return cls(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_seconds=settings.llm_timeout_seconds,
            max_attempts=settings.llm_max_attempts,
        )

    async def close(self) -> None:
        await self.client.close()

    async def write(
        self,
        signals: CustomerProfile,
        rule: TriggerRule | None,
        policy: Policy,
        now: datetime,
        brief: CatalogBrief | None = None,
    ) -> tuple[OfferDraft, WriterTrace]:
        """The model's draft, or the built-in writer's after the last failed attempt."""
        prompt = offer_prompt(signals, rule, policy, now, brief)
        started = time.perf_counter()
        raw_answer = None
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(prompt)
            if isinstance(outcome, tuple):
                draft, raw_answer = outcome
                return draft, self._trace(prompt, raw_answer, attempt, started)
            raw_answer = outcome.raw_answer if outcome.raw_answer is not None else raw_answer
            if not outcome.retry or attempt >= self.max_attempts:
                reason = outcome.reason
                break
            wait = self._wait(outcome, attempt)
            if wait is None:
                reason = f"{outcome.reason}, asked to wait {outcome.wait:g} s"
                break
            await asyncio.sleep(wait)
        reason += " after 1 attempt" if attempt == 1 else f" after {attempt} attempts"
        log.warning("model %s gave no draft (%s); the built-in writer wrote it", self.model, reason)
        draft = write_builtin(signals, rule, policy, now, brief)
        return draft, self._trace(prompt, raw_answer, attempt, started, fallback_reason=reason)

    def _wait(self, failure: _Failure, attempt: int) -> float | None:
        """How long to wait before the next attempt; None: do not try again."""
        if failure.wait is None:
            return self.backoff.delay(attempt)
        if failure.wait > self.longest_retry_after:
            return None
        return failure.wait

    def _trace(
        self,
        prompt: Prompt,
        raw_answer: str | None,
        attempts: int,
        started: float,
        fallback_reason: str | None = None,
    ) -> WriterTrace:
        return WriterTrace(
            kind="llm",
            model=self.model,
            prompt=prompt.as_text(),
            raw_answer=raw_answer[:MAX_RAW_ANSWER_CHARS] if raw_answer is not None else None,
            attempts=attempts,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            fallback_reason=fallback_reason,
        )

    async def _attempt(self, prompt: Prompt) -> tuple[OfferDraft, str | None] | _Failure:
        """One request: the draft and the raw answer, or why there is none."""
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user},
        ]
        try:
            # The raw response keeps the answer's text when reading it fails.
            response = await self.client.chat.completions.with_raw_response.create(
                model=self.model, messages=messages, response_format=offer_draft_format()
            )
        except Exception as exc:  # every SDK fault ends in the fallback, never in the agent
            return _request_failure(exc)
        try:
            completion = response.parse()
        except Exception as exc:  # an answer the SDK cannot read at all
            return _Failure(f"unreadable answer ({_short(exc)})", True, response.text)
        if not completion.choices:
            return _Failure("an answer without choices", True, response.text)
        choice = completion.choices[0]
        content = choice.message.content
        if choice.finish_reason == "length":
            return _Failure("the answer was cut off at the length limit", True, content)
        if choice.finish_reason == "content_filter":
            return _Failure("the answer was stopped by the content filter", True)
        if choice.message.refusal:
            return _Failure(f"the model refused: {_short_text(choice.message.refusal)}", True)
        if not content:
            return _Failure("an empty answer", True, content)
        try:
            return OfferDraft.model_validate_json(content), content
        except ValidationError as exc:
            return _Failure(_invalid(exc), True, content)


@functools.cache
def offer_draft_format() -> ResponseFormatJSONSchema:
    """The structured output asked for: :class:`OfferDraft`'s strict JSON schema.

    Built once, as ``chat.completions.parse`` would build it on every call (5% of the
    worker's CPU with a model writing 50 offers a second); the answer is validated here.
    """
    return {
        "type": "json_schema",
        "json_schema": {
            "name": OfferDraft.__name__,
            "schema": to_strict_json_schema(OfferDraft),
            "strict": True,
        },
    }


def _request_failure(exc: Exception) -> _Failure:
    """Why a request failed, and whether another attempt could go better."""
    if isinstance(exc, openai.APITimeoutError):
        return _Failure("timeout", True)
    if isinstance(exc, openai.APIConnectionError):
        return _Failure(f"connection error ({_short(exc.__cause__ or exc)})", True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry = status in RETRIED_STATUSES or status >= 500
        wait = _retry_after(exc.response.headers) if status == 429 else None
        return _Failure(f"HTTP {status} ({_error_message(exc)})", retry, wait=wait)
    if isinstance(exc, ValidationError):
        return _Failure(_invalid(exc), True)
    log.exception("unexpected error from the model's client")
    return _Failure(f"unexpected error ({_short(exc)})", False)


def _error_message(exc: openai.APIStatusError) -> str:
    """The error's own message, when the body has one (OpenAI's shape), else the body."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return _short_text(message if isinstance(message, str) else exc.response.text or "no body")


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asks to wait: retry-after-ms, or Retry-After in seconds or as a
    date; None when it says nothing readable."""
    try:
        milliseconds = headers.get("retry-after-ms")
        if milliseconds is not None:
            return max(0.0, float(milliseconds) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _invalid(exc: ValidationError) -> str:
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        return "the answer is not valid JSON"
    where = ", ".join(
        ".".join(str(part) for part in error["loc"]) or "(the answer)" for error in exc.errors()[:3]
    )
    return f"the answer breaks the OfferDraft schema ({where})"


def _short(exc: BaseException) -> str:
    return _short_text(f"{type(exc).__name__}: {exc}")


def _short_text(text: str, most: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "…"
