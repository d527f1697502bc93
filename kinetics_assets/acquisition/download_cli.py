"""`kinetics download CSV --out DIR`: fetch the clips of any official annotation CSV, resumably.

The rows are validated with the edition importer (rejected rows are reported), then the clip
machinery (acquire_clips) fetches each row's window into the torchvision / mmaction2 layout
`{out}/{split}/{label}/{youtube_id}_{start:06d}_{end:06d}.mp4`. Label folders are named as torchvision's
Kinetics dataset names them (spaces to `_`, `'()` dropped). Test rows without a label go directly under
`{out}/test/`, where the official ActivityNet crawler puts them; torchvision's loader needs class folders, so
it (rightly) does not see unlabelled clips. The ledger `{out}/download_ledger.sqlite` makes a rerun fetch only
what is missing or failed transiently, and the request budget `{out}/rate_budgets.sqlite` is shared by every
download into the same `out` running at once (train, validate and test in parallel stay within one rate).
Reports are per annotation file, so train/validate/test can share `out`: `{csv stem}.failures.csv` and
`{csv stem}.failure_summary.csv` (what could not be fetched, and counts by category),
`{csv stem}.rejected_rows.csv` (rows that failed validation). Exit status 1 means some clips failed
transiently and a rerun may fetch them; 2 that the CSV is not a readable annotation file (not a regular file,
not UTF-8 text) or has data rows but no valid one, or that an option is invalid; 3 that the platform kept refusing the
session (throttled, bot check) through every backoff: finished clips are kept, the rest untouched for a later run.

The platform is built from its VideoPlatform class (`--platform youtube`, the default, or `sandbox`) with
fields from `--platform-config` (JSON) and a few flags; the download code never knows which one it talks to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import typer

from kinetics_assets.acquisition.clips import (
    ClipFormat,
    ClipOutcome,
    ClipRequest,
    acquire_clips,
)
from kinetics_assets.acquisition.failures import FailureCategory, RetryPolicy, SessionRefused
from kinetics_assets.acquisition.ledger import ClipLedger
from kinetics_assets.editions.annotations import AnnotationFileError, guess_edition, import_annotations
from resources.clip_store import LocalClipStore
from resources.ledgers import Ledgers
from resources.rate_limit import YOUTUBE_BURST, YOUTUBE_RATE_PER_S, RateLimit
from resources.sandbox.resource import SandboxPlatform
from resources.storage import atomic_write_bytes
from resources.video_platform import VideoPlatform, YouTubePlatform

PLATFORMS: dict[str, type[VideoPlatform]] = {"youtube": YouTubePlatform, "sandbox": SandboxPlatform}
# Requests per second and burst: YouTube throttles and bot-checks bulk clients; the sandbox only needs a cap.
DEFAULT_RATES = {"youtube": (YOUTUBE_RATE_PER_S, YOUTUBE_BURST), "sandbox": (50.0, 20)}
LEDGER_NAME = "download_ledger.sqlite"
# Reports are per annotation file ({csv stem}.failures.csv ...), so train/validate/test can share one `out`.
FAILURES_SUFFIX = "failures.csv"
SUMMARY_SUFFIX = "failure_summary.csv"
REJECTED_SUFFIX = "rejected_rows.csv"
FAILURE_COLUMNS = ["youtube_id", "time_start", "time_end", "split", "label", "status", "category", "permanent",
                   "message", "attempts", "source_file", "line"]


def label_folder(label: str) -> str:
    """A class's folder name as torchvision's Kinetics dataset makes it."""
    return label.replace(" ", "_").replace("'", "").replace("(", "").replace(")", "")


def layout_folder(split: str, label: str | None) -> str:
    """`{split}/{label}`; unlabelled (test) clips go straight into the split folder."""
    return split if label is None or pd.isna(label) else f"{split}/{label_folder(label)}"


def requests_for_rows(rows: pd.DataFrame) -> tuple[list[tuple[ClipRequest, Any]], pd.DataFrame]:
    """(request, annotation row) for each accepted row, and the rows that cannot become a request (why): among
    them a row naming the same clip file as an earlier row with another window (exact repeats never get here)."""
    pairs, rejected, first = [], [], {}
    for row in rows.itertuples(index=False):
        try:
            request = ClipRequest(row.youtube_id, layout_folder(row.split, row.label), float(row.time_start),
                                  float(row.time_end))
        except ValueError as err:
            rejected.append({"source_file": row.source_file, "line": row.line, "reason": str(err), "raw": ""})
            continue
        earlier = first.setdefault(request.key, row)
        if earlier is not row:
            rejected.append({"source_file": row.source_file, "line": row.line, "raw": "", "reason":
                             f"the same clip {request.key} as line {earlier.line} ({earlier.time_start:g}-"
                             f"{earlier.time_end:g} s), which is fetched instead"})
            continue
        pairs.append((request, row))
    return pairs, pd.DataFrame(rejected, columns=["source_file", "line", "reason", "raw"])


def build_platform(name: str, config: dict, labels: list[str]) -> VideoPlatform:
    """The named platform's resource from its config fields; a sandbox world covers the CSV's classes by default
    (its videos per class do not depend on which other classes it has)."""
    if name not in PLATFORMS:
        raise typer.BadParameter(f"unknown platform {name!r}; choose one of {', '.join(PLATFORMS)}")
    cls = PLATFORMS[name]
    if "classes" in cls.model_fields and "classes" not in config and labels:
        config = {**config, "classes": labels}
    try:
        return cls(**config)
    except (ValueError, TypeError) as err:  # pydantic's ValidationError names the bad field
        raise typer.BadParameter(f"--platform-config for {name}: {err}") from None


def failure_report(pairs: list[tuple[ClipRequest, Any]], outcomes: list[ClipOutcome]
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Failed clips with their annotation row, and counts by category."""
    failed = []
    for (request, row), outcome in zip(pairs, outcomes):
        if outcome.status == "done":
            continue
        category = FailureCategory.from_label(outcome.category)
        failed.append({"youtube_id": request.youtube_id, "time_start": request.time_start,
                       "time_end": request.time_end, "split": row.split, "label": row.label,
                       "status": outcome.status, "category": outcome.category, "permanent": category.permanent,
                       "message": outcome.message, "attempts": outcome.attempts, "source_file": row.source_file,
                       "line": row.line})
    report = pd.DataFrame(failed, columns=FAILURE_COLUMNS)
    summary = (report.groupby(["category", "permanent"]).size().rename("clips").reset_index()
               .sort_values(["clips", "category"], ascending=[False, True]).reset_index(drop=True))
    return report, summary


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_bytes(path, frame.to_csv(index=False).encode("utf-8"))


