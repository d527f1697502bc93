"""The Dagster UI as a curator uses it, in a real browser: Playwright driving Debian's chromium (``/usr/bin/chromium``,
headless, its own empty profile, background networking off; Playwright's own browser download cannot work here).

One instance for the module, built the way ``make demo`` builds its own (the demo's jobs and sensor ticks through
the daemon's code, on the sandbox profile) but over an edition cut to two classes, so it takes a few minutes
instead of the demo's ten. Then a user's walk through ``dagster-webserver``: every stage's group in the asset
graph, a per-class asset's partitions with their status, a backfill of two classes launched from the UI whose runs
succeed, a materialization's table and plot, its file links opening the files (served beside the UI, as `kinetics ui`
does), Table 4 and the Figure 1 image of a one-epoch benchmark run, the link-rot sensor's ticks and the
replenishment runs they requested years later, a failing Great Expectations check that names its classes, no
sign-up dialog, and no run launched again that the pipeline already did. Measured: 4m10 on an idle machine. Screenshots of every
step land in the module's tmp folder (``screens``); ``UI_SCREENSHOTS=docs/screenshots`` copies the main views there.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import requests

from jobs import BENCHMARK_DATA_JOB, BENCHMARK_REPORT_JOB, CURATE_JOB, EDITION_CLIPS_JOB, MAIN_JOB, REPLENISH_JOB, \
    TRAIN_JOB
from kinetics_assets.benchmark.assets import BenchmarkSettings
from kinetics_assets.files_server import serving_files
from kinetics_assets.instance import WORKSPACE
from kinetics_assets.materialized import latest
from kinetics_assets.partitions import class_key
from kinetics_assets.policy import CurationPolicy
from kinetics_assets.sensor_ticks import workspace_context
from test_backfills import partition_range, run_backfill
from test_ui_smoke import REPO, free_port, serve_webserver

CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STAGE_GROUPS = ["editions", "acquisition", "voting", "release", "link_rot", "benchmark"]
MAIN_VIEWS = ["asset_graph", "partitions", "backfill", "materialization_plot", "benchmark_figure1", "sensor_ticks",
              "failing_check"]
LOGGER = logging.getLogger("test_ui_browser")
pytestmark = pytest.mark.timeout(1200)  # measured: 3.5 min on the shared 2 cores, 2 of them the pipeline


def _two_class_edition(edition_dir: Path, minimum: int) -> list[str]:
    """Cut the sandbox's previous edition to two classes, its largest and the one closest under the minimum (one
    crowd round replenishes it); the files keep their official format. Returns the classes."""
    files = {name: edition_dir / name for name in ("train.csv", "validate.csv", "private/test_labelled.csv")}
    labelled = pd.concat([pd.read_csv(path) for path in files.values()])
    counts = labelled["label"].value_counts()
    classes = sorted([counts.index[0], counts[counts < minimum].index[0]])
    keep = labelled.loc[labelled["label"].isin(classes), "youtube_id"]
    for path in [*files.values(), edition_dir / "test.csv"]:
        frame = pd.read_csv(path)
        frame[frame["youtube_id"].isin(keep)].to_csv(path, index=False)
    return classes


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A KINETICS_HOME and Dagster instance that ran the demo's stages on two classes, a link-rot tick included,
    and then an edition checked against a minimum no class reaches (its class_minimum check failed)."""
    from kinetics_assets.definitions import defs
    from kinetics_assets.demo import crowd_rounds, daemon_sensor_tick, materialize_until_finished, \
        write_sandbox_edition, years_later
    from kinetics_assets.instance import ensure_dagster_home
    from resources.profiles import resources_for, sandbox_edition_dir

    home = tmp_path_factory.mktemp("ui_home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KINETICS_HOME", str(home))  # the webserver, code servers and run workers inherit it
        env.setenv("DAGSTER_HOME", str(home / "dagster_home"))
        env.setenv("KINETICS_FILES_URL", f"http://127.0.0.1:{free_port()}")  # the materializations link there
        ensure_dagster_home()
        resources = resources_for()
        benchmark = resources["benchmark"]  # one epoch: the UI needs a Table 4 and a Figure 1, not a good model
        resources["benchmark"] = BenchmarkSettings(**{**benchmark.model_dump(), "epochs": 1})
        write_sandbox_edition(resources, LOGGER.info)
        classes = _two_class_edition(sandbox_edition_dir(), resources["policy"].minimum_clips_per_class)
        location = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs,
                                  sensors=defs.sensors, resources=resources)  # this home's resources
        with dg.DagsterInstance.get() as instance:
            def run(job: str, partition: str | None = None) -> None:
                materialize_until_finished(location, instance, job, partition, echo=LOGGER.info)

            started = time.monotonic()
            run(MAIN_JOB)
            deficits = latest(instance, "class_deficits")[0]
            short = list(deficits.loc[deficits["deficit"] > 0, "class_name"])
            for name in classes:
                run(EDITION_CLIPS_JOB, class_key(name))
            for name in short:  # the class under the minimum: a round of queries, clips, tasks and votes
                run(REPLENISH_JOB, class_key(name))
            crowd_rounds(instance, resources, short, LOGGER.info)
            run(CURATE_JOB)
            run(BENCHMARK_DATA_JOB)
            run(TRAIN_JOB, "all")  # benchmark_table reads the sizes trained so far: this one
            run(BENCHMARK_REPORT_JOB)
            years_later(resources, LOGGER.info)  # videos vanish: a tick suspects them, the next confirms
            daemon_sensor_tick(instance, "link_rot_sensor", LOGGER.info)
            rot_runs = daemon_sensor_tick(instance, "link_rot_sensor", LOGGER.info)
            strict = {**resources, "policy": CurationPolicy(**{**resources["policy"].model_dump(),
                                                               "minimum_clips_per_class": 1000})}
            failed = dg.materialize([*defs.assets, *defs.asset_checks], selection=["edition_splits"],
                                    resources=strict, instance=instance, raise_on_error=False)
            assert not failed.success  # the blocking check failed
            LOGGER.info(f"UI test pipeline on {classes}: {time.monotonic() - started:.0f} s")
            yield {"home": home, "instance": instance, "classes": classes, "screens": home / "screens",
                   "artifacts": resources["artifacts"], "rot_runs": rot_runs}


