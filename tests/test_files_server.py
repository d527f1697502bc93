"""The artefact folder served for the UI's links: materializations link http URLs of the files server, which
serves the folder read-only on loopback and nothing outside it."""

from __future__ import annotations

import dagster as dg
import pytest
import requests

from kinetics_assets.files_server import loopback_address, serving_files
from resources.storage import LocalArtifactStore
from test_ui_smoke import free_port


@pytest.fixture()
def store(tmp_path):
    return LocalArtifactStore(root=str(tmp_path / "artifacts"), files_url=f"http://127.0.0.1:{free_port()}")


def test_a_link_is_the_files_servers_url_of_the_file_or_folder(store):
    report = store.write_text("release/data docs/index.html", "<h1>docs</h1>")
    assert store.link(report) == dg.MetadataValue.url(f"{store.files_url}/release/data%20docs/index.html")
    assert store.link(report.parent) == dg.MetadataValue.url(f"{store.files_url}/release/data%20docs/")


def test_without_a_files_url_a_link_is_the_plain_path(tmp_path):
    store = LocalArtifactStore(root=str(tmp_path))
    report = store.write_text("r.md", "x")
    assert store.link(report) == dg.MetadataValue.path(str(report))


def test_a_link_outside_the_store_is_refused(store, tmp_path):
    with pytest.raises(ValueError):
        store.link(tmp_path / "elsewhere.txt")


def test_the_server_serves_the_files_read_only_and_nothing_outside(store, tmp_path):
    store.write_text("editions/table1.md", "# Table 1\n")
    (tmp_path / "secret.txt").write_text("outside the store")
    with serving_files(tmp_path / "artifacts", store.files_url) as url:
        assert requests.get(f"{url}/editions/table1.md", timeout=10).text == "# Table 1\n"
        assert "table1.md" in requests.get(f"{url}/editions/", timeout=10).text  # a folder lists its files
        assert "outside the store" not in requests.get(f"{url}/../secret.txt", timeout=10).text
        assert "outside the store" not in requests.get(f"{url}/%2e%2e/secret.txt", timeout=10).text
        assert requests.post(f"{url}/editions/table1.md", data=b"x", timeout=10).status_code == 501
        assert requests.put(f"{url}/editions/new.md", data=b"x", timeout=10).status_code == 501
    assert not (tmp_path / "artifacts" / "editions" / "new.md").exists()


@pytest.mark.parametrize("url", ["http://0.0.0.0:3001", "http://example.com:3001", "https://127.0.0.1:3001",
                                 "http://127.0.0.1"])
def test_only_a_loopback_http_address_with_a_port_is_served(url):
    with pytest.raises(ValueError, match="loopback"):
        loopback_address(url)
