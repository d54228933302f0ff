"""Commands built from option groups: a command's body receives one :class:`Given` holding every option's value,
and the option list (its signature, as typer reads it) is assembled from the groups, never written out again."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

import typer.core

from .options import CONFIG, Opt

# command name -> its options, in --help order (main() reads the spread ones; tests read the defaults)
COMMAND_OPTIONS: dict[str, tuple[Opt, ...]] = {}


class Given:
    """The values of a command's options, by parameter name, and the defaults they were compared with."""

    def __init__(self, command: str, options: Iterable[Opt], values: dict[str, Any]):
        self.command = command
        self._defaults = {o.name: o.default_for(command) for o in options}
        self.__dict__.update(values)

    def changed(self, *names: str) -> dict[str, Any]:
        """The options among ``names`` the user set to something other than the default: the keyword arguments
        for API parameters that only some versions of the API take."""
        return {name: getattr(self, name) for name in names if getattr(self, name) != self._defaults[name]}


def command(app, name: str, *groups: Iterable[Opt]) -> Callable[[Callable[[Given], Any]], Callable[[Given], Any]]:
    """Register ``body(given)`` as ``warmstart NAME`` with the options of ``groups`` (plus ``--config``)."""

    def register(body: Callable[[Given], Any]) -> Callable[[Given], Any]:
        options = (*(o for group in groups for o in group), CONFIG)
        names = [o.name for o in options]
        duplicated = {n for n in names if names.count(n) > 1}
        if duplicated:
            raise ValueError(f"command {name}: options declared twice: {', '.join(sorted(duplicated))}")

        def run(ctx: typer.Context, **values: Any) -> Any:
            from .config_file import replayed_data

            with replayed_data(ctx):
                return body(Given(name, options, values))

        run.__signature__ = inspect.Signature([inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                                 annotation=typer.Context),
                                               *(_parameter(o, name) for o in options)])
        run.__annotations__ = {"ctx": typer.Context, **{o.name: o.type for o in options}}
        run.__doc__, run.__name__ = body.__doc__, body.__name__
        COMMAND_OPTIONS[name] = options
        app.command(name, cls=PanelledCommand)(run)
        return body

    return register


class FastHelp:
    """The help option's default as a bool, not None: typer then skips coercing it, which would import pydantic
    (0.2-0.4 s of a start-up that must stay under 0.5 s) before ``--help`` or ``--version`` could answer."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.default = False
        return option


class PanelledGroup(FastHelp, typer.core.TyperGroup):
    """The ``warmstart`` group itself."""


class PanelledCommand(FastHelp, typer.core.TyperCommand):
    """``--help`` with the options under their panels (data, training, ...), written as plain text by click: rich's
    boxes take longer to import and draw than the 0.5 s a help may take (benchmarks/cli_startup.py)."""

    def format_options(self, ctx, formatter) -> None:
        panels: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                panel = param.rich_help_panel if isinstance(param, typer.core.TyperOption) else None
                panels.setdefault(panel or ("Arguments" if param.param_type_name == "argument" else "Options"),
                                  []).append(record)
        for panel, records in panels.items():
            with formatter.section(panel):
                formatter.write_dl(records)


def _parameter(option: Opt, command: str) -> inspect.Parameter:
    info = option.typer_option(command)
    if option is CONFIG:  # read first, so that its values become the other options' defaults
        from .config_file import load_into_context

        info.is_eager, info.callback = True, load_into_context
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=option.type)


def spread_flags(command: str) -> tuple[str, ...]:
    return tuple(flag for o in COMMAND_OPTIONS.get(command, ()) if o.spread for flag in o.flags)


def spread_values(args: list[str], commands: Iterable[str]) -> list[str]:
    """``compare --shots 5 10 50`` becomes ``compare --shots 5 --shots 10 --shots 50``, which click parses: click
    gives an option one value per flag. (``5,10,50`` is split by the command, with its own error messages.)"""
    command = next((a for a in args if a in commands), None)
    flags = spread_flags(command) if command else ()
    spread: list[str] = []
    current, values = None, 0
    for arg in args:
        if arg.startswith("-"):
            current, values = (arg, 0) if arg in flags else (None, 0)
        elif current is not None:
            if values:
                spread.append(current)
            values += 1
        spread.append(arg)
    return spread

