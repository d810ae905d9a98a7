"""Large real-shaped files written by streaming, for size and memory tests and benchmarks."""

from __future__ import annotations

import json
import random
from pathlib import Path


def write_big_trajectory(path: Path, megabytes: int, seed: int = 0) -> dict[str, int]:
    """A trajectory of about `megabytes` MB, streamed to disk; returns its token sums."""
    rng = random.Random(seed)
    sums = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0}
    filler = "x" * 4000
    target = megabytes * 1024 * 1024
    with open(path, "w") as out:
        out.write('{"task": "big", "provider": "openai", "model": "gpt-5", "max_steps": 100000, "llm_interactions": [')
        written, i = 0, 0
        while written < target:
            usage = {"input_tokens": rng.randint(1000, 9000), "output_tokens": rng.randint(10, 900),
                     "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "reasoning_tokens": 0}
            usage["cache_read_input_tokens"] = usage["input_tokens"] // 2
            for key, source in (("input_tokens", "input_tokens"), ("cached_input_tokens", "cache_read_input_tokens"),
                                ("output_tokens", "output_tokens")):
                sums[key] += usage[source]
            chunk = json.dumps({"timestamp": "2025-12-01T00:00:00+00:00", "input_messages": [
                {"role": "user", "content": filler}], "response": {"content": filler, "usage": usage}})
            out.write(("," if i else "") + chunk)
            written += len(chunk)
            i += 1
        out.write('], "agent_steps": [], "success": true, "final_result": "done", "execution_time": 1.0}')
    return sums
