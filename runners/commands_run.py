"""Commands of the GPU host: plan, estimate, preflight, run, status (thin over `tracker.rerun`)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from runners.context import AppContext, pass_app
from runners.options import category_choice, json_option, mlflow_options, prices_option, repo_option
from runners.output import emit_json, format_table
from tracker.domain.outcomes import LEVELS
from tracker.domain.streams import campaign_stream
from tracker.rerun.estimate import estimate_plan
from tracker.rerun.execution import RunConfig, RunProgress, StopControl, run_campaign
from tracker.rerun.planning import ARMS, POLICIES, SCOPES, make_plan, plan_from_files, record_plan
from tracker.rerun.preflight import run_preflight
from tracker.rerun.setup_check import check_setup
from tracker.rerun.status import campaign_status

EXIT_PROBLEM = 1
EXIT_INTERRUPTED = 130


@click.command("plan")
@click.argument("from_campaign", metavar="BASELINE")
@click.option("--select", "policy", type=click.Choice(list(POLICIES)), default="any-failed", show_default=True,
              help="any-failed: at least one failed attempt (the team's); latest-failed; never-succeeded.")
@click.option("--level", type=click.Choice(LEVELS), default="agent", show_default=True,
              help="Outcome level that counts as success: agent finished, patch, tests passed, faster.")
@click.option("--scope", type=click.Choice(SCOPES), default="all", show_default=True,
              help="Attempts that count: all, or only those the evaluation measured (the team's: with any-failed).")
@click.option("--category", "categories", multiple=True, type=category_choice,
              help="Only commits whose last failure has this root cause (repeatable).")
@repo_option(multiple=True)
@click.option("--tag", default=None, help="Tag of the rerun item ids (default from the model: gpt5).")
@click.option("--control", default=0, show_default=True, type=click.IntRange(0),
              help="Also rerun this many commits that did not fail (a seeded random sample): the control arm "
                   "that measures what a rerun changes by itself.")
@click.option("--old-agent", default=0, show_default=True, type=click.IntRange(0),
              help="Move this many of the failed commits (a seeded random sample) to an old-agent arm: bench plans "
                   "*_old_agent_plan.json to run with the agent before its fix, measuring what a rerun fixes alone.")
@click.option("--seed", default=0, show_default=True, help="Seed of the arms' draws (same seed, same arms).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the commit lists and bench plans.")
@click.option("--repo-root", default=None, metavar="DIR",
              help="Folder holding the repo checkouts (plan 'repo' = DIR/<repo>).")
@json_option
@pass_app
def plan_command(app: AppContext, from_campaign: str, policy: str, level: str, scope: str,
                 categories: tuple[str, ...], repos: tuple[str, ...], tag: str | None, control: int,
                 old_agent: int, seed: int, out_dir: Path, repo_root: str | None, as_json: bool) -> None:
    """Write the commits of campaign BASELINE to rerun as commit lists and bench plans (one per repo).

    The team's list of failed commits: --select any-failed --scope evaluated. Add --control N for a
    control arm: N commits that did not fail, rerun alike, so `compare` can tell the fix from the noise;
    add --old-agent M to run M of the failed commits with the old agent (its own bench plans), so
    `compare` can tell what the fix did from what a rerun fixes by itself.

    Example: track plan trae-gpt5 --select any-failed --scope evaluated --control 20 --out plans/ --repo-root ~/repos
    """
    plan = make_plan(app.current_store(create=True), from_campaign, out_dir, list(categories), list(repos), repo_root,
                     policy=policy, level=level, scope=scope, tag=tag, control=control, seed=seed,
                     old_agent=old_agent)
    if as_json:
        emit_json(plan.to_dict())
        return
    click.echo(f"plan {plan.plan_id}: {len(plan.items)} of {plan.selection['commits_in_campaign']} commits of "
               f"{from_campaign}: {plan.selection['rule']}")
    arms = Counter(item.arm for item in plan.items)
    if len(arms) > 1:
        click.echo("arms: " + ", ".join(f"{arm.replace('_', ' ')} {arms[arm]}" for arm in ARMS if arms[arm]))
    click.echo(format_table([{"repo": k, "commits": v} for k, v in plan.selection["by_repo"].items()]))
    click.echo(format_table([{"last_failure": k, "commits": v} for k, v in plan.selection["by_category"].items()]))
    for file in plan.files:
        click.echo(f"  wrote {file}")


@click.command("estimate")
@click.argument("plans", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--baseline", required=True, help="Campaign whose measured usage the estimate is based on.")
@prices_option
@click.option("--buffer", default=0.2, show_default=True, type=click.FloatRange(0, 10),
              help="Safety margin, shown separately (0.2 = 20%).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Items run at once (for the wall time).")
@click.option("--campaign", default=None, help="Also record the estimate as plan.created of this rerun campaign.")
@json_option
@pass_app
def estimate_command(app: AppContext, plans: tuple[Path, ...], baseline: str, prices_path: str | None, buffer: float,
                     workers: int, campaign: str | None, as_json: bool) -> None:
    """Expected tokens, cost and wall time of a plan, from what the baseline actually measured.

    Example: track estimate plans/trae_gpt-5_vllm_plan.json --baseline trae-gpt5-original --workers 4
    """
    store = app.current_store()
    plan = plan_from_files(list(plans), baseline)
    estimate = estimate_plan(store, plan.items, baseline, price_table=prices_path, buffer=buffer, workers=workers)
    if campaign:
        record_plan(store, plan, stream=campaign_stream(campaign), estimate=estimate)
    if as_json:
        emit_json(estimate)
        return
    click.echo(f"{estimate['items']} items, baseline {baseline}, prices {estimate['price_table_version']}")
    rows = [{"repo": repo, "items": v["items"], "input_tokens": v["tokens"]["input"],
             "cached_input": v["tokens"]["cached_input"], "output_tokens": v["tokens"]["output"],
             "cost_usd": v["cost_usd"], "agent_hours": round(v["agent_time_s"] / 3600, 2),
             "basis": ", ".join(f"{k}={n}" for k, n in v["basis"].items())} for repo, v in estimate["per_repo"].items()]
    click.echo(format_table(rows))
    click.echo(f"estimate: ${estimate['cost_usd']:.2f}  + buffer {estimate['buffer']:.0%} "
               f"(${estimate['buffer_usd']:.2f}) = ${estimate['cost_usd_with_buffer']:.2f}")
    click.echo(f"wall time with {workers} worker(s): {estimate['wall_time_s'] / 3600:.2f} h "
               f"(agent time {estimate['agent_time_s'] / 3600:.2f} h)")


@click.command("preflight")
@click.option("--model", default="gpt-5", show_default=True, help="Model the tiny generation asks for.")
@click.option("--timeout", "timeout_s", default=20.0, show_default=True, help="Seconds per request.")
@click.option("--retries", default=3, show_default=True, type=click.IntRange(1, 10), help="Tries per transient error.")
@click.option("--retry-wait", default=1.0, show_default=True, help="First back-off in seconds (doubles).")
@click.option("--no-key-check", "no_key_check", is_flag=True,
              help="Do not check that the key looks like an OpenAI key (checked only against the OpenAI API).")
@json_option
def preflight_command(model: str, timeout_s: float, retries: int, retry_wait: float, no_key_check: bool,
                      as_json: bool) -> None:
    """Check the API key, endpoint, model and a tiny generation (the only way to see an exhausted quota).

    The key's shape (sk-…) is checked only when the base URL is the OpenAI API itself: a compatible server
    (vLLM, Azure, a proxy; OPENAI_BASE_URL) takes its own keys, such as EMPTY. A connection error names the
    URL tried. Exit code 0 all checks passed, 1 the API refused or failed, 2 no usable key configured.

    Example: OPENAI_API_KEY=... track preflight --model gpt-5

    Example: OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=EMPTY track preflight --model my-model
    """
    report = run_preflight(model, timeout_s=timeout_s, retries=retries, wait_s=retry_wait,
                           key_check=not no_key_check)
    if as_json:
        emit_json(report.to_dict())
    else:
        for check in report.checks:
            mark = {True: "ok  ", False: "FAIL", None: "skip"}[check.ok]
            extra = f" [{check.category}]" if check.category else ""
            tries = f" ({check.attempts} tries)" if check.attempts > 1 else ""
            click.echo(f"{mark} {check.name:<10} {check.detail}{extra}{tries}")
    if report.category == "malformed_api_key":
        click.echo("(a key of another shape that the OpenAI API takes: pass --no-key-check)", err=True)
    raise click.exceptions.Exit(report.exit_code)


class _TemplateCommand(click.Command):
    """Everything after `--` is the agent command template, not more PLAN arguments."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            index = args.index("--")
            ctx.meta["template"] = args[index + 1:]
            args = args[:index]
        return super().parse_args(ctx, args)


