"""What every ``pe`` command shares: the global options and the lake they select."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from jobs.config import PEConfig, load_config

if TYPE_CHECKING:
    from jobs.storage.lake import Lake


@dataclass
class State:
    """The root command's options; the config is loaded once, on first use."""

    config_path: Optional[Path] = None
    lake: Optional[str] = None
    debug: bool = False
    _cfg: Optional[PEConfig] = field(default=None, repr=False)

    @property
    def cfg(self) -> PEConfig:
        if self._cfg is None:
            self._cfg = load_config(self.config_path, lake=self.lake)
        return self._cfg

    def cfg_with(self, overrides: dict[str, Any]) -> PEConfig:
        """The config with command-line ``overrides`` merged in (validated like the file)."""
        return load_config(self.config_path, lake=self.lake, overrides=overrides)


def state(ctx: typer.Context) -> State:
    return ctx.find_root().obj


def open_lake(ctx: typer.Context, with_spark: bool = True) -> "Lake":
    """The lake of the current config, with a Spark session when the command needs one."""
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake

    cfg = state(ctx).cfg
    return Lake.from_config(cfg, get_spark(cfg) if with_spark else None)


def no_registry(uri: str) -> bool:
    """A local sqlite registry that does not exist yet (MLflow would create an empty one)."""
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()
