"""The metering proxy as a running server: uvicorn on a thread of its own, the fact writer beside it.

`track proxy` runs one in the foreground; `track run --proxy` starts one for its campaign and gives
each agent `OPENAI_BASE_URL=http://127.0.0.1:PORT/a/<attempt_id>/v1`. Stopping the campaign is the
`on_stop` handler's job: by default (`track proxy`) it records `campaign.stopped`, which every runner
of the campaign obeys within a second; `track run` passes its own, which also ends its running items.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import uvicorn

from tracker.domain.events import JsonDict, default_metadata
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.domain.run_events import CampaignStopped
from tracker.domain.streams import campaign_stream, meter_stream
from tracker.errors import TrackerError
from tracker.eventstore.store import EventStore
from tracker.proxy.app import Guard, MeteringApp, StopHandler, Upstream
from tracker.proxy.writer import FactWriter

OPENAI_API = "https://api.openai.com/v1"


def default_upstream(env: dict[str, str] | None = None) -> str:
    """`OPENAI_BASE_URL` (of `env`, then of this process), else the OpenAI API."""
    return ((env or {}).get("OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or OPENAI_API).rstrip("/")


class MeteringProxy:
    """Start with `with MeteringProxy(store, "camp").start() as proxy: proxy.attempt_url(token)`."""

    def __init__(self, store: EventStore, campaign: str, *, upstream: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, budget_usd: float | None = None, spent_before_usd: float = 0.0,
                 prices: PriceTable | None = None, on_stop: StopHandler | None = None,
                 metadata: JsonDict | None = None, flush_every_s: float = 0.5) -> None:
        self.store, self.campaign, self.host = store, campaign, host
        self.upstream = (upstream or default_upstream()).rstrip("/")
        self.metadata = metadata or default_metadata(command="proxy", campaign=campaign)
        self.writer = FactWriter(store, meter_stream(campaign), self.metadata, every_s=flush_every_s)
        self.guard = Guard(campaign, prices or load_price_table(), budget_usd, spent_before_usd,
                           on_stop or self._record_stop)
        self.app = MeteringApp(campaign, Upstream(self.upstream), self.guard, self.writer)
        self._socket = _bind(host, port)
        self._port = int(self._socket.getsockname()[1])  # kept: a server that stopped has closed its socket
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on", http="auto",
                                loop="auto", server_header=False, date_header=False, timeout_keep_alive=60)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="track-proxy", daemon=True)

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def attempt_url(self, attempt_id: str) -> str:
        """The base URL an agent of this attempt is given (its facts carry the attempt id)."""
        return f"http://{self.host}:{self.port}/a/{attempt_id}/v1"

    def start(self, timeout_s: float = 15.0) -> MeteringProxy:
        self.writer.start()
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.writer.close()
                raise TrackerError(f"the metering proxy did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def alive(self) -> bool:
        """Serving: its thread runs and nobody asked it to exit."""
        return self._thread.is_alive() and not self.server.should_exit

    def close(self) -> None:
        """Stop serving, then append every fact still queued."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._socket.close()
        self.writer.close()

    def __enter__(self) -> MeteringProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        self.server.run(sockets=[self._socket])

    def _record_stop(self, category: str, detail: str) -> None:
        """`campaign.stopped`, which every runner of the campaign reads within a second and obeys."""
        reason = "budget" if category == "budget" else f"{category}: every further request would fail and cost"
        event = CampaignStopped(reason=reason, category=category, detail=detail, host=socket.gethostname(),
                                items_left=0)
        self.store.append(campaign_stream(self.campaign), [event.to_new_event(metadata=self.metadata)])


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now, so the port is known (and taken) before the server runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP proto: asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TrackerError(f"the metering proxy cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock
