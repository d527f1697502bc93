"""The platform resources the pipeline uses: identical calls for YouTube and the sandbox.

Protects: addresses built from validated ids only, yt-dlp options passed through, ffmpeg on PATH
for section downloads, and the sandbox server's Dagster lifecycle (lazy start, stopped at
teardown so no port outlives the run).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import shutil

import dagster as dg
import pytest
import requests
from yt_dlp.extractor.generic import GenericIE

from resources.media_tools import ensure_ffmpeg_on_path, ffmpeg_exe
from resources.sandbox.clock import FileClock
from resources.sandbox.resource import SandboxPlatform
from resources.sandbox.truth import GroundTruth
from resources.sandbox.world import DEMO_CLASSES, World
from resources.video_platform import PlatformYoutubeDL, VideoPlatform, YouTubePlatform, validate_video_id

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def isolated_path(tmp_path, monkeypatch):
    """A private cache dir and a PATH without our bin dir, so PATH edits are observable."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))
    return tmp_path / "cache" / "kinetics-curation" / "bin"


@pytest.mark.parametrize("bad", ["", "short", "waytoolongid1", "abc/../defg", "abc def ghi", "ab\x00cdefghij", None])
def test_malformed_ids_never_reach_a_url(bad):
    youtube = YouTubePlatform()
    with pytest.raises(ValueError, match="invalid video id"):
        youtube.watch_url(bad)
    with pytest.raises(ValueError, match="invalid video id"):
        validate_video_id(bad)


def test_youtube_addresses():
    youtube = YouTubePlatform()
    assert youtube.search_url("stacking dice", 20) == "ytsearch20:stacking dice"
    assert youtube.watch_url("dQw4w9WgXcQ") == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert youtube.probe_url("dQw4w9WgXcQ") == (
        "https://www.youtube.com/oembed?url=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3DdQw4w9WgXcQ&format=json")
    with pytest.raises(ValueError):
        youtube.search_url("x", 0)


def test_youtube_dl_passes_resource_config_and_call_options_through(isolated_path):
    youtube = YouTubePlatform(cookie_file="/tmp/cookies.txt", proxy="http://proxy:3128", sleep_interval_s=2.5)
    ydl = youtube.youtube_dl(format="best", extractor_args={"youtube": {"lang": ["en"]}})
    assert ydl.params["cookiefile"] == "/tmp/cookies.txt"
    assert ydl.params["proxy"] == "http://proxy:3128"
    assert ydl.params["sleep_interval"] == 2.5
    assert ydl.params["format"] == "best"
    assert ydl.params["extractor_args"] == {"youtube": {"lang": ["en"]}}
    assert ydl.get_info_extractor("Youtube").suitable(youtube.watch_url("dQw4w9WgXcQ"))
    assert not any(key.startswith("Sandbox") for key in ydl._ies)


def test_js_runtimes_and_solver_scripts_reach_yt_dlp_as_its_cli_would_set_them(isolated_path):
    default = YouTubePlatform().youtube_dl()
    assert default.params["js_runtimes"] == {"deno": {}}  # yt-dlp's own default is left alone
    youtube = YouTubePlatform(js_runtimes=["node", "Deno:/opt/deno/bin/deno"], remote_components=["ejs:github"])
    ydl = youtube.youtube_dl()
    assert ydl.params["js_runtimes"] == {"node": {"path": None}, "deno": {"path": "/opt/deno/bin/deno"}}
    assert ydl.params["remote_components"] == {"ejs:github"}
    assert YouTubePlatform(js_runtimes=[]).youtube_dl().params["js_runtimes"] == {}  # --no-js-runtimes


@pytest.mark.parametrize(("field", "value", "named"), [
    ("js_runtimes", ["rhino"], "unknown JavaScript runtime 'rhino'"),
    ("remote_components", ["ejs:pastebin"], "unknown remote component"),
])
def test_unknown_js_runtimes_and_components_are_refused_at_configuration(field, value, named):
    with pytest.raises(ValueError, match=named):
        YouTubePlatform(**{field: value})


def test_ffmpeg_is_put_on_path_once(isolated_path):
    link = ensure_ffmpeg_on_path()
    ensure_ffmpeg_on_path()
    assert link == isolated_path / "ffmpeg"
    assert pathlib.Path(os.readlink(link)) == ffmpeg_exe()
    assert os.environ["PATH"].split(os.pathsep).count(str(isolated_path)) == 1
    assert pathlib.Path(shutil.which("ffmpeg")).resolve() == ffmpeg_exe().resolve()


def test_ffmpeg_link_is_repaired_when_it_points_elsewhere(isolated_path):
    isolated_path.mkdir(parents=True)
    (isolated_path / "ffmpeg").symlink_to("/nonexistent/ffmpeg")
    assert pathlib.Path(os.readlink(ensure_ffmpeg_on_path())) == ffmpeg_exe()


