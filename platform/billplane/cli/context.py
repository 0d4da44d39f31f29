"""Settings and runtime for CLI commands, with readable errors instead of tracebacks."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from billplane.cli.devenv import DevEnvironment
from billplane.runtime import Runtime
from billplane.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def settings_for_cli(*, serving: bool) -> Settings:
    """Settings from the environment; on a developer machine with no database URL set, the
    embedded database that `billplane dev` created (started if it is not running)."""
    env = dict(os.environ)
    if not env.get("BILLPLANE_DATABASE_URL"):
        dev = DevEnvironment.existing(Path.cwd())
        if dev is not None:
            click.echo(f"BILLPLANE_DATABASE_URL is not set: using the embedded database in {dev.home}", err=True)
            env.update(dev.environment())
            os.environ.update(env)  # worker processes of `run --workers N` read the same
    try:
        return load_settings(env, serving=serving)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def run_with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        runtime = Runtime.from_settings(settings)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except OSError as exc:  # connection refused, unknown host: say which database we tried
        url = settings.database.url.rsplit("@", 1)[-1]
        click.echo(f"error: cannot reach the database at {url}: {exc}", err=True)
        sys.exit(2)
