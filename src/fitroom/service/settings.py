"""Service settings: ``FITROOM_*`` environment variables (pydantic-settings), then values given directly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from fitroom.errors import ConfigurationError


class Settings(BaseSettings):
    """Every field is also read from the environment variable ``FITROOM_<FIELD>`` (e.g. ``FITROOM_API_KEY``);
    values given to the constructor win."""

    model_config = SettingsConfigDict(env_prefix="FITROOM_", extra="ignore")

    data_dir: Path = Path("fitroom-data")  # the database (SQLite), shoppers' photos, results, garments
    database_url: str = ""  # default: sqlite:///DATA_DIR/fitroom.db; e.g. postgresql+psycopg://user@host/db
    engine: str = "warp"
    checkpoint: str = ""  # the engine's checkpoint folder (hrviton, cpvton)
    device: str = "auto"  # where a learned engine runs: auto, cpu, cuda, cuda:N or mps
    #: the engine's own options, e.g. FITROOM_ENGINE_OPTIONS='{"steps": 20, "scheduler": "dpm"}' for diffusion
    engine_options: dict = {}
    #: where images are kept: empty for the data folder, s3://bucket/prefix for S3-compatible object storage
    storage: str = ""
    workers: int = Field(1, ge=0)  # try-on workers in the server process; 0: only `fitroom worker` processes run them
    lease_s: float = Field(60.0, ge=1)  # a worker that stops saying it works on a job loses it after this long
    poll_s: float = Field(0.5, gt=0)  # how often an idle worker looks for a job
    check_processes: int = Field(0, ge=0)  # photo checks in N processes of their own; 0: in the server, one at a time
    queue_size: int = Field(8, ge=1)  # try-ons waiting or running before new ones get 429
    max_upload_bytes: int = Field(15 * 2**20, ge=1024)
    max_pixels: int = Field(40_000_000, ge=10_000)
    retention_hours: float = Field(24.0, gt=0)  # shoppers' photos and results, unless they agreed to share
    rate_limit_per_minute: int = Field(60, ge=1)  # requests per client address
    job_timeout_s: float = Field(300.0, gt=0)
    admin_token: str = ""  # the admin page and its API; empty: disabled
    api_key: str = ""  # the shop's key for catalogue changes and statistics; empty: those are refused
    model_version: str = ""  # recorded with every try-on (default: the engine name and its checkpoint)
    # putting the service on a shop's site
    cors_origins: str = ""  # comma-separated origins whose pages may call the API (e.g. https://shop.example); "*": any
    root_path: str = ""  # the path prefix a reverse proxy serves the service under (e.g. /fitroom)
    trusted_proxies: str = ""  # comma-separated proxy addresses whose X-Forwarded-For/-Proto are believed; "*": any
    access_log: bool = False  # one line per request (method, path, status, client) on the log
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per log line, with the request id

    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'fitroom.db').resolve()}"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """The environment's ``FITROOM_*`` values, then ``overrides`` (those that are not None); an invalid value
        is a :class:`~fitroom.errors.ConfigurationError` naming the variable."""
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except SettingsError as error:  # a value the environment source cannot parse (e.g. a dict that is not JSON)
            field_name = re.search(r'field "(\w+)"', str(error))
            variable = f"FITROOM_{field_name.group(1).upper()}" if field_name else "a FITROOM_* variable"
            raise ConfigurationError(f"invalid service setting: {variable} cannot be read ({error}); a dict is "
                                     f"given as JSON") from None
        except ValidationError as error:
            problems = "; ".join(f"FITROOM_{'_'.join(str(p) for p in e['loc']).upper()} ({e['input']!r}): {e['msg']}"
                                 for e in error.errors())
            raise ConfigurationError(f"invalid service setting: {problems}") from None
