"""duplicity's gpg self-test asks gpg-agent for loopback pinentry without deriving a key (a core
patch).

Before every action (backup, restore, verify, list, status, cleanup, remove: ``dup_main.
do_backup`` calls ``check_environment``, which calls ``gpg.check_gpg``), when it encrypts or
signs with gpg 2.1+ and no ``--use-agent``, duplicity runs ``gpg --symmetric`` on 4 bytes with the
passphrase "test" and loopback pinentry: gpg-agent refusing loopback pinentry
(``no-allow-loopback-pinentry``) makes it fail, and duplicity ends with a clear message. That
encryption derives a key with the s2k count gpg-agent calibrated: 0.3 s of CPU on the critical
path of every run, for output nobody reads.

What the test proves is gpg's first request to the agent: gpg sends ``OPTION
pinentry-mode=loopback`` when it connects, and a refusing agent fails it there (measured with
gpg 2.2.40). A lower ``--s2k-count`` does not keep that: gpg then never contacts the agent and
the test passes under an agent that refuses loopback (and gpg takes 1024, the documented
minimum, for "ask the agent": the full derivation again). This patch runs gpg with the same
binary, the user's gpg options and loopback pinentry, but the command is ``--export-secret-keys``
of a fingerprint no key has: gpg connects to the agent first (it asks it for the key that wraps
an export) and exports nothing, in a few milliseconds. The passphrase is not needed and no
longer on gpg's command line. The rest of ``check_gpg`` (gpg found, its version) is
duplicity's own, so is its message when the test fails.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping

OFF = "CFBACKUP_NO_GPG_SELFTEST"  # =1: duplicity's own self-test (one run)
NO_KEY = "0" * 40  # a fingerprint no key has (a SHA-1 of all zeros): nothing is exported
_SELFTEST = (["--symmetric", "-o", "-"], ["--pinentry-mode", "loopback", "--passphrase", "test"])
_inside = threading.local()


def applies(env: Mapping[str, str]) -> bool:
    return not env.get(OFF)


def apply(env: Mapping[str, str]) -> None:
    from duplicity import gpg, gpginterface

    genuine_check = gpg.check_gpg
    genuine_run = gpginterface.GnuPG.run

    def check_gpg():
        _inside.checking = True
        try:
            return genuine_check()
        finally:
            _inside.checking = False

    def run(self, gnupg_commands, args=None, create_fhs=None, attach_fhs=None):
        if not (
            getattr(_inside, "checking", False)
            and is_selftest(gnupg_commands, self.options.extra_args)
        ):
            return genuine_run(self, gnupg_commands, args, create_fhs, attach_fhs)
        gnupg_commands, args = cheap_selftest(self.options.extra_args)
        process = genuine_run(self, gnupg_commands, args, create_fhs, attach_fhs)
        # gpg reads no input now and may be gone before duplicity writes its 4 bytes: they
        # go nowhere instead of into a broken pipe (which duplicity would take for a refusal)
        process.handles["stdin"].close()
        process.handles["stdin"] = io.BytesIO()
        return process

    gpg.check_gpg = check_gpg
    gpginterface.GnuPG.run = run


def is_selftest(commands: list[str], extra_args: list[str]) -> bool:
    """Whether gpg is about to run duplicity's loopback self-test."""
    test_commands, test_args = _SELFTEST
    return list(commands) == test_commands and extra_args[-len(test_args) :] == test_args


def cheap_selftest(extra_args: list[str]) -> tuple[list[str], list[str]]:
    """The commands and arguments of the cheap test; drops the test passphrase from
    ``extra_args`` (gpg's options, in place)."""
    del extra_args[-2:]  # --passphrase test
    return ["--export-secret-keys"], [NO_KEY]
