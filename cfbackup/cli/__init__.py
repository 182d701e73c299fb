"""The ``cfbackup`` command: parse options, call an action, turn errors into exit codes.

Nothing here runs duplicity or talks to Swift; ``main`` is the one place where a
:class:`CfbackupError` becomes a message and an exit code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from cfbackup import interrupts
from cfbackup.errors import CfbackupError, ExitCode


def main(argv: list[str] | None = None) -> int:
    return stoppable(lambda: _main(argv))


def stoppable(start: Callable[[], int]) -> int:
    """Run a front-end's ``start`` with Ctrl-C and SIGTERM raising KeyboardInterrupt from its
    first statement on: one that comes while the parser is built or the plugins load (before
    :func:`guarded` takes over) ends in the same one line and exit code, not a traceback."""
    try:
        interrupts.install()
        return start()
    except KeyboardInterrupt:
        return _interrupted()


def _interrupted() -> int:
    with interrupts.ignored():  # a second signal must not print a traceback into this line
        from cfbackup.cli import output
        from cfbackup.cli.output import print_error

        print_error(CfbackupError(interrupts.MESSAGE, exit_code=ExitCode.INTERRUPTED), debug=False)
        output.flush_stdout()
    return int(ExitCode.INTERRUPTED)


def _main(argv: list[str] | None) -> int:
    from cfbackup.duplicity import early

    early.start(sys.argv[1:] if argv is None else argv)  # a backup's duplicity, beside the rest
    from cfbackup import suggest
    from cfbackup.cli.context import CliContext
    from cfbackup.cli.parser import make_parser, misplaced_option

    context = CliContext()
    parser = make_parser(context)
    misplaced = misplaced_option(parser, sys.argv[1:] if argv is None else argv)
    if misplaced:
        parser.error(misplaced)  # exit 2, as argparse's own usage errors
    args = parser.parse_args(argv)
    context.args = args
    _setup_logging(args)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    suggest.use_config(getattr(args, "config", None))
    return guarded(lambda: handler(args, context), debug=args.debug)


def guarded(command: Callable[[], int], *, debug: bool) -> int:
    """Run ``command`` and turn every way it can end into an exit code and at most one line on
    stderr; shared by ``cfbackup`` and ``dt-cf-backup`` so both fail the same way."""
    from cfbackup.cli import output
    from cfbackup.cli.output import print_error

    try:
        code = command()
    except CfbackupError as error:
        print_error(error, debug=debug)
        code = error.exit_code
    except KeyboardInterrupt:  # outside a run (a run records and reports its own)
        return _interrupted()
    except BrokenPipeError:  # the reader left (cfbackup list | head): stop quietly, like cat
        output.close_broken_pipe(sys.stdout)
        code = ExitCode.OK
    except Exception as error:  # a bug: one line, the traceback only with --debug
        from cfbackup.runner import internal_error_message

        if debug and not getattr(error, "cfbackup_traceback_logged", False):
            import traceback

            from cfbackup.redact import redact_output

            print(redact_output(traceback.format_exc()), file=sys.stderr)
        print_error(CfbackupError(internal_error_message(error)), debug=False)
        code = ExitCode.INTERNAL
    output.flush_stdout()
    return int(code)


def _setup_logging(args) -> None:
    from cfbackup.redact import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    handler.setLevel(level)
    logging.getLogger("cfbackup").addHandler(handler)
    logging.getLogger("cfbackup").setLevel(logging.DEBUG)


def run() -> None:
    from cfbackup import quick_exit

    quick_exit.exit_now(main())