@pytest.fixture
def sandbox(tmp_path):
    platform = SandboxPlatform(
        classes=list(DEMO_CLASSES[:2]), relevant_per_class=3, distractors_per_class=1, cache_dir=str(tmp_path))
    yield platform
    platform.shutdown()


def test_sandbox_registers_its_extractors_before_the_generic_one(sandbox, isolated_path):
    ydl = sandbox.youtube_dl()
    keys = list(ydl._ies)
    assert keys.index("Sandbox") < keys.index(GenericIE.ie_key())
    assert keys.index("SandboxSearch") < keys.index(GenericIE.ie_key())
    assert ydl.params["extractor_args"]["sandboxsearch"]["base_url"] == [sandbox.server.base_url]
    assert sandbox.search_url("luge", 3) == "sandboxsearch3:luge"


def test_sandbox_clock_defaults_to_a_year_after_the_epoch_and_can_be_set(sandbox, tmp_path):
    assert sandbox.server.clock == sandbox.server.world.config.epoch + datetime.timedelta(days=365)
    pinned = SandboxPlatform(classes=list(DEMO_CLASSES[:1]), clock="2021-03-04", cache_dir=str(tmp_path))
    assert pinned.clock_date(pinned.world_config()).isoformat() == "2021-03-04"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        SandboxPlatform(clock="March 4th").clock_date(pinned.world_config())


def test_a_clock_file_moves_every_server_of_the_world_at_once(tmp_path):
    """The demo's year passes for the code server and every run worker alike: each has its own server."""
    shared = dict(classes=list(DEMO_CLASSES[:1]), relevant_per_class=2, distractors_per_class=0,
                  cache_dir=str(tmp_path / "world"), clock_file=str(tmp_path / "clock"))
    first, second = SandboxPlatform(**shared), SandboxPlatform(**shared)
    try:
        start = first.server.world.config.epoch + datetime.timedelta(days=365)
        assert first.server.clock == second.server.clock == start  # no file yet
        later = start + datetime.timedelta(days=365)
        FileClock(tmp_path / "clock", start).set(later)
        assert first.server.clock == second.server.clock == later
        (tmp_path / "clock").write_text("next year\n")
        with pytest.raises(ValueError, match="clock.*'next year' is not a date"):
            first.server.clock
    finally:
        first.shutdown(), second.shutdown()


def test_sandbox_server_starts_lazily_and_stops_at_teardown(tmp_path, isolated_path):
    resource = SandboxPlatform(
        classes=list(DEMO_CLASSES[:1]), relevant_per_class=4, distractors_per_class=0, cache_dir=str(tmp_path))
    # Pick a query with a hit from an identical world built outside the resource.
    world = World(resource.world_config(), tmp_path)
    clock = resource.clock_date(world.config)
    query = next(m.title for m in map(world.metadata, GroundTruth(world).ids()) if world.search(m.title, 1, on=clock))
    seen: dict[str, object] = {}

    @dg.asset
    def probe_first_hit(platform: VideoPlatform) -> None:
        """Uses only the generic VideoPlatform calls, as pipeline assets do."""
        ydl = platform.youtube_dl(extract_flat="in_playlist")
        [entry] = ydl.extract_info(platform.search_url(query, 1), download=False)["entries"]
        seen["probe"] = platform.probe_url(entry["id"])
        seen["status"] = requests.get(seen["probe"], timeout=30).status_code

    assert not resource.started
    assert dg.materialize([probe_first_hit], resources={"platform": resource}).success
    assert seen["status"] == 200
    assert not resource.started
    with pytest.raises(requests.ConnectionError):
        requests.get(seen["probe"], timeout=5)


def test_print_tables_are_rendered_only_when_something_prints(isolated_path, monkeypatch, capsys):
    rendered: list[str] = []
    monkeypatch.setattr(PlatformYoutubeDL, "render_formats_table", lambda self, info: rendered.append(info["id"]))
    info = {"id": "dQw4w9WgXcQ", "title": "t", "ext": "mp4", "formats": []}
    silent = YouTubePlatform().youtube_dl()
    for stage in ("video", "pre_process", "before_dl", "post_process", "after_move", "after_video"):
        assert silent._forceprint(stage, info) is info
    assert rendered == []
    printing = YouTubePlatform().youtube_dl(forceprint={"after_move": ["%(id)s"]}, quiet=False)
    printing._forceprint("after_move", info)
    assert rendered == ["dQw4w9WgXcQ"] and capsys.readouterr().out == "dQw4w9WgXcQ\n"
    YouTubePlatform().youtube_dl(forcetitle=True)._forceprint("video", info)
    assert rendered == ["dQw4w9WgXcQ"] * 2
