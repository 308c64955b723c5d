"""What a Chat Completions request carries reaches the models (CONTRACT §13): every
message form, and the sampling fields, through the door to the provider."""

from __future__ import annotations

import json

import httpx2
from daemon_helpers import rpc
from helpers import WAIT
from test_http import KEY, client, start

FORMS = [
    {"role": "developer", "content": "Answer briefly."},
    {
        "role": "user",
        "name": "ann",
        "content": [{"type": "text", "text": "Weather"}, {"type": "text", "text": "in Paris?"}],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
    {"role": "user", "content": "And tomorrow?"},
]


def test_every_message_form_reaches_the_job(daemon) -> None:
    d = start(daemon)
    reply = client(d).chat.completions.create(model="a", messages=FORMS)
    assert reply.choices[0].message.content == "Canberra is the capital."
    record = rpc(d, "job", {"job_id": reply.id.removeprefix("chatcmpl-")})["result"]
    assert record["prompt"] == "And tomorrow?"
    assert [m["role"] for m in record["messages"]] == [m["role"] for m in FORMS]


def test_an_image_part_is_refused_by_name(daemon) -> None:
    d = start(daemon)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = {
        "model": "orchestrord",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}],
    }
    response = httpx2.post(
        f"{d.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=WAIT,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "messages" and "messages[0].content[1]" in error["message"]
    assert "image_url" in error["message"]


def test_the_sampling_fields_reach_the_provider(daemon) -> None:
    d = start(daemon, models=[{"name": "a", "provider": "fake", "reply": "{params}"}])
    reply = client(d).chat.completions.create(
        model="a",
        messages=[{"role": "user", "content": "q"}],
        stop=["\n\n"],
        seed=7,
        top_p=0.5,
        presence_penalty=0.25,
        frequency_penalty=-0.25,
        reasoning_effort="low",
        max_completion_tokens=33,
        temperature=0.1,
    )
    received = json.loads(reply.choices[0].message.content)
    assert received["stop"] == ["\n\n"] and received["seed"] == 7 and received["top_p"] == 0.5
    assert received["presence_penalty"] == 0.25 and received["frequency_penalty"] == -0.25
    assert received["reasoning_effort"] == "low"
