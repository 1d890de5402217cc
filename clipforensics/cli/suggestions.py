"""A misspelt command, option or choice is answered with the closest valid one ("Did you mean ...?")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from .. import words


def closest(word: str, valid: Iterable[str]) -> str:
    """" Did you mean 'X'?" for the valid word nearest to ``word``, or "" when none is near."""
    match = words.closest(word, valid)
    return f" Did you mean {match!r}?" if match else ""


class _SuggestsOptions(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as error:
            names = [name for param in self.get_params(ctx) for name in (*param.opts, *param.secondary_opts)
                     if name.startswith("-")]
            message = f"No such option {error.option_name!r}.{closest(error.option_name, names)}"
            raise click.NoSuchOption(error.option_name, message, ctx=ctx) from None


class Command(_SuggestsOptions):
    """A command that names the closest valid option when given an unknown one."""


class Group(_SuggestsOptions, click.Group):
    """A group that lists its commands in the order they were added, and names the closest valid command
    or option when given an unknown one."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, ...]:
        name = args[0]
        if self.get_command(ctx, name) is None and not name.startswith("-") and not ctx.resilient_parsing:
            raise click.UsageError(f"No such command {name!r}.{closest(name, self.list_commands(ctx))}", ctx)
        return super().resolve_command(ctx, args)


class Choice(click.Choice):
    """A choice that names the closest valid value when given an invalid one."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as error:
            hint = closest(str(value), map(str, self.choices))
            if not hint:
                raise
            self.fail(f"{error.message}{hint}", param, ctx)