@pytest.fixture(scope="module")
def webserver(pipeline):
    """The UI and, beside it, the artefact folder its links point at (what `kinetics ui` starts)."""
    artifacts = pipeline["artifacts"]
    with serving_files(Path(artifacts.root), artifacts.files_url), serve_webserver(pipeline["home"]) as url:
        yield url


@pytest.fixture(scope="module")
def browser(pipeline):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(pipeline["home"] / "chromium-profile"),  # new and empty
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, viewport={"width": 1440, "height": 900})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture()
def page(browser, webserver):
    tab = browser.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    tab.close()


def _off_the_browsers_loop(function, *args):
    """Run the daemon's code in a thread of its own: it calls asyncio.run, and Playwright's sync API keeps an event
    loop running in this one."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(function, *args).result()


def _shot(pipeline, page, name: str) -> Path:
    folder = pipeline["screens"]
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    if target := os.environ.get("UI_SCREENSHOTS"):
        if name in MAIN_VIEWS:
            shutil.copy(path, REPO / target / path.name)
    return path


def _open(page, url: str, text: str) -> None:
    page.goto(url)
    page.get_by_text(text, exact=False).first.wait_for()


def test_the_asset_graph_shows_every_stage_and_no_sign_up_dialog(pipeline, page, webserver):
    page.goto(f"{webserver}/asset-groups")
    for group in STAGE_GROUPS:
        page.get_by_text(group, exact=True).first.wait_for()
    page.wait_for_timeout(2500)  # the community sign-up dialog opened a second after the first page
    assert "Notify me about Dagster security updates" not in page.inner_text("body")
    answer = requests.post(f"{webserver}/graphql", json={"query": "{ shouldShowNux }"}, timeout=60).json()
    assert answer["data"]["shouldShowNux"] is False  # what the UI asks before it opens the dialog
    _shot(pipeline, page, "asset_graph")


def test_a_per_class_assets_partitions_list_the_classes_materialized_and_missing(pipeline, page, webserver):
    page.goto(f"{webserver}/assets/class_clips?view=partitions")
    page.get_by_text("Materialized (2)").wait_for()
    page.get_by_text("Missing (698)").click()  # hide the missing ones: the two materialized classes remain
    first, second = map(class_key, pipeline["classes"])
    page.get_by_text(second, exact=True).first.wait_for()
    page.get_by_text(first, exact=True).first.click()
    page.get_by_text("Latest materialization").wait_for()
    assert "Materialized" in page.inner_text("body")
    _shot(pipeline, page, "partitions")


def test_a_backfill_of_two_classes_launched_from_the_ui_completes_and_its_runs_succeed(pipeline, page, webserver):
    """search_queries: per class, no upstream, no outside world (the cheapest per-class asset, a run each)."""
    instance, keys = pipeline["instance"], ["abseiling", "zumba"]
    before = {backfill.backfill_id for backfill in instance.get_backfills()}
    page.goto(f"{webserver}/assets/search_queries")
    page.get_by_role("button", name="Materialize…").first.click()
    page.get_by_text("Select a partition or create one").click()
    for key in keys:
        page.get_by_placeholder("Filter partitions").fill(key)
        page.get_by_role("menuitem").filter(has_text=key).first.click()
    page.keyboard.press("Escape")
    page.get_by_text("2 partitions").wait_for()
    _shot(pipeline, page, "backfill_dialog")
    page.get_by_role("button", name="Launch backfill").click()
    deadline = time.monotonic() + 60
    while not (new := [b for b in instance.get_backfills() if b.backfill_id not in before]):
        assert time.monotonic() < deadline, "the UI launched no backfill"
        time.sleep(0.5)
    [backfill] = new
    with workspace_context(instance, WORKSPACE) as context:  # what the daemon of `kinetics ui` does
        _off_the_browsers_loop(run_backfill, context, backfill.backfill_id)
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    assert sorted(partition_range(run) for run in runs) == [(key, key) for key in keys]  # a class a run
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    page.goto(f"{webserver}/runs/b/{backfill.backfill_id}?tab=runs")
    page.get_by_text("Succeeded", exact=True).first.wait_for()
    for key in keys:  # the partition selection
        page.get_by_text(key, exact=True).first.wait_for()
    page.get_by_text("Success", exact=True).nth(1).wait_for()  # both runs
    _shot(pipeline, page, "backfill")


def test_a_materialization_shows_its_table_and_its_plot(pipeline, page, webserver):
    page.goto(f"{webserver}/assets/class_statistics?view=events")
    page.get_by_text("table1", exact=True).wait_for()
    page.get_by_role("cell", name="sandbox-previous").first.wait_for()  # Table 1, inline
    _shot(pipeline, page, "materialization")
    page.get_by_text("[Show Markdown]").first.click()
    plot = page.get_by_role("dialog").locator("img")
    plot.first.wait_for()
    assert plot.first.evaluate("image => image.complete && image.naturalWidth") > 100  # the PNG itself decoded
    _shot(pipeline, page, "materialization_plot")


def test_a_materializations_file_links_open_in_the_browser(pipeline, page, webserver):
    """Report and Data Docs links are http URLs of the files server (a file:// link from the UI's page would be
    refused by the browser); clicking one opens the file itself."""
    page.goto(f"{webserver}/assets/class_statistics?view=events")
    with page.expect_popup() as opened:
        page.get_by_role("link", name="editions/table1.md").first.click()
    report = opened.value
    report.wait_for_load_state()
    assert report.url.startswith(pipeline["artifacts"].files_url)
    assert "# Table 1" in report.inner_text("body")
    report.close()
    page.goto(f"{webserver}/assets/edition_splits?view=checks")
    page.get_by_text("class_minimum").first.click()
    with page.expect_popup() as opened:
        page.get_by_role("link", name="data_docs").first.click()
    docs = opened.value
    docs.wait_for_load_state()
    assert "Expectation" in docs.inner_text("body")  # GX's Data Docs page
    _shot(pipeline, docs, "data_docs")
    docs.close()


def test_the_benchmark_table_shows_table4_and_the_figure1_image(pipeline, page, webserver):
    page.goto(f"{webserver}/assets/benchmark_table?view=events")
    page.get_by_text("table4", exact=True).first.wait_for()
    page.get_by_role("cell", name="all", exact=True).first.wait_for()  # Table 4's row, inline
    page.get_by_text("[Show Markdown]").first.click()  # figure1, the materialization's one markdown entry
    plot = page.get_by_role("dialog").locator("img")
    plot.first.wait_for()
    assert plot.first.evaluate("image => image.complete && image.naturalWidth") > 100  # the PNG itself decoded
    _shot(pipeline, page, "benchmark_figure1")


def test_the_link_rot_sensor_page_lists_its_ticks_and_the_runs_they_requested(pipeline, page, webserver):
    """Years later the sensor's second tick confirmed removals and requested a replenishment run per class left
    under the minimum: the page lists the ticks and links each requested run."""
    runs = pipeline["rot_runs"]
    assert runs and all(run.job_name == REPLENISH_JOB for run in runs)
    page.goto(f"{webserver}/locations/kinetics/sensors/link_rot_sensor")
    page.get_by_text("All ticks").wait_for()
    page.get_by_text("View logs").first.wait_for()
    assert page.get_by_text("View logs").count() >= 2
    page.get_by_text("1 run requested" if len(runs) == 1 else f"{len(runs)} runs requested").first.wait_for()
    _shot(pipeline, page, "sensor_ticks")


def test_a_failing_great_expectations_check_is_shown_with_its_classes(pipeline, page, webserver):
    page.goto(f"{webserver}/assets/edition_splits?view=checks")
    page.get_by_text("class_minimum").first.click()
    page.get_by_text("This is a blocking asset check.").wait_for()
    page.get_by_text("Failed").first.wait_for()
    for name in pipeline["classes"]:
        page.get_by_role("cell", name=name, exact=True).first.wait_for()  # failing_rows names each class
    assert "at least the minimum clips" in page.inner_text("body")  # the check's description
    _shot(pipeline, page, "failing_check")


def test_after_the_pipeline_a_daemon_tick_launches_no_run_it_already_did(pipeline):
    """Runs last: every sensor's next tick (the UI's daemon would tick them) resumes from its cursor."""
    from kinetics_assets.demo import daemon_sensor_tick

    instance = pipeline["instance"]
    count = instance.get_runs_count()
    assert _off_the_browsers_loop(daemon_sensor_tick, instance, "vote_inbox_sensor", LOGGER.info) == []
    assert instance.get_runs_count() == count
