"""`track run --proxy`: the metering proxy of the run's campaign, and each agent's way to it.

Each agent gets `OPENAI_BASE_URL=http://127.0.0.1:PORT/a/<claim token>/v1`, so every request it makes
is a fact of its attempt (`attempt.started` carries the same token). The proxy forwards to what the
agents would have used (`OPENAI_BASE_URL` of their environment, else the OpenAI API).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracker.domain.events import JsonDict
from tracker.domain.pricing import load_price_table
from tracker.eventstore.store import EventStore
from tracker.proxy.app import StopHandler
from tracker.proxy.server import MeteringProxy, default_upstream

if TYPE_CHECKING:
    from tracker.rerun.execution import RunConfig

PROXY_DOWN = "proxy_down"
"""The stop category when the run's proxy stops serving: the agents would fail one by one."""


class MeteredAgents:
    """The proxy a run starts for its campaign (see module docstring)."""

    def __init__(self, store: EventStore, config: RunConfig, metadata: JsonDict, on_stop: StopHandler) -> None:
        self.store, self.config, self.metadata, self.on_stop = store, config, metadata, on_stop
        self.proxy: MeteringProxy | None = None

    def start(self, spent_before_usd: float) -> None:
        config = self.config
        self.proxy = MeteringProxy(
            self.store, config.campaign, upstream=config.proxy_upstream or default_upstream(config.env),
            port=config.proxy_port, budget_usd=config.budget_usd, spent_before_usd=spent_before_usd,
            prices=load_price_table(config.price_table), on_stop=self.on_stop, metadata=self.metadata).start()

    @property
    def url(self) -> str:
        return self.proxy.base_url if self.proxy else "-"

    def alive(self) -> bool:
        return self.proxy is not None and self.proxy.alive()

    def env(self, attempt_id: str, env: dict[str, str] | None) -> dict[str, str]:
        """The agent's environment with its attempt's base URL."""
        assert self.proxy is not None
        return {**(env or {}), "OPENAI_BASE_URL": self.proxy.attempt_url(attempt_id)}

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
