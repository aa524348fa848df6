"""The dashboard's configuration, handed from `kubetune dashboard` to the Streamlit process in the
environment (kept free of Streamlit imports so the CLI can build it without starting a runtime)."""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_SOURCE = "KUBETUNE_DASHBOARD_SOURCE"
ENV_HISTORY = "KUBETUNE_DASHBOARD_HISTORY_DIR"
ENV_TEAM = "KUBETUNE_DASHBOARD_TEAM_LABEL"
ENV_ERROR = "KUBETUNE_DASHBOARD_ERROR"


@dataclass(frozen=True)
class Config:
    source: str | None = None
    history_dir: str | None = None
    team_label: str = "team"
    error: str | None = None  # why the source could not be read (shown by every page)

    @classmethod
    def from_env(cls) -> Config:
        return cls(source=os.environ.get(ENV_SOURCE) or None, history_dir=os.environ.get(ENV_HISTORY) or None,
                   team_label=os.environ.get(ENV_TEAM) or "team", error=os.environ.get(ENV_ERROR) or None)

    def env(self) -> dict[str, str]:
        """The environment that hands this configuration to the Streamlit process."""
        out = {ENV_TEAM: self.team_label}
        if self.source:
            out[ENV_SOURCE] = self.source
        if self.history_dir:
            out[ENV_HISTORY] = self.history_dir
        if self.error:
            out[ENV_ERROR] = self.error
        return out
