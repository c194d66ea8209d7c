"""The `seqcast` command line: a Typer application over the library.

Each command lives in its own module, parses its options with the aliases in
`seqcast.cli.options`, calls the library and prints. `main` is the console
script. Bad input ends the program with one line on stderr and exit status 2,
whether it is a usage error found by Typer or a `SeqcastError` from the library.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

# Typer 0.29 ships its own copy of Click as typer._click. Typer releases that
# depend on the click package instead do not have that module.
try:
    from typer._click import exceptions as click_exceptions
except ImportError:
    from click import exceptions as click_exceptions

from seqcast.errors import SeqcastError

__all__ = ["app", "main"]

USAGE_ERROR_STATUS = 2
# Raised for a group called without arguments by the Click inside Typer 0.29.
# Where Click lacks it, the empty tuple catches nothing.
_NO_ARGS_IS_HELP = getattr(click_exceptions, "NoArgsIsHelpError", ())


class _OneLineErrors(TyperGroup):
    """A command group that reports bad input on one line instead of a panel."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, False, **extra)
        except _NO_ARGS_IS_HELP as error:
            typer.echo(error.ctx.get_help(), err=True)
            sys.exit(USAGE_ERROR_STATUS)
        except click_exceptions.UsageError as error:
            _exit_with_error(_usage_message(error), error.exit_code)
        except click_exceptions.ClickException as error:
            _exit_with_error(error.format_message(), error.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        except SeqcastError as error:
            _exit_with_error(str(error), USAGE_ERROR_STATUS)
        # Without standalone mode, Click returns the status of an explicit exit
        # (--help returns 0) and otherwise the command's return value.
        sys.exit(status if isinstance(status, int) else 0)


def _usage_message(error: Any) -> str:
    # pydantic starts the messages of Typer's choice checks with "Value error, ".
    message = error.format_message().rstrip(".").replace("Value error, ", "")
    received = _received_value(error)
    if received is not None and f"'{received}'" not in message:
        message += f", got {received}"
    ctx = error.ctx
    if ctx is None or not ctx.help_option_names:
        return message
    return f"{message}; see '{ctx.command_path} {ctx.help_option_names[0]}'"


def _received_value(error: Any) -> object | None:
    """Return the rejected text when Typer's type or range check failed.

    Typer checks option values with pydantic, whose error keeps the input,
    while the message ("Input should be greater than or equal to 1") leaves
    it out.
    """
    cause = error.__cause__
    if type(cause).__name__ != "ValidationError" or not hasattr(cause, "errors"):
        return None
    details = cause.errors()
    return details[0].get("input") if details else None


def _exit_with_error(message: str, status: int) -> None:
    # Messages are one line by contract. Joining stray line breaks keeps a
    # multi-line message from a dependency on one line as well.
    text = " ".join(str(message).split())
    typer.echo(f"error: {text}", err=True)
    sys.exit(status)


app = typer.Typer(
    name="seqcast",
    cls=_OneLineErrors,
    help="Forecast univariate series with small dense networks, beside baselines.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _enable_compilation_cache() -> None:
    """Keep compiled JAX programs on disk so that later runs skip compilation.

    The folder is ``$SEQCAST_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqcast/jax``,
    else ``~/.cache/seqcast/jax``. An empty ``SEQCAST_CACHE_DIR`` turns the
    cache off. JAX is imported here only when a command runs, not for --help.
    """
    folder = os.environ.get("SEQCAST_CACHE_DIR")
    if folder == "":
        return
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(base) / "seqcast" / "jax"
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    # seqcast's programs compile in about a second, below JAX's default
    # threshold for caching, so cache every program.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def main() -> None:
    """Run the command line and turn a `SeqcastError` into one line on stderr."""
    if not {"-h", "--help"} & set(sys.argv[1:]):
        _enable_compilation_cache()
    try:
        app(prog_name="seqcast")
    except SeqcastError as error:
        _exit_with_error(str(error), USAGE_ERROR_STATUS)


# The command modules register themselves on `app` when imported.
from seqcast.cli import run  # noqa: E402, F401

# TODO: import these two like `run` once both modules are in the package.
for _name in ("seqcast.cli.lr_find", "seqcast.cli.tune"):
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as error:
        if error.name != _name:
            raise
