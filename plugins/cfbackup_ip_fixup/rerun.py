"""What a failed fix-up tells the user to run: the ``cfbackup ip-fixup`` command that does it
again (their ``-c FILE``, the profile, the server and its addresses), and the end of a message
after a part-way failure, naming what was already changed.

Running it again is safe: with ``dns_check_old`` a record that already holds the new addresses
is left as it is (checkold.py), without it the record is written with the same addresses again,
and hosts-file lines already holding the new addresses no longer match the old ones.
"""

from __future__ import annotations

from cfbackup import suggest
from cfbackup.errors import CfbackupError


def command(server: str, old: list[str], new: list[str], profile: str) -> str:
    """``cfbackup [-c FILE] ip-fixup --name S [--old A,B] --new C,D --profile P``."""
    return suggest.command(
        "ip-fixup",
        "--name",
        server,
        *(("--old", ",".join(old)) if old else ()),
        "--new",
        ",".join(new),
        "--profile",
        profile,
    )


def part_way(error: CfbackupError, atomic: str, changed: list[str], rerun: str) -> CfbackupError:
    """``error`` after ``changed`` (as shown in a sentence) were already changed: says so, and
    that ``rerun`` completes the rest. ``atomic`` says what the backend does not do at once
    ("Designate updates are not atomic")."""
    return type(error)(
        f"{error.message.rstrip('.')}; {atomic}, and {', '.join(changed)} "
        f"{'was' if len(changed) == 1 else 'were'} already changed: once that is fixed, run "
        f"{rerun} to complete the rest (it leaves what is done as it is).",
        exit_code=error.exit_code,
    )
