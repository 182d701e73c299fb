"""Where a relative ``file://`` target (``file://backups/web``) puts backups, said without
inventing a path.

duplicity reads ``file://backups/web`` as the folder ``backups/web`` under the folder it runs in
(``localbackend``: ``parsed_url.path[2:]``; ``ParsedUrl`` folds the host into the path for
``file``, so ``file://localhost/srv/b`` is ``localhost/srv/b`` too, and ``~`` is no home), and
cfbackup starts it in its own folder: the user's home from cron, ``/`` from systemd (no
``WorkingDirectory=`` in the units ``schedule install`` writes), wherever it was typed by hand.
The backups of a profile so far are under one of those, and only the user knows which.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from cfbackup.duplicity.target import file_folder


def relative_folder(target: str) -> str | None:
    """The relative folder a ``file://`` target names (``backups/web``), as duplicity and
    ``stores.FileStore`` read it; None for an absolute one (``file:///srv/b``) and for any other
    scheme."""
    if not target.lower().startswith("file://"):  # swift://container is no folder at all
        return None
    folder = file_folder(target)
    return None if folder.startswith("/") else folder


def relative_target(target: str) -> str:
    """The problem with a native profile's relative ``file://`` target: where its backups
    went, and the fix (file:// and an absolute path)."""
    folder = relative_folder(target) or ""
    if not folder:
        return (
            f"{target} names no folder (duplicity refuses it): write file:// and the absolute "
            "path of a folder (file:///ABSOLUTE/PATH)"
        )
    return (
        f"{target} is a relative path{_note(folder)}, which duplicity reads under the folder "
        f"cfbackup runs in, so backups so far are under the folder each run started in: "
        f"{_places(folder)}: write file:// and the absolute path of the folder that holds "
        "them (file:///ABSOLUTE/PATH)"
    )


def legacy_warning(path: Path | None, target: str) -> str:
    """The warning for a legacy ``DEST=file://backups/web``: the old script, from cron in the
    user's home, kept backing up there; cfbackup does the same (refused, every scheduled run
    would stop on the day cfbackup replaced it), and says where and what to write."""
    folder = relative_folder(target) or ""
    home, here = _home(), _cwd()
    cron = _url(home, folder)
    where = f"{path}: " if path else ""
    if here is None or here == home:
        this_run = f"run here, as by the old script from cron (your home), it is {cron}"
    else:
        this_run = (
            f"run here it is {_url(here, folder)}, and by the old script from cron (your home) "
            f"it was {cron}"
        )
    return (
        f"{where}DEST={target} is a relative path{_note(folder)}, which duplicity reads under "
        f"the folder cfbackup runs in: {this_run}: write DEST={cron} (or the absolute path of "
        "the folder that holds your backups) so that every run and restore finds them"
    )


def legacy_migrated(target: str) -> tuple[str, str] | None:
    """For ``config migrate`` of a legacy ``DEST=file://backups/web`` (a native config refuses
    a relative target): the absolute target to write, the folder the old script from cron (the
    user's home) backed up to, as :func:`legacy_warning` says to write, and the warning saying
    so; None for an absolute target."""
    folder = relative_folder(target)
    if not folder:
        return None
    home, here = _home(), _cwd()
    written = _url(home, folder)
    here_too = "" if here is None or here == home else f"; run here it was {_url(here, folder)}"
    return written, (
        f'DEST={target} is a relative path{_note(folder)}: migrated as target = "{written}", '
        f"the folder the old script put its backups in from cron (your home{here_too}): if "
        "your backups are elsewhere, put the absolute path of their folder there"
    )


def _places(folder: str) -> str:
    """Each folder the backups went to, by how cfbackup ran (here, cron, systemd), once each."""
    by_folder: dict[str, list[str]] = {}
    here = _cwd()
    if here is not None:
        by_folder.setdefault(here, []).append(f"run in {here}")
    by_folder.setdefault(_home(), []).append("from cron: the user's home")
    by_folder.setdefault("/", []).append("from systemd")
    said = [f"{_url(start, folder)} ({', or '.join(how)})" for start, how in by_folder.items()]
    return ", ".join(said[:-1]) + " or " + said[-1] if len(said) > 1 else said[0]


def _note(folder: str) -> str:
    first = folder.split("/", 1)[0]
    if first.startswith("~"):
        return " (duplicity does not expand ~: it reads a folder named ~)"
    if first.lower() == "localhost":
        return " (duplicity reads localhost as a folder's name, not as this machine)"
    return ""


def _url(start: str, folder: str) -> str:
    """file:// and the absolute path ``folder`` means under ``start``, written so that it reads
    back the same (a % # or ? quoted)."""
    absolute = os.path.normpath(os.path.join(start, folder))
    return "file://" + urllib.parse.quote(absolute, safe="/ !$&'()*+,;=:@~")


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # a folder removed under the shell
        return None


def _home() -> str:
    """The home cron starts the user's jobs in: the password database's, as cron reads it."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return str(Path.home())
