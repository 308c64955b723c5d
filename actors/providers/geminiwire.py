"""Gemini's wire form of a call (``google-genai`` types): the conversation as
``contents``, the tools and sampling in ``GenerateContentConfig``, and the answer's text
and ``functionCall`` parts read back.

- An assistant turn is the ``model`` role; its tool calls are ``functionCall`` parts
  (with ``thought_signature`` set to the value Google documents for calls Gemini did not
  write itself, ``skip_thought_signature_validator``: the call may be another model's).
- A ``tool`` turn is a ``functionResponse`` part (``{"output": text}``, the function's
  name found from the call it answers); consecutive results share one ``user`` turn.
- Tools are ``function_declarations`` (the parameters as ``parameters_json_schema``);
  ``tool_choice`` is ``function_calling_config``: ``auto`` AUTO, ``required`` ANY, a named
  function ANY with ``allowed_function_names``, ``none`` NONE.
- Sampling: ``stop_sequences``, ``seed``, ``top_p``, ``presence_penalty``,
  ``frequency_penalty``; ``reasoning_effort`` becomes a thinking budget (``none`` 0,
  ``minimal`` 512, ``low`` 1024, ``medium`` 8192, ``high`` 24576, ``xhigh`` -1: dynamic).
  A model that refuses one answers 400 and the reply fails naming it.
  ``parallel_tool_calls`` has no Gemini form: with false, ``call_provider`` keeps the
  first of several calls (the one-call answer the flag asks for).
"""

from __future__ import annotations

from typing import Any

from google.genai import types

from actors.providers.base import ProviderRequest, tool_call
from messages.conversation import Message
from messages.errors import BadResponse
from messages.tools import ToolCall

FOREIGN_SIGNATURE = b"skip_thought_signature_validator"
THINKING_BUDGET = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": -1,
}
MODES = {"auto": "AUTO", "required": "ANY", "function": "ANY", "none": "NONE"}
MAX_CALLS = 128


def contents(request: ProviderRequest) -> Any:
    """The call as Gemini ``contents``: the conversation's earlier turns, then this
    call's prompt; the system prompt goes in ``system_instruction``."""
    if not request.history and request.prompt is not None:
        return request.prompt
    names = {c.id: c.name for m in request.history for c in m.tool_calls}
    out: list[types.Content] = []
    for message in request.history:
        content = _content(message, names)
        if out and content.role == "user" and message.role == "tool" and _is_results(out[-1]):
            out[-1].parts = [*(out[-1].parts or []), *(content.parts or [])]
        else:
            out.append(content)
    if request.prompt is not None:
        out.append(types.Content(role="user", parts=[types.Part(text=request.prompt)]))
    return out


def _is_results(content: types.Content) -> bool:
    return any(p.function_response is not None for p in content.parts or [])


def _content(message: Message, names: dict[str, str]) -> types.Content:
    if message.role == "tool":
        response = types.FunctionResponse(
            id=message.tool_call_id,
            name=names.get(message.tool_call_id or "", "unknown"),
            response={"output": message.text},
        )
        return types.Content(role="user", parts=[types.Part(function_response=response)])
    parts = [types.Part(text=message.text)] if message.text else []
    parts += [
        types.Part(
            function_call=types.FunctionCall(id=c.id, name=c.name, args=c.arguments),
            thought_signature=FOREIGN_SIGNATURE,
        )
        for c in message.tool_calls
    ]
    role = "model" if message.role == "assistant" else "user"
    return types.Content(role=role, parts=parts or [types.Part(text="")])


def config(request: ProviderRequest) -> types.GenerateContentConfig:
    """The call's ``GenerateContentConfig``: limits, sampling, tools, thinking."""
    sampling = request.sampling
    effort = sampling.reasoning_effort
    return types.GenerateContentConfig(
        system_instruction=request.system or None,
        max_output_tokens=request.max_tokens,
        temperature=request.temperature,
        seed=request.seed,
        stop_sequences=list(sampling.stop) or None,
        top_p=sampling.top_p,
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        thinking_config=None
        if effort is None
        else types.ThinkingConfig(thinking_budget=THINKING_BUDGET[effort]),
        tools=_tools(request),
        tool_config=_tool_config(request),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
        if request.tools
        else None,
    )


def _tools(request: ProviderRequest) -> Any:
    if not request.tools:
        return None
    declarations = [
        types.FunctionDeclaration(
            name=spec.name,
            description=spec.description,
            parameters_json_schema=spec.parameters,
        )
        for spec in request.tools
    ]
    return [types.Tool(function_declarations=declarations)]


def _tool_config(request: ProviderRequest) -> types.ToolConfig | None:
    choice = request.tool_choice
    if not request.tools or choice is None:
        return None
    calling = types.FunctionCallingConfig(
        mode=MODES[choice.mode],  # type: ignore[arg-type]  # the SDK takes the enum's name
        allowed_function_names=[choice.name] if choice.mode == "function" and choice.name else None,
    )
    return types.ToolConfig(function_calling_config=calling)


def read_parts(response: Any) -> tuple[str, tuple[ToolCall, ...]]:
    """A response's (or a streamed chunk's) text and function calls, first candidate."""
    candidates = getattr(response, "candidates", None) or []
    content = getattr(candidates[0], "content", None) if candidates else None
    parts = getattr(content, "parts", None) or []
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in parts:
        if getattr(part, "thought", None):
            continue  # thinking summaries are not the answer
        if isinstance(getattr(part, "text", None), str):
            texts.append(part.text)
        call = getattr(part, "function_call", None)
        if call is not None:
            if len(calls) >= MAX_CALLS:
                raise BadResponse(f"Gemini proposed more than {MAX_CALLS} calls")
            calls.append(tool_call(call.name, call.args or {}, call.id))
    return "".join(texts), tuple(calls)
