"""`track proxy`: the metering proxy in the foreground, for agents started by hand (thin over `tracker.proxy`)."""

from __future__ import annotations

import signal
import threading

import click

from runners.context import AppContext, pass_app
from runners.options import prices_option
from tracker.analysis.cost_check import metered_total
from tracker.classify.redaction import redact
from tracker.domain.pricing import PriceTable, load_price_table
from tracker.domain.streams import check_campaign_name
from tracker.errors import UnknownCampaign
from tracker.eventstore.store import PatientStore
from tracker.proxy.server import MeteringProxy, default_upstream
from tracker.rerun.budget import spent_before


@click.command("proxy")
@click.option("--campaign", required=True, help="The campaign whose agents' requests are metered.")
@click.option("--upstream", default=None, metavar="URL",
              help="Where requests are forwarded (default: OPENAI_BASE_URL, else https://api.openai.com/v1).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it local).")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
@click.option("--budget-usd", default=None, type=click.FloatRange(0),
              help="Refuse (HTTP 402 budget_exceeded) the request that would pass this campaign total.")
@prices_option
@pass_app
def proxy_command(app: AppContext, campaign: str, upstream: str | None, host: str, port: int,
                  budget_usd: float | None, prices_path: str | None) -> None:
    """Meter every OpenAI API request of a campaign's agents: usage, errors, latency, as facts of the campaign.

    Point an agent at http://HOST:PORT/a/<attempt>/v1 (or /v1) as OPENAI_BASE_URL; its key passes through and is
    never stored. The first insufficient_quota or invalid_api_key answer records `campaign.stopped` (every
    `track run` of the campaign stops within a second) and nothing more is forwarded. Ctrl-C to stop.

    Example: track proxy --campaign trae-gpt5-a1c6d41 --budget-usd 300
    """
    check_campaign_name(campaign)
    store = PatientStore.around(app.store(create=True), 120.0)
    prices = load_price_table(prices_path)
    spent = _spent(app, campaign, prices)
    proxy = MeteringProxy(store, campaign, upstream=upstream or default_upstream(), host=host, port=port,
                          budget_usd=budget_usd, spent_before_usd=spent, prices=prices).start()
    click.echo(redact(f"metering {campaign} on {proxy.base_url} -> {proxy.upstream} (spent so far ${spent:.2f}); "
                      f"agents: OPENAI_BASE_URL={proxy.attempt_url('<attempt>')}"), err=True)
    stop = threading.Event()
    # Ctrl-C and a supervisor's TERM both stop it cleanly (the facts still queued are written), also when the
    # shell that started it in the background left SIGINT ignored.
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while proxy.alive() and not stop.wait(0.5):
            pass
    finally:
        proxy.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo(f"stopped; {proxy.writer.appended} requests recorded", err=True)


def _spent(app: AppContext, campaign: str, prices: PriceTable) -> float:
    """What the campaign spent so far: its recorded attempts, or what the proxy metered, whichever is more."""
    store = app.current_store()
    try:
        recorded = spent_before(store, campaign, prices)
    except UnknownCampaign:
        recorded = 0.0
    return max(recorded, metered_total(store, campaign, prices))
