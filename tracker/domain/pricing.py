"""Cost from tokens, by a versioned price table (never a hard-coded guess).

OpenAI counts cached tokens inside input tokens and reasoning tokens inside output tokens, so the
bill is: (input - cached) at the input rate + cached at the cached rate + output at the output rate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tracker.errors import TrackerError
from tracker.isobench.discovery import normalise_model


@dataclass(frozen=True)
class ModelPrice:
    input: float
    cached_input: float
    output: float

    def bill(self, total_input: Any, cached_input: Any, output: Any) -> Any:
        """USD for tokens counted the OpenAI way (cached inside input). The one cost formula: it
        works on plain numbers and, element-wise, on numpy arrays or pandas columns alike."""
        return ((total_input - cached_input) * self.input + cached_input * self.cached_input
                + output * self.output) / 1_000_000


def billed_model(model: Any, usage_model: Any) -> str | None:
    """The model the tokens were spent on: the one the agent's usage names (a `default` model folder
    does not say), else the campaign's. The one rule every cost uses."""
    if isinstance(usage_model, str) and usage_model:
        return usage_model
    return model if isinstance(model, str) and model else None


@dataclass(frozen=True)
class PriceTable:
    version: str
    models: dict[str, ModelPrice]

    def price_for(self, model: str | None) -> ModelPrice | None:
        """The price of a model, matching dated snapshots (`gpt-5-2025-08-07`) to their family."""
        if not isinstance(model, str) or not model:  # a read-model row can lack its model (NaN in pandas)
            return None
        name = model.lower()
        if name in self.models:
            return self.models[name]
        return self.models.get(normalise_model(name))

    def cost_usd(self, model: str | None, input_tokens: int | None, cached_input_tokens: int | None,
                 output_tokens: int | None) -> float | None:
        """The cost of one attempt, or None when the model has no price or no tokens are known."""
        price = self.price_for(model)
        if price is None or (input_tokens is None and output_tokens is None):
            return None
        total_in = input_tokens or 0
        return round(float(price.bill(total_in, min(cached_input_tokens or 0, total_in), output_tokens or 0)), 6)

    def cost_column(self, frame: Any) -> Any:
        """`cost_usd` on a frame's whole columns (`model`, `usage_model` if present, the three token counts):
        NaN where the model has no price or no token is known. A 20,000-attempt frame in milliseconds."""
        import numpy as np
        import pandas as pd

        models = frame["model"] if "usage_model" not in frame else pd.Series(
            [billed_model(m, u) for m, u in zip(frame["model"], frame["usage_model"], strict=True)],
            index=frame.index, dtype=object)
        cost = pd.Series(np.nan, index=frame.index, dtype="float64")
        total_in = frame["input_tokens"].astype("float64").fillna(0)
        cached = np.minimum(frame["cached_input_tokens"].astype("float64").fillna(0), total_in)
        output = frame["output_tokens"].astype("float64").fillna(0)
        known = frame["input_tokens"].notna() | frame["output_tokens"].notna()
        for model in models.dropna().unique():
            price = self.price_for(model)
            if price is not None:
                rows = (models == model) & known
                cost[rows] = price.bill(total_in, cached, output)[rows].round(6)
        return cost


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """The packaged table, or an override file in the same JSON format."""
    try:
        if path is None:
            raw: dict[str, Any] = json.loads(resources.files("tracker").joinpath("data/prices.json").read_text())
        else:
            raw = json.loads(Path(path).read_text())
        models = {name.lower(): ModelPrice(float(p["input"]), float(p["cached_input"]), float(p["output"]))
                  for name, p in raw["models"].items()}
        return PriceTable(version=str(raw["version"]), models=models)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrackerError(f"cannot read price table {path}: {exc}") from None
