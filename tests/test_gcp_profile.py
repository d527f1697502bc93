"""The gcp profile against a real GCS JSON API (gcp-storage-emulator on 127.0.0.1)."""

from __future__ import annotations

from google.cloud import storage

from tests.gcs_emulator import gcs_emulator


def test_emulator_round_trips_an_object_through_the_google_client(monkeypatch):
    """The harness every gcp test stands on: google-cloud-storage reaches the emulator, not Google."""
    payload = bytes(range(256)) * 4000  # 1 MB, every byte value
    with gcs_emulator(bucket="round-trip") as emulator:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
        client = storage.Client(project="test-project")
        client.bucket(emulator.bucket).blob("dir/object with space.bin").upload_from_string(payload)
        assert [b.name for b in client.list_blobs(emulator.bucket)] == ["dir/object with space.bin"]
        assert client.bucket(emulator.bucket).blob("dir/object with space.bin").download_as_bytes() == payload
