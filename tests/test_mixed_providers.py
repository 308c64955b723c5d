"""One job through actors.start with openai, gemini and llama together."""

from __future__ import annotations

from helpers import LoopbackServer, Reply, completion, gemini_content, ollama_stream

import actors


def test_one_job_uses_openai_gemini_and_llama_together() -> None:
    with LoopbackServer() as oa, LoopbackServer() as gem, LoopbackServer() as oll:
        oa.default = Reply(body=completion("from gpt"))
        gem.default = Reply(body=gemini_content("from gemini"))
        oll.default = Reply(body=ollama_stream("from llama"))
        config = {
            "models": [
                {"name": "gpt", "provider": "openai", "base_url": oa.base_url},
                {"name": "gemini", "provider": "gemini", "base_url": gem.root_url},
                {"name": "llama", "provider": "llama", "base_url": oll.root_url},
            ],
            "pipeline": {"synthesizer": "gemini"},
        }
        environ = {"OPENAI_API_KEY": "sk-1", "GEMINI_API_KEY": "g-1"}
        with actors.start(config, environ=environ) as orch:
            result = orch.ask("Say hello.")
    assert result.status == "ok"
    assert result.answer == "from gemini" and result.synthesizer == "gemini"
    initial = {r.model: r.text for r in result.rounds[0].replies}
    assert initial == {"gpt": "from gpt", "gemini": "from gemini", "llama": "from llama"}
    assert (len(oa.requests), len(gem.requests), len(oll.requests)) == (2, 3, 2)
    meta_prompt = oa.requests[1]["messages"][-1]["content"]
    assert all(t in meta_prompt for t in ("from gpt", "from gemini", "from llama"))
