"""Run the edition's suites with Great Expectations 1.x and report every failing class, clip or video by name.

An ephemeral (in-memory) GX context per run: no project folder, analytics off (see the package's
``__init__``), progress bars off; nothing reaches the network. Results are read with
``result_format=COMPLETE`` so every unexpected row comes back, not GX's default sample of 20. Data Docs, when
asked for, are built in a sibling temporary folder and swapped into place, so a half-built site never looks
finished.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from expectations import CLASS_MINIMUM
from expectations.suites import EditionRules, SuiteSpec, edition_suites
from kinetics_assets.release.writer import swap_folder_into_place

DOCS_SITE = "edition_docs"
DATASOURCE = "edition"


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict; ``failing`` holds every unexpected row: its naming columns and its value."""

    expectation: str
    column: str
    success: bool
    element_count: int
    unexpected_count: int
    failing: tuple[dict, ...]


@dataclass(frozen=True)
class SuiteOutcome:
    """One suite's verdict over its derived frame."""

    name: str
    success: bool
    expectations: tuple[ExpectationOutcome, ...]

    def failing_rows(self) -> pd.DataFrame:
        """Every unexpected row of every failed expectation, with the expectation and column that caught it."""
        rows = [
            {"expectation": e.expectation, "column": e.column, **row} for e in self.expectations for row in e.failing
        ]
        return pd.DataFrame(rows)

    def failing_classes(self, column: str) -> dict[str, float]:
        """Class name -> value of ``column`` for every class that failed an expectation on that column."""
        return {
            row["class_name"]: row[column]
            for e in self.expectations
            if e.column == column
            for row in e.failing
        }


@dataclass(frozen=True)
class EditionValidation:
    """All suites' verdicts, and the Data Docs index when they were built."""

    suites: dict[str, SuiteOutcome]
    docs_index: Path | None = None
    rules: EditionRules | None = field(default=None, compare=False)

    @property
    def success(self) -> bool:
        return all(s.success for s in self.suites.values())

    def failing_rows(self) -> pd.DataFrame:
        """Every unexpected row of every suite, with its suite, expectation and column (for check metadata)."""
        frames = [s.failing_rows().assign(suite=name) for name, s in self.suites.items() if not s.success]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["suite", "expectation"])

    def classes_below_minimum(self) -> dict[str, int]:
        """Every class under the minimum with its clip count (all of them, not a sample)."""
        return {name: int(count) for name, count in self.suites[CLASS_MINIMUM].failing_classes("clips").items()}


def ephemeral_context(docs_dir: Path | None = None):
    """An in-memory GX context with analytics and progress bars off and, optionally, one Data Docs site."""
    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _json_value(value):
    return value.item() if hasattr(value, "item") else value


def _outcome(result) -> ExpectationOutcome:
    kwargs = result.expectation_config.kwargs
    column = kwargs.get("column") or "+".join(kwargs.get("column_list", []))
    details = result.result or {}
    failing = tuple(
        {key: _json_value(value) for key, value in row.items()} for row in details.get("unexpected_index_list") or ()
    )
    return ExpectationOutcome(
        expectation=result.expectation_config.type,
        column=column,
        success=bool(result.success),
        element_count=int(details.get("element_count", 0)),
        unexpected_count=int(details.get("unexpected_count", 0)),
        failing=failing,
    )


def run_suite(context, spec: SuiteSpec, frame: pd.DataFrame) -> SuiteOutcome:
    """Validate ``frame`` (already derived for ``spec``) against the suite inside ``context``."""
    run_name = f"{spec.name}_{uuid.uuid4().hex[:8]}"  # one context may validate the same suite twice
    batch = context.data_sources.add_or_update_pandas(DATASOURCE).add_dataframe_asset(run_name)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name=run_name,
            data=batch.add_batch_definition_whole_dataframe("whole"),
            suite=context.suites.add_or_update(spec.suite()),
        )
    )
    result = definition.run(
        batch_parameters={"dataframe": frame.reset_index(drop=True)},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": list(spec.index_columns)},
    )
    outcomes = tuple(_outcome(r) for r in result.results)
    return SuiteOutcome(spec.name, bool(result.success), outcomes)


def validate_edition(rows: pd.DataFrame, rules: EditionRules, docs_dir: Path | None = None) -> EditionValidation:
    """Run every edition suite over ``rows``; with ``docs_dir``, also build GX Data Docs there.

    ``rows`` has columns label, youtube_id, time_start, time_end, split (canonical split names).
    Returns each suite's outcome (every failing class / clip / video with its value) and the Data Docs
    ``index.html`` path when built.
    """
    missing = {"label", "youtube_id", "time_start", "time_end", "split"} - set(rows.columns)
    if missing:
        raise ValueError(f"edition rows lack columns {sorted(missing)}")
    if docs_dir is None:
        return EditionValidation(suites=_run_all(ephemeral_context(), rows, rules), rules=rules)
    docs_dir = Path(docs_dir)
    docs_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=docs_dir.parent, prefix=f".{docs_dir.name}.partial-"))
    try:
        context = ephemeral_context(building)
        suites = _run_all(context, rows, rules)
        context.build_data_docs(site_names=[DOCS_SITE])
        swap_folder_into_place(building, docs_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return EditionValidation(suites=suites, docs_index=docs_dir / "index.html", rules=rules)


def _run_all(context, rows: pd.DataFrame, rules: EditionRules) -> dict[str, SuiteOutcome]:
    return {spec.name: run_suite(context, spec, spec.derive(rows, rules)) for spec in edition_suites(rules)}
