"""Light tasks (issue 20): a chat UI's housekeeping prompts (titles, tags, follow-ups)
go to ``[http] light_model`` alone, by header or by pattern, never to the whole panel."""

from __future__ import annotations

import pytest
from helpers import fake_models
from test_http import QUESTION, client, start

from actors.config import config_from_dict
from actors.daemon.http.light import LightTasks
from messages.errors import ConfigError

# Open WebUI's title task prompt begins so (its default TITLE_GENERATION_PROMPT_TEMPLATE)
TITLE_TASK = (
    "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history."
    "\n### Chat History:\n<chat_history>\nUSER: Capital of Australia?\n</chat_history>"
)


def models_asked(reply) -> list[list[str]]:
    rounds = reply.model_extra["orchestrord"]["rounds"]
    return [[r["model"] for r in rnd["replies"]] for rnd in rounds]


def test_a_marked_or_matching_request_goes_to_the_light_model_alone(daemon) -> None:
    d = start(
        daemon,
        models=fake_models(("a", "b", "quick"), reply="Canberra"),
        http_extra={"light_model": "quick", "light_patterns": [r"^### Task:"]},
    )
    api = client(d)
    marked = api.chat.completions.create(
        model="orchestrord", messages=QUESTION, extra_headers={"X-Orchestrord-Light": "1"}
    )
    assert models_asked(marked) == [["quick"]]
    title = [{"role": "user", "content": TITLE_TASK}]
    matched = api.chat.completions.create(model="orchestrord", messages=title, stream=True)
    job = next(c for c in matched if c.choices and c.choices[0].finish_reason)
    assert models_asked(job) == [["quick"]]
    plain = api.chat.completions.create(model="orchestrord", messages=QUESTION)
    assert sorted(models_asked(plain)[0]) == ["a", "b", "quick"]  # the panel


def test_without_a_light_model_the_header_changes_nothing(daemon) -> None:
    d = start(daemon)
    reply = client(d).chat.completions.create(
        model="orchestrord", messages=QUESTION, extra_headers={"X-Orchestrord-Light": "1"}
    )
    assert sorted(models_asked(reply)[0]) == ["a", "b"]


def test_patterns_see_the_last_user_message_text_parts_included() -> None:
    light = LightTasks("quick", [r"^### Task:", r"(a+)+$"])
    parts = {"role": "user", "content": [{"type": "text", "text": TITLE_TASK}]}
    assert light.wanted({}, {"messages": [parts]})
    earlier = [{"role": "user", "content": TITLE_TASK}, {"role": "user", "content": "hi"}]
    assert not light.wanted({}, {"messages": earlier})
    assert not light.wanted({}, {"messages": [{"role": "user", "content": "a" * 5000 + "b"}]})
    assert not LightTasks(None, [r"."]).wanted({"x-orchestrord-light": "1"}, {})


@pytest.mark.parametrize(
    ("http", "key"),
    [
        ({"light_model": "nope"}, "http.light_model"),
        ({"light_patterns": ["("]}, "http.light_patterns[0]"),
        ({"keepalive_s": 0}, "http.keepalive_s"),
        ({"header_timeout_s": -1}, "http.header_timeout_s"),
        ({"tool_results": "panel"}, "http.tool_results"),
    ],
)
def test_bad_http_settings_are_refused_naming_the_key(http, key) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"models": [{"name": "a", "provider": "fake"}], "http": http})
    assert str(caught.value).startswith(key)
