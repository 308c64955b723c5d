"""Shared pieces of the providers' tool tests: one call through a real adapter (the real
SDK talking real HTTP to a loopback server), and a tool conversation to send."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from actors.config import ModelConfig
from actors.providers import ProviderRequest, ProviderResponse, call_provider, make_provider
from messages.commands import Sampling
from messages.conversation import turns
from messages.tools import parse_tool_choice, parse_tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
AGENT = turns(
    [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
)
SAMPLING = Sampling(
    stop=("END",),
    top_p=0.5,
    presence_penalty=0.25,
    frequency_penalty=-0.25,
    reasoning_effort="low",
)


def request(
    *,
    tools: bool = True,
    choice: Any = None,
    stream: bool = False,
    history: bool = False,
    **fields: Any,
) -> ProviderRequest:
    """A call offering the weather tool (or not), optionally continuing ``AGENT``."""
    pieces: list[str] = []
    return ProviderRequest(
        model="m-test",
        prompt=None if history else "Weather in Paris?",
        system="Be brief.",
        max_tokens=50,
        temperature=0.2,
        seed=fields.pop("seed", 7),
        timeout_s=10.0,
        history=AGENT if history else (),
        tools=parse_tools([WEATHER]) if tools else (),
        tool_choice=None if choice is None else parse_tool_choice(choice),
        on_delta=pieces.append if stream else None,
        **fields,
    )


def call(
    provider: str, base_url: str, req: ProviderRequest, environ: dict | None = None, **options: Any
) -> ProviderResponse:
    """One call through ``provider``'s adapter; raises what ``call_provider`` raises."""
    from actors.providers import provider_class

    config = ModelConfig(
        name="m",
        provider=provider,
        model="m-test",
        base_url=base_url,
        options=provider_class(provider).validate_options("models[0]", options),
    )

    async def run() -> ProviderResponse:
        adapter = make_provider(config, environ or {})
        try:
            return await call_provider(adapter, req)
        finally:
            await adapter.aclose()

    return asyncio.run(run())


def openai_calls(calls: list[dict[str, Any]], text: str | None = None) -> dict[str, Any]:
    """A chat completion answering with ``calls`` (OpenAI's JSON)."""
    return {
        "id": "chatcmpl-tools",
        "object": "chat.completion",
        "created": 1,
        "model": "m-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "tool_calls": calls},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    }


def function(name: str, arguments: str, call_id: str = "call_9") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def openai_call_chunks(name: str, pieces: list[str], call_id: str = "call_s") -> list[dict]:
    """A streamed answer calling ``name``: the first delta names it, the rest carry the
    arguments' text in ``pieces``, then the finish reason and usage."""

    def chunk(choices: list[dict], **extra: Any) -> dict:
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"} | {
            "choices": choices,
            **extra,
        }

    first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name}}
    out = [chunk([{"index": 0, "delta": {"role": "assistant", "tool_calls": [first]}}])]
    for piece in pieces:
        delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        out.append(chunk([{"index": 0, "delta": delta}]))
    out.append(chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    out.append(chunk([], usage={"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}))
    return out


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)
