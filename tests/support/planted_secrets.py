"""A planted corpus of secrets: every shape of issue 16, in four forms, in the seven places a secret reaches us.

Each planted value is unique (made from its shape, form and place), invented and non-working. `plant` writes them
into a copy of a fixture tree (and returns the `attempt.started` command lines to store); `leaked` reads any bytes
(a SQLite file, an MLflow store, an artifact) and names every planted value a fragment of which survived.

Forms: `plain`; `escaped` (the secret follows a JSON `\\n` escape inside a JSON string, as in a logged message or
a trajectory); `uescaped` (as escaped, and its `-` / `_` written `\\u002d` / `\\u005f`); `split` (the line wrapped
inside the secret: its tail, holding a digit, starts the next line). Shapes that are not tokens (a PEM block is
multi-line anyway, a URL password, a 20-character AWS key id) are not split.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import zlib
from dataclasses import dataclass
from pathlib import Path

ALNUM = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
FORMS = ("plain", "escaped", "uescaped", "split")
PLACES = ("run_log", "trajectory", "agent_output", "patch", "evaluation", "command", "error")
RUN = "state/runs/vllm/trae/gpt-5-2025-08-07/2025-12-03_17-40-02/vllm_core-0000"
PIPELINE_LOG = "pipeline_run_20251203_174002.log"
EVALUATION = "eval_results_v2/vllm_trae_gpt5-b5e23c54/vllm_core-0005/test_results.json"


def _chars(seed: str, n: int, alphabet: str = ALNUM) -> str:
    out = ""
    counter = 0
    while len(out) < n:
        digest = hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        out += "".join(alphabet[b % len(alphabet)] for b in digest)
        counter += 1
    return out[:n]


# shape -> (make the secret from random characters r(n), the line around it with {s}, splittable)
SHAPES: dict[str, tuple[str, str, bool]] = {
    "openai_legacy": ("sk-{r48}", "openai.AuthenticationError: Incorrect API key provided: {s}.", True),
    "openai_project": ("sk-proj-{r40}_{r20}", "export OPENAI_API_KEY={s}", True),
    "anthropic": ("sk-ant-api03-{r40}-{r30}AA", "ANTHROPIC_API_KEY set: using {s} for claude", True),
    "bearer": ("tok_{r36}", "request headers: {{'Authorization': 'Bearer {s}'}}", True),
    "aws_key_id": ("AKIA{R16}", "aws_access_key_id = {s}", False),
    "aws_secret": ("{r18}/{r21}", "aws_secret_access_key = {s}", True),
    "hf": ("hf_{r34}", "huggingface_hub: login with token {s} (HF_HUB_ENABLE_HF_TRANSFER=1)", True),
    "github_ghp": ("ghp_{r36}", "git remote set-url origin https://github.com/org/repo # token {s}", True),
    "github_gho": ("gho_{r36}", "gh auth status: Logged in, token: {s}", True),
    "github_ghs": ("ghs_{r36}", "actions runner registered with {s}", True),
    "github_pat": ("github_pat_11{R9}_{r59}", "GITHUB_PAT is {s}", True),
    "google": ("AIza{r35}", "GenAI client configured: key={s} region=us", True),
    "db_url": ("Pg{r14}", "OperationalError: could not connect to postgresql://bench:{s}@10.0.0.12:5432/isobench",
               False),
    "azure": ("{h32}", "  AZURE_OPENAI_KEY: {s}", True),
    "slack_bot": ("xoxb-{d12}-{d13}-{r24}", "slack notify failed with {s}", True),
    "slack_user": ("xoxp-{d12}-{d12}-{d13}-{h32}", "slack: using user token {s}", True),
    "jwt": ("eyJ{r16}.eyJ{r40}.{r43}", "> GET /v1/models\n> Authorization: {s}", True),
    "pem": ("MIIEow{r58}\n{r64}\n{r40}==", "-----BEGIN RSA PRIVATE KEY-----\n{s}\n-----END RSA PRIVATE KEY-----",
            False),
    "env_token": ("{r8}-{r24}", "HF_HUB_TOKEN={s} python -m vllm.entrypoints.openai.api_server", True),
}

_FIELD = re.compile(r"\{([rRdh])(\d+)\}")
_ALPHABETS = {"r": ALNUM, "R": "ABCDEFGHJKLMNPQRSTUVWXYZ234567", "d": "0123456789", "h": "0123456789abcdef"}


@dataclass(frozen=True)
class Planted:
    shape: str
    form: str
    place: str
    secret: str
    text: str
    """The planted text as it is meant (before any JSON encoding); for the uescaped form see `json_text`."""

    def json_text(self) -> str:
        """The body of a JSON string holding `text` (escapes included) for this form."""
        body = json.dumps(self.text)[1:-1]
        if self.form == "uescaped":
            plain = json.dumps(self.secret)[1:-1]
            body = body.replace(plain, plain.replace("-", "\\u002d").replace("_", "\\u005f"))
        return body

    def raw_text(self) -> str:
        """As a text file line shows it: escaped forms are a logged JSON message."""
        if self.form in ("escaped", "uescaped"):
            return '{"role": "tool", "content": "' + self.json_text() + '"}'
        return self.text


def make(shape: str, form: str, place: str) -> Planted:
    pattern, line, _ = SHAPES[shape]
    seed = f"{shape}/{form}/{place}"
    counter = iter(range(100))
    secret = _FIELD.sub(lambda m: _chars(f"{seed}/{next(counter)}", int(m.group(2)), _ALPHABETS[m.group(1)]),
                        pattern)
    if not any(c.isdigit() for c in secret[len(secret) // 2:]):
        secret = secret[:-1] + "7"  # a wrapped tail holds a digit (what the redactor takes for a key's tail)
    text = line.format(s=secret)
    if form == "split":
        half = len(secret) // 2
        text = line.format(s=secret[:half] + "\n" + secret[half:])
    elif form != "plain":
        text = "command output:\n" + text
    return Planted(shape, form, place, secret, text)


def corpus() -> list[Planted]:
    """Every shape, form and place (split only for shapes that wrap)."""
    return [make(shape, form, place) for shape, (_, _, splits) in SHAPES.items() for form in FORMS
            for place in PLACES if form != "split" or splits]


def plant(tree: Path, items: list[Planted]) -> list[list[str]]:
    """Write the corpus into a copy of isobench-small-a at `tree`; returns agent command lines (place `command`)."""
    run = tree / RUN
    by_place: dict[str, list[Planted]] = {p: [i for i in items if i.place == place] for place in PLACES
                                          for p in [place]}
    _plant_log(tree / PIPELINE_LOG, by_place["run_log"])
    _plant_trajectory(run / "trajectory.json", by_place["trajectory"])
    with (run / "trae_stderr.txt").open("a", encoding="utf-8") as err, \
            (run / "trae_stdout.txt").open("a", encoding="utf-8") as out:
        for item in by_place["agent_output"]:
            err.write(f"Error: OpenAI API call failed: {item.raw_text()}\n")
            out.write(f"TRAE STDOUT: {item.raw_text()}\n")
    with (run / "model_patch.diff").open("a", encoding="utf-8") as patch:
        patch.write("diff --git a/config.py b/config.py\n--- a/config.py\n+++ b/config.py\n@@ -1 +1,99 @@\n")
        patch.writelines(f"+# {line}\n" for item in by_place["patch"] for line in item.raw_text().split("\n"))
    _plant_json_field(tree / EVALUATION, ("result", "error_message"), by_place["evaluation"])
    journal = run / "journal.json"
    _plant_json_field(journal, ("error",), by_place["error"])
    _plant_json_field(journal, ("trae", "cli"), by_place["command"])
    return [["trae-cli", "run", "--api-key", i.secret, "--token", i.secret, f"--env=HF_TOKEN={i.secret}",
             "--prompt", i.text] for i in by_place["command"]]


def _plant_log(path: Path, items: list[Planted]) -> None:
    """Planted lines inside vllm_core-0000's block, as TRAE stderr errors (kept as evidence)."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if "Starting task processing: vllm_core-0000" in line) + 2
    stamp = "2025-12-03 19:00:02,007 - bench.prepare - WARNING - TRAE STDERR: OpenAI API call failed: "
    planted = [stamp + item.raw_text() + "\n" for item in items]
    path.write_text("".join(lines[:at] + planted + lines[at:]))


