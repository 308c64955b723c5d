"""The peer: a plain ``asyncio.gather`` + tenacity orchestrator, written faithfully.

What most multi-model projects do: one ``AsyncOpenAI`` client per model, the same three
rounds (initial, meta with anonymised shuffled answers, synthesis by the first model),
``asyncio.gather`` per round, and tenacity retrying 429/5xx/connection errors with
random exponential backoff. No limiter, no admission control. It uses the same prompt
templates as orchestrord so both send the same bytes.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import openai
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from actors.prompts import DEFAULT_TEMPLATES

RETRYABLE = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APIConnectionError,
    openai.APITimeoutError,
)


@dataclass
class PeerResult:
    answer: str | None
    ok: bool
    latency_s: float
    calls: int = 0
    retries: int = 0
    error: str | None = None


@dataclass
class PeerOrchestrator:
    base_url: str
    models: list[str]
    max_tokens: int = 64
    max_attempts: int = 8
    clients: dict[str, openai.AsyncOpenAI] = field(default_factory=dict)
    retries: int = 0

    def __post_init__(self) -> None:
        for model in self.models:
            self.clients[model] = openai.AsyncOpenAI(
                api_key="bench", base_url=self.base_url, max_retries=0, timeout=60
            )

    async def call(self, model: str, prompt: str) -> str:
        messages = [
            {"role": "system", "content": DEFAULT_TEMPLATES["system"]},
            {"role": "user", "content": prompt},
        ]
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            wait=wait_random_exponential(multiplier=0.5, max=20),
            stop=stop_after_attempt(self.max_attempts),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.retries += 1
                completion = await self.clients[model].chat.completions.create(
                    model=model,
                    messages=messages,
                    max_tokens=self.max_tokens,  # type: ignore[arg-type]
                )
                return completion.choices[0].message.content or ""
        raise AssertionError("unreachable")

    @staticmethod
    def labelled(answers: list[str]) -> str:
        shuffled = random.sample(answers, len(answers))
        return "\n\n".join(f"Answer {chr(65 + i)}:\n{a}" for i, a in enumerate(shuffled))

    async def ask(self, prompt: str) -> PeerResult:
        started = time.perf_counter()
        try:
            initial = await asyncio.gather(*(self.call(m, prompt) for m in self.models))
            meta_prompt = DEFAULT_TEMPLATES["meta"].format(
                prompt=prompt, answers=self.labelled(list(initial)), round=2
            )
            meta = await asyncio.gather(*(self.call(m, meta_prompt) for m in self.models))
            synthesis_prompt = DEFAULT_TEMPLATES["synthesis"].format(
                prompt=prompt, answers=self.labelled(list(meta)), round=3
            )
            answer = await self.call(self.models[0], synthesis_prompt)
        except Exception as exc:  # a job that gives up counts as failed, as for orchestrord
            return PeerResult(None, False, time.perf_counter() - started, error=repr(exc))
        return PeerResult(
            answer, True, time.perf_counter() - started, calls=2 * len(self.models) + 1
        )

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def run_batch(peer: PeerOrchestrator, prompts: list[str]) -> list[PeerResult]:
    return list(await asyncio.gather(*(peer.ask(p) for p in prompts)))


def peer_stats(peer: PeerOrchestrator) -> dict[str, Any]:
    return {"retries": peer.retries}
