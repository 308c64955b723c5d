"""The HTTP door with the clients people use (docs/clients.md shows each one): LangChain's
``ChatOpenAI`` and the ``llm`` CLI, talking real HTTP to a real daemon. (The openai SDK
and curl are in test_http.py, tools in test_http_tools.py.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pydantic
import pytest
from helpers import WAIT, fake_models
from test_http import KEY, start

ROOT = Path(__file__).resolve().parents[2]
LLM = ROOT / ".venv" / "bin" / "llm"


class City(pydantic.BaseModel):
    city: str


def test_langchain_invokes_streams_and_gets_structured_output(daemon) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    d = start(daemon, models=fake_models(("a", "b"), reply='{"city": "Canberra"}'))
    chat = langchain_openai.ChatOpenAI(
        base_url=f"{d.url}/v1", api_key=KEY, model="orchestrord", max_retries=0, timeout=WAIT
    )
    assert chat.invoke("Capital of Australia?").content == '{"city": "Canberra"}'
    assert "".join(str(c.content) for c in chat.stream("Capital?")) == '{"city": "Canberra"}'
    structured = chat.with_structured_output(City, method="json_schema")
    assert structured.invoke("Capital of Australia?") == City(city="Canberra")
    assert list(structured.stream("Capital of Australia?"))[-1] == City(city="Canberra")


def test_the_llm_cli_with_an_extra_openai_model(daemon, tmp_path) -> None:
    d = start(daemon, models=fake_models(("a", "b"), reply="Canberra is the capital."))
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: orchestrord\n  model_name: orchestrord\n"
        f"  api_base: {d.url}/v1\n  api_key_name: orchestrord\n"
    )
    (tmp_path / "keys.json").write_text(json.dumps({"orchestrord": KEY}))
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path)}
    for extra in ([], ["--no-stream"]):
        done = subprocess.run(
            [str(LLM), "-m", "orchestrord", *extra, "Capital of Australia?"],
            capture_output=True,
            text=True,
            env=env,
            timeout=WAIT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Canberra is the capital."


def test_the_llm_cli_runs_the_panels_tool_call_and_gets_the_answer(daemon, tmp_path) -> None:
    call = {"name": "weather", "arguments": {"city": "Paris"}}
    models = fake_models(("a", "b", "c"), reply="It is sunny in Paris.", tool_calls=[[call], []])
    d = start(daemon, models=models)  # each model's 1st call proposes it, its 2nd answers
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: orchestrord\n  model_name: orchestrord\n  supports_tools: true\n"
        f"  api_base: {d.url}/v1\n  api_key_name: orchestrord\n"
    )
    (tmp_path / "keys.json").write_text(json.dumps({"orchestrord": KEY}))
    tool = 'def weather(city: str) -> str:\n    return "sunny, 21 C"\n'
    done = subprocess.run(
        [str(LLM), "-m", "orchestrord", "--functions", tool, "--td", "Weather in Paris?"],
        capture_output=True,
        text=True,
        env={**os.environ, "LLM_USER_PATH": str(tmp_path)},
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "weather" in done.stdout + done.stderr  # --td shows the tool it ran
    assert done.stdout.strip().endswith("It is sunny in Paris.")