def _plant_trajectory(path: Path, items: list[Planted]) -> None:
    """In the messages (copied whole into the artifact) and as step errors (read as evidence)."""
    doc = json.loads(path.read_text())
    for n in range(len(items)):
        doc["llm_interactions"][0]["input_messages"].append({"role": "tool", "content": f"@@PLANT{n}@@"})
        doc["agent_steps"][n % len(doc["agent_steps"])]["error"] = f"@@PLANTERR{n}@@"
    text = json.dumps(doc)
    for n, item in enumerate(items):
        text = text.replace(f"@@PLANT{n}@@", item.json_text())
        text = text.replace(f"@@PLANTERR{n}@@", "Error code: 401 - " + item.json_text())
    path.write_text(text)


def _plant_json_field(path: Path, keys: tuple[str, ...], items: list[Planted]) -> None:
    doc = json.loads(path.read_text())
    target = doc
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = "@@PLANT@@"
    body = " | ".join(item.json_text() for item in items)
    path.write_text(json.dumps(doc, indent=2).replace("@@PLANT@@", "Incorrect API key provided: " + body))


_UESCAPE = re.compile(rb"\\u00([0-9a-fA-F]{2})")
_NON_ALNUM = re.compile(rb"[^A-Za-z0-9]+")
FRAGMENT = 12
"""A planted value leaked when any run of this many of its letters and digits survives (escapes decoded)."""


def normalise(blob: bytes) -> bytes:
    """Letters and digits only, JSON `\\u00XX` escapes decoded (a secret is found however it was written)."""
    return _NON_ALNUM.sub(b"", _UESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), blob))


def fragments(secret: str) -> list[bytes]:
    core = normalise(secret.encode())
    if len(core) <= FRAGMENT:
        return [core]
    return [core[i:i + FRAGMENT] for i in range(0, len(core) - FRAGMENT + 1)]


def leaked(blobs: list[bytes], items: list[Planted]) -> list[Planted]:
    """The planted values of which a fragment is in any of `blobs`."""
    hay = [normalise(b) for b in blobs]
    return [item for item in items if any(f in h for f in fragments(item.secret) for h in hay)]


def store_and_artifact_bytes(root: Path) -> list[bytes]:
    """Every byte under `root` (event store files, the MLflow store, artifact files), and every evidence
    blob of an event store there decompressed (compressed, a leak would not show in the file's bytes)."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    return [p.read_bytes() for p in files] + [blob for p in files if p.suffix == ".db" for blob in _evidence(p)]


def _evidence(path: Path) -> list[bytes]:
    with sqlite3.connect(path) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'evidence_blobs'").fetchone():
            return []
        return [zlib.decompress(content) for (content,) in db.execute("SELECT content FROM evidence_blobs")]
