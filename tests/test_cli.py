"""`kinetics stats` prints Table 1 and the rejected-row summary for any annotation files; `kinetics ui` stops
with every process it started within seconds of Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests
from typer.testing import CliRunner

from kinetics_assets.cli import app
from kinetics_assets.data_files import data_path
from test_ui_smoke import free_port

runner = CliRunner()


def test_stats_prints_table1_for_the_shipped_file():
    result = runner.invoke(app, ["stats", str(data_path("kinetics400_val.csv"))])
    assert result.exit_code == 0, result.output
    assert "Edition: Kinetics-400 (19906 rows accepted from 1 file(s))" in result.output
    val_row = next(line for line in result.output.splitlines() if "| val" in line)
    assert [cell.strip() for cell in val_row.strip("|").split("|")] == [
        "Kinetics-400", "val", "19906", "400", "49.77", "46", "50",
    ]
    assert "Rejected rows: 0; exact duplicates collapsed: 0" in result.output


def test_stats_summarises_rejected_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,0wR5jVB-WPk,0,10,train\n"
        "abseiling,../../etc/pass,0,10,train\n"
        "abseiling,0wR5jVB-WPk,0,10,train\n"
    )
    result = runner.invoke(app, ["stats", str(path), "--edition", "Kinetics-700"])
    assert result.exit_code == 0, result.output
    assert "Rejected rows: 1; exact duplicates collapsed: 1" in result.output
    assert "invalid youtube_id '../../etc/pass'" in result.output
    assert f"first: {path}:3" in result.output


def test_stats_rejects_an_over_long_line_and_counts_the_rest(tmp_path):
    """The edition is guessed (a csv.DictReader pass crashed on a field over 131,072 characters)."""
    path = tmp_path / "long.csv"
    path.write_text("label,youtube_id,time_start,time_end,split\n"
                    "abseiling,0wR5jVB-WPk,0,10,train\n"
                    f"abseiling,0wR5jVB-WPk,0,10,{'x' * 200_000}\n"
                    "abseiling,3caPS4FHFF8,36,46,train\n")
    result = runner.invoke(app, ["stats", str(path)])
    assert result.exit_code == 0, result.output
    assert "(2 rows accepted from 1 file(s))" in result.output
    assert "Rejected rows: 1; exact duplicates collapsed: 0" in result.output
    assert "1  line longer than 131072 bytes (the csv module's field limit)" in result.output
    assert f"first: {path}:3" in result.output


@pytest.mark.parametrize("edition", [[], ["--edition", "Kinetics-400"]])
def test_stats_on_utf16_text_is_an_error_naming_the_file(tmp_path, edition):
    path = tmp_path / "utf16.csv"
    path.write_text("label,youtube_id,time_start,time_end,split\nabseiling,0wR5jVB-WPk,0,10,train\n",
                    encoding="utf-16")
    result = runner.invoke(app, ["stats", str(path), *edition])
    assert result.exit_code == 2, result.output
    assert f"Error: {path}: UTF-16 text (byte-order mark ff fe), not UTF-8: save it as UTF-8" in result.output
    assert "rows accepted" not in result.output


@pytest.mark.timeout(20)
def test_stats_refuses_a_fifo_at_once(tmp_path):
    fifo = tmp_path / "ann.csv"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["stats", str(fifo)])
    assert result.exit_code == 2, result.output
    assert f"Error: {fifo}: not a regular file (a FIFO); give an annotation CSV" in result.output


def _stat(pid: int) -> list[str] | None:
    """/proc's state, parent, ... of a live process; None when it is gone (or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return None
    return None if fields[0] == "Z" else fields


def _descendants(root: int) -> list[int]:
    """Every live process below ``root``."""
    parents = {pid: int(fields[1]) for pid in (int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit())
               if (fields := _stat(pid))}
    found, todo = [], [root]
    while todo:
        below = todo.pop()
        children = [pid for pid, parent in parents.items() if parent == below]
        found += children
        todo += children
    return found


# A run whose process ends in the middle of it without a word, as one killed with -9 would.
_ABANDON_A_RUN = """
import os
import dagster as dg

@dg.op
def vanish(context):
    print(context.run_id, flush=True)
    os._exit(0)

@dg.job
def abandoned():
    vanish()

abandoned.execute_in_process(instance=dg.DagsterInstance.get())
"""


@pytest.mark.timeout(300)
def test_ctrl_c_stops_the_ui_and_every_child_promptly(tmp_path):
    """Also: the UI's start marks failed the runs whose process is gone, and the artefact folder its links point
    at is served beside it until the stop."""
    port, files_port = free_port(), free_port()
    files_url = f"http://127.0.0.1:{files_port}"
    env = {**os.environ, "KINETICS_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "KINETICS_FILES_URL": files_url}
    (tmp_path / "artifacts" / "editions").mkdir(parents=True)
    (tmp_path / "artifacts" / "editions" / "table1.md").write_text("# Table 1\n")
    (tmp_path / "dagster_home").mkdir()
    abandoned = subprocess.run([sys.executable, "-c", _ABANDON_A_RUN], env=env, capture_output=True, text=True,
                               check=True).stdout.strip()
    log = open(tmp_path / "ui.log", "wb")
    # Its own session, like a terminal's foreground group: Ctrl-C is a SIGINT to the whole group.
    ui = subprocess.Popen([sys.executable, "-c", "from kinetics_assets.cli import app; app()", "ui", "--port", str(port)],
                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    tree = []
    try:
        deadline = time.monotonic() + 240
        while True:
            assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the UI did not answer within 240 s"
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert f"Marked failed: 1 run(s) whose process is gone ({abandoned})" in (tmp_path / "ui.log").read_text()
        assert requests.get(f"{files_url}/editions/table1.md", timeout=10).text == "# Table 1\n"
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            assert instance.get_run_by_id(abandoned).status == dg.DagsterRunStatus.FAILURE
        tree = _descendants(ui.pid)
        assert len(tree) >= 3, "dagster dev, its webserver and its daemon"
        started = time.monotonic()
        os.killpg(ui.pid, signal.SIGINT)
        assert ui.wait(timeout=60) == 130
        assert time.monotonic() - started < 15, "stopped within the grace, not dagster dev's 60-s waits"
        time.sleep(0.5)
        assert [pid for pid in tree if _stat(pid)] == [], "no process of the UI is left"
        with pytest.raises(requests.ConnectionError):
            requests.get(files_url, timeout=5)  # the files server stopped with it
    finally:
        for pid in [ui.pid, *tree]:
            if _stat(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()


def test_sandbox_clock_shows_the_platforms_date_and_moves_it_on_for_every_process(tmp_path, monkeypatch):
    monkeypatch.setenv("KINETICS_HOME", str(tmp_path))
    first = runner.invoke(app, ["sandbox", "clock"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("2020-06-30 ")  # the world's epoch + 1 year until the file is written
    moved = runner.invoke(app, ["sandbox", "clock", "--advance-days", "365"])
    assert moved.exit_code == 0 and moved.output.startswith("2021-06-30 ")
    assert (tmp_path / "sandbox" / "clock").read_text() == "2021-06-30\n"  # the file every server reads
    assert runner.invoke(app, ["sandbox", "clock"]).output.startswith("2021-06-30 ")
    assert runner.invoke(app, ["sandbox", "clock", "--advance-days", "-1"]).exit_code != 0  # time never runs back