@click.command("run", cls=_TemplateCommand)
@click.argument("plans", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", required=True, help="Name of the rerun campaign (created on first run).")
@click.option("--baseline", required=True, help="The campaign being rerun (estimates, comparison).")
@click.option("--fix-commit", required=True, help="The agent fix commit this rerun tests (e.g. a1c6d41).")
@click.option("--agent", default="trae", show_default=True, help="Agent the campaign records (TRAE by default).")
@click.option("--model", default="gpt-5", show_default=True, help="Model the campaign records.")
@click.option("--bench-root", default=".", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="The ISO-Bench checkout (the bench runs there and writes state/runs).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Items run at once.")
@click.option("--budget-usd", default=None, type=click.FloatRange(0), help="Start no item that would pass this.")
@click.option("--item-timeout-min", default=None, type=click.FloatRange(0), help="Kill an item after this long.")
@click.option("--max-attempts", default=3, show_default=True, type=click.IntRange(1), help="Per commit, all runs.")
@click.option("--retries", "transient_retries", default=3, show_default=True, type=click.IntRange(0),
              help="Retries of a rate-limited or disconnected item within this run.")
@click.option("--retry-wait", default=30.0, show_default=True, help="First back-off in seconds (doubles).")
@click.option("--lease", "lease_s", default=300.0, show_default=True, help="Claim lease in seconds (heartbeat: 1/3).")
@click.option("--store-outage", "store_outage_s", default=120.0, show_default=True, type=click.FloatRange(0),
              help="Seconds the store may be unreachable before the run gives up (agents keep running).")
@click.option("--python", default=None,
              help="Python of the bench environment (default: the bench root's .venv or venv, else $TRAE_PYTHON, "
                   "else track's own).")
@click.option("--bench-module", default="bench.cli", show_default=True, help="Python module of the bench CLI.")
@click.option("--task", "task_yaml", default="tasks/{repo}.yaml", show_default=True,
              help="Task file passed to prepare, relative to --bench-root ({repo}, {task_id} filled in).")
@click.option("--bench-cfg", default="bench.yaml", show_default=True, help="Bench config, relative to --bench-root.")
@click.option("--log-dir", default="mlruns/attempt-logs", show_default=True, type=click.Path(path_type=Path),
              help="Where each attempt's stdout/stderr log is kept.")
@click.option("--proxy", is_flag=True,
              help="Run the metering proxy for the campaign and point each agent at it (OPENAI_BASE_URL): every "
                   "API request recorded with its usage, a quota or key error stops the campaign at once, the "
                   "budget is enforced per request.")
@click.option("--proxy-upstream", default=None, metavar="URL",
              help="Where the proxy forwards (default: OPENAI_BASE_URL, else the OpenAI API).")
@click.option("--proxy-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="The proxy's port on 127.0.0.1 (0: any free one).")
@prices_option
@click.option("--stream", "stream_output", is_flag=True, help="Print the agents' output instead of a progress bar.")
@click.option("--check", "check_only", is_flag=True,
              help="Only prove the setup for the first item (bench, task file, interpreter, repo, agent program, "
                   "worktree); starts no agent, records nothing.")
@mlflow_options("project the results into MLflow at the end")
@json_option
@pass_app
@click.pass_context
def run_command(ctx: click.Context, app: AppContext, plans: tuple[Path, ...], stream_output: bool, check_only: bool,
                to_mlflow: bool, mlflow_uri: str | None, as_json: bool, **settings: Any) -> None:
    """Run every item of PLAN once (skipping commits that already succeeded), recording each attempt.

    By default each item runs `python -m bench.cli prepare tasks/<repo>.yaml --from-plan <one-item plan>
    --bench-cfg bench.yaml --max-workers 1 --resume --run-id <repo>/<agent>/<model>/<ts>` in --bench-root;
    a template after `--` (placeholders {item_id} {human} {pre} {plan} {workdir}) runs any other agent.
    Ctrl-C once: finish the running items and stop; twice: stop them too. Exit 0 every item ran, 1 the campaign stopped
    early (quota, invalid key, budget, a broken setup) or --check found a problem, 130 interrupted. The
    long line fits in track.toml's [run] table.

    Example: track run plans/trae_gpt-5_vllm_plan.json --campaign rerun-a1c6d41 --baseline trae-gpt5-original
    --fix-commit a1c6d41 --bench-root ~/ISO-Bench --workers 2 --budget-usd 150
    """
    config = _run_config(settings, ctx.meta.get("template") or None)
    if check_only:
        _check(list(plans), config, as_json)
        return
    stop = StopControl()
    _install_sigint(stop)
    result = _run_with_progress(app, list(plans), config, stop, hidden=as_json or stream_output,
                                stream=stream_output)
    synced = _sync(app, mlflow_uri, quiet=as_json) if to_mlflow else None
    if as_json:
        emit_json({**result.to_dict(), "mlflow": synced})
    else:
        _print_run(config.campaign, result, stop)
    if stop.interrupts or (stop.reason and stop.reason.startswith("interrupted")):
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    if result.stopped:
        raise click.exceptions.Exit(EXIT_PROBLEM)


def _run_with_progress(app: AppContext, plans: list[Path], config: RunConfig, stop: StopControl, hidden: bool,
                       stream: bool) -> RunProgress:
    """The run, with a progress bar on stderr (or the agents' output, with `--stream`)."""
    lock = threading.Lock()
    bar_state: dict[str, Any] = {"done": 0}
    bar: Any
    with click.progressbar(length=1, label=f"run {config.campaign}", file=sys.stderr, show_pos=True,
                           item_show_func=_progress_text, hidden=hidden) as bar:
        def progress(snapshot: RunProgress) -> None:
            with lock:
                bar.length = snapshot.total
                finished = snapshot.done + snapshot.skipped
                bar.update(finished - bar_state["done"], current_item=snapshot)
                bar_state["done"] = finished

        echo = (lambda line: click.echo(line, err=True)) if stream else None
        return run_campaign(app.current_store(create=True), plans, config, stop, progress, echo)


def _run_config(settings: dict[str, Any], template: list[str] | None) -> RunConfig:
    """The run's settings in the library's names and units (minutes to seconds, the price table path)."""
    timeout_min = settings.pop("item_timeout_min")
    return RunConfig(**_settings_renamed(settings), item_timeout_s=timeout_min * 60 if timeout_min else None,
                     template=template)


def _settings_renamed(settings: dict[str, Any]) -> dict[str, Any]:
    names = {"retry_wait": "retry_wait_s", "prices_path": "price_table"}
    return {names.get(key, key): value for key, value in settings.items()}


SETUP_FIXES = {
    "task_file": "pass --task (the real bench has tasks/vllm.yaml and tasks/sglang.yaml)",
    "plan_file": "check --log-dir is writable",
    "bench_config": "pass --bench-root (the ISO-Bench checkout) or --bench-cfg",
    "bench_python": "pass --python (the interpreter of the bench's environment)",
    "repo_checkout": "plan with --repo-root (the folder holding the vllm and sglang checkouts)",
    "stale_worktree": "plan fresh item ids with `track plan`, or remove the old worktree",
    "agent_program": "fix the agent's `cli` in the bench config, or the command after --",
}
"""What to type about each setup problem the library names."""


def _check(plans: list[Path], config: RunConfig, as_json: bool) -> None:
    """`track run --check`: print each check; exit 1 when one failed."""
    checks = check_setup(plans, config)
    if as_json:
        emit_json([c.to_dict() for c in checks])
    else:
        for check in checks:
            mark = {True: "ok  ", False: "FAIL", None: "skip"}[check.ok]
            fix = f"  -> {SETUP_FIXES[check.cause]}" if check.ok is False and check.cause in SETUP_FIXES else ""
            click.echo(f"{mark} {check.name:<20} {check.detail}{fix}")
    if any(check.ok is False for check in checks):
        raise click.exceptions.Exit(EXIT_PROBLEM)


def _print_run(campaign: str, result: RunProgress, stop: StopControl) -> None:
    click.echo(f"campaign {campaign}: {result.done} items run ({result.succeeded} succeeded, {result.failed} failed), "
               f"{result.skipped} skipped {dict(result.skip_reasons)}, {result.attempts} attempts, "
               f"${result.cost_usd:.2f} spent; logs in {result.log_dir}")
    if result.by_category:
        click.echo(format_table([{"category": k, "attempts": v} for k, v in result.by_category.most_common()]))
    if result.stopped:
        click.echo(f"stopped: {result.stopped} {stop.detail}".rstrip(), err=True)
    problem = result.setup_problem
    if problem and problem["cause"] in SETUP_FIXES:
        click.echo(f"fix: {SETUP_FIXES[problem['cause']]}; `track run --check` proves the setup first", err=True)


def _progress_text(p: Any) -> str | None:
    if not isinstance(p, RunProgress):
        return None
    budget = f"/${p.budget_usd:.2f}" if p.budget_usd is not None else ""
    return (f"ok {p.succeeded} failed {p.failed} running {p.running} | "
            f"{(p.input_tokens + p.output_tokens) / 1e6:.1f}M tokens ${p.cost_usd:.2f}{budget}")


def _install_sigint(stop: StopControl) -> None:
    """First Ctrl-C: start nothing new, let running items finish; second: stop them as interrupted."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        stop.interrupts += 1
        if stop.interrupts >= 2:
            stop.request("interrupted (SIGINT twice)", hard=True)
            click.echo("\ninterrupting the running items", err=True)
        else:
            stop.request("interrupted (SIGINT)")
            click.echo("\nfinishing the running items; Ctrl-C again to interrupt them", err=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _sync(app: AppContext, uri: str | None, quiet: bool) -> dict[str, Any] | None:
    """Project the campaign into MLflow (one run per attempt); a failure is reported, not fatal."""
    from runners.commands_mlflow import run_sync
    from tracker.errors import TrackerError

    try:
        return run_sync(app, uri, quiet=quiet).to_dict()
    except TrackerError as exc:  # the results are in the store; `track sync` catches MLflow up later
        click.echo(f"warning: {exc}", err=True)
        return {"error": str(exc)}


@click.command("status")
@click.argument("campaign")
@click.option("--watch", is_flag=True, help="Refresh until nothing is running or pending (Ctrl-C to leave).")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between refreshes with --watch.")
@json_option
@pass_app
def status_command(app: AppContext, campaign: str, watch: bool, interval: float, as_json: bool) -> None:
    """Progress of a campaign from the store: done, running, by status and category, tokens, cost, ETA.

    Example: track status rerun-a1c6d41 --watch
    """
    store = app.current_store()
    while True:
        status = campaign_status(store, campaign)
        if as_json:
            emit_json(status)
        else:
            click.echo(_status_text(status))
        if not watch or (status["running"] == 0 and status["pending"] == 0):
            return
        time.sleep(interval)
        if not as_json:
            click.echo("")


def _status_text(s: dict[str, Any]) -> str:
    lines = [
        f"{s['campaign']} ({s['kind']}, fix {s['agent_fix_commit'] or '-'}, baseline {s['baseline_campaign'] or '-'})",
        f"items {s['items']}: done {s['done']} (succeeded {s['succeeded']} at level {s['level']}, "
        f"failed {s['failed']}), "
        f"running {s['running']}, pending {s['pending']}; {s['attempts']} attempts",
        f"tokens in {s['tokens']['input']:,} (cached {s['tokens']['cached_input']:,}) out {s['tokens']['output']:,}; "
        f"cost ${s['cost_usd']:.2f}" + (f" of estimated ${s['estimate_usd']:.2f}" if s["estimate_usd"] else "")
        + f"; ETA {s['eta_s'] / 60:.0f} min",
    ]
    if s["by_status"]:
        lines.append("attempts by status: " + ", ".join(f"{k} {v}" for k, v in s["by_status"].items()))
    if s["by_category"]:
        lines.append("failed by category: " + ", ".join(f"{k} {v}" for k, v in s["by_category"].items()))
    if s["harness_errors"]:
        lines.append(f"setup problems (harness_error, not the model's): {s['harness_errors']} attempts")
    if s["stopped"]:
        lines.append(f"stopped: {s['stopped']['reason']} ({s['stopped']['detail']})")
    return "\n".join(lines + _costs_lines(s["costs"]))


def _costs_lines(costs: dict[str, Any]) -> list[str]:
    """Proxy, trajectory and agent cost side by side, and each attempt where they disagree."""
    if not costs["requests"] and not costs["totals"]["agent_usd"]:
        return []
    t = costs["totals"]
    lines = [f"cost by source: proxy ${t['proxy_usd']:.2f} ({costs['requests']} requests, "
             f"{costs['metered_attempts']} attempts), trajectory ${t['trajectory_usd']:.2f}, "
             f"agent-reported ${t['agent_usd']:.2f}"]
    if costs["errors"]:
        lines.append("API errors seen by the proxy: " + ", ".join(f"{k} {v}" for k, v in costs["errors"].items()))
    for d in costs["disagreements"][:10]:
        lines.append(f"cost disagreement {d['commit'][:12]} {d['run_timestamp'] or ''}: {d['disagreement']}")
    return lines
