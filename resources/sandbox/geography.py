"""The Data API resource pointed at the sandbox: the production client, the sandbox server's address and key."""

from __future__ import annotations

from pydantic import Field

from resources.geography import YouTubeDataApi
from resources.sandbox.data_api import SANDBOX_API_KEY
from resources.sandbox.resource import SandboxPlatform


class SandboxDataApi(YouTubeDataApi):
    """`YouTubeDataApi` on the sandbox platform's server (started on first use), with its local key."""

    platform: SandboxPlatform
    api_key: str = Field(default=SANDBOX_API_KEY, description="The sandbox server's key (not a secret).")

    def endpoint(self) -> str:
        return f"{self.platform.server.base_url}/"