def download(
    csv: Path = typer.Argument(..., exists=True, dir_okay=False, help="An official annotation CSV."),
    out: Path = typer.Option(..., "--out", help="Dataset root: {out}/{split}/{label}/{clip}.mp4."),
    concurrency: int = typer.Option(4, min=1, help="Clips fetched at once."),
    edition: str = typer.Option("", help="Edition whose class list validates labels (default: guessed)."),
    platform: str = typer.Option("youtube", help=f"Video platform: {' | '.join(PLATFORMS)}."),
    platform_config: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                                help="JSON object of the platform resource's fields (sandbox: the "
                                                     "world config that produced the CSV; classes default to the "
                                                     "CSV's labels)."),
    sandbox_seed: int | None = typer.Option(None, help="Sandbox world seed (with --platform sandbox)."),
    cookie_file: Path | None = typer.Option(None, help="Netscape cookie file for the platform."),
    proxy: str | None = typer.Option(None, help="Proxy URL for all platform traffic."),
    sleep: float | None = typer.Option(None, min=0, help="Seconds yt-dlp waits before each download."),
    js_runtime: list[str] | None = typer.Option(None, help="JavaScript runtime for the platform's challenges, "
                                                           "RUNTIME[:PATH] (repeatable; default: deno on PATH)."),
    remote_component: list[str] | None = typer.Option(None, help="Challenge-solver scripts yt-dlp may fetch, "
                                                                 "e.g. ejs:github (repeatable)."),
    rate: float | None = typer.Option(None, min=0.001, help="Platform requests per second (default per platform)."),
    burst: int | None = typer.Option(None, min=1, help="Requests allowed back to back (default per platform)."),
    attempts: int = typer.Option(RetryPolicy.attempts, min=1, help="Tries per clip for transient failures."),
    short_side: int = typer.Option(256, min=16, help="Clips' short side in pixels (scaled down only)."),
) -> None:
    """Download the clips of an annotation CSV into the torchvision/mmaction2 layout, resumably."""
    try:
        clip_format = ClipFormat(short_side=short_side)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--short-side") from None
    try:
        chosen = edition or guess_edition([csv])
        imported = import_annotations([csv], chosen)
        if not imported.refused.empty:
            raise AnnotationFileError(csv, imported.refused.iloc[0].reason)
    except AnnotationFileError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(2) from None
    pairs, unusable = requests_for_rows(imported.rows)
    requests = [request for request, _ in pairs]
    rejected = pd.concat([imported.rejected, unusable], ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    reports = {suffix: out / f"{csv.stem}.{suffix}" for suffix in (FAILURES_SUFFIX, SUMMARY_SUFFIX, REJECTED_SUFFIX)}
    _write_csv(reports[REJECTED_SUFFIX], rejected)
    if not rejected.empty:
        first = rejected.iloc[0]
        typer.echo(f"{len(rejected)} rows rejected (see {reports[REJECTED_SUFFIX]}); first: "
                   f"{first.source_file}:{first.line}: {first.reason}")
    if imported.duplicates_collapsed:
        typer.echo(f"{imported.duplicates_collapsed} rows repeat an earlier row exactly: collapsed, each clip is "
                   "fetched once")
    data_rows = int((rejected["line"] > 1).sum())  # line 1 is the header (an empty split has only that)
    if not requests and data_rows:
        typer.echo(f"Error: no clip to fetch: none of the {data_rows} data rows of {csv} is valid", err=True)
        raise typer.Exit(2)

    config = json.loads(platform_config.read_text(encoding="utf-8")) if platform_config else {}
    if not isinstance(config, dict):
        raise typer.BadParameter("--platform-config must hold a JSON object of resource fields")
    flags = {"seed": sandbox_seed, "cookie_file": str(cookie_file) if cookie_file else None, "proxy": proxy,
             "sleep_interval_s": sleep, "js_runtimes": js_runtime or None,
             "remote_components": remote_component or None}
    config.update({key: value for key, value in flags.items() if value is not None})
    labels = sorted({row.label for _, row in pairs if isinstance(row.label, str)})
    resource = build_platform(platform, config, labels)
    default_rate, default_burst = DEFAULT_RATES.get(platform, DEFAULT_RATES["youtube"])
    budget = RateLimit(ledgers=Ledgers(root=str(out)), budget=platform, rate_per_s=rate or default_rate,
                       burst=burst or default_burst)

    typer.echo(f"Edition {chosen}: fetching {len(requests)} clips from {platform} into {out} "
               f"({concurrency} at a time)")
    with dg.build_resources({"platform": resource}) as built, ClipLedger(out / LEDGER_NAME) as ledger:
        try:
            outcomes = acquire_clips(
                built.platform, requests, LocalClipStore(root=str(out)), ledger, rate_limit=budget,
                concurrency=concurrency, retry=RetryPolicy(attempts=attempts), clip_format=clip_format)
        except SessionRefused as refused:
            typer.echo(f"Error: {refused}", err=True)
            raise typer.Exit(3) from None

    report, summary = failure_report(pairs, outcomes)
    _write_csv(reports[FAILURES_SUFFIX], report)
    _write_csv(reports[SUMMARY_SUFFIX], summary)
    done = sum(o.status == "done" for o in outcomes)
    skipped = sum(o.skipped and o.status == "done" for o in outcomes)
    typer.echo(f"{done} of {len(outcomes)} clips present ({skipped} from earlier runs); "
               f"{len(report)} failed (see {reports[FAILURES_SUFFIX]})")
    for item in summary.itertuples(index=False):
        typer.echo(f"  {item.clips:6d}  {item.category} ({'permanent' if item.permanent else 'transient'})")
    transient = int((report["status"] == "transient_failure").sum())
    if transient:
        typer.echo(f"{transient} clips failed transiently: run the same command again to retry them.")
        raise typer.Exit(1)
