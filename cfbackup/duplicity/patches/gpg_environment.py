"""The programs duplicity starts (gpg, the gpg-agent gpg starts, ``uname``) get its environment
without the secrets in it.

duplicity starts gpg with ``os.fork`` and ``os.execvp`` (``gpginterface.GnuPG._as_child``), so
gpg inherits duplicity's whole environment: ``PASSPHRASE``, ``SWIFT_PASSWORD``, ``ST_KEY``...
(seen with ``strace -f -e execve -v``, tests/end_to_end/test_secrets.py). gpg needs none of
them: duplicity hands it the passphrase on a pipe (``--passphrase-fd``). The first gpg also
starts gpg-agent, a daemon that outlives the run with that environment readable in
``/proc/PID/environ`` for as long as it lives. In the forked child, just before gpg is
executed, the secret variables are removed; ``subprocess.Popen`` without an ``env`` (Python's
``platform`` runs ``uname -p`` so) gets the environment without them. duplicity's own
environment is untouched: it re-executes itself with it to restart a backup, and its upload
pool's workers (multiprocessing, not subprocess) need the Swift key.

The variables a ``*_env`` setting of the config names (``passphrase_env = "MY_PASSPHRASE"``)
are removed too: cfbackup does not pass them to duplicity (``execute.child_environment``), and
names them in :data:`NAMED` (names, never values) in case one is given on purpose.
"""

import os

# every variable cfbackup puts a secret in (cfbackup/duplicity/environment.py, the
# application-credential and handed-token patches)
SECRET_VARIABLES = (
    "PASSPHRASE",
    "SIGN_PASSPHRASE",
    "SWIFT_PASSWORD",
    "SWIFT_PREAUTHTOKEN",
    "SWIFT_HANDOVER_TOKEN",
    "ST_KEY",
    "OS_PASSWORD",
    "OS_APPLICATION_CREDENTIAL_SECRET",
)

NAMED = "CFBACKUP_SECRET_VARIABLES"  # the variables *_env settings name, comma-separated


def secret_variables(env=None) -> frozenset:
    """:data:`SECRET_VARIABLES` and the variables :data:`NAMED` lists."""
    named = (os.environ if env is None else env).get(NAMED, "")
    return frozenset((*SECRET_VARIABLES, *(n for n in named.split(",") if n)))


def applies(env):
    return True


def without_secrets() -> dict:
    secret = secret_variables()
    return {k: v for k, v in os.environ.items() if k not in secret}


def apply(env):
    import subprocess

    from duplicity import gpginterface

    popen_init = subprocess.Popen.__init__

    def __init__(self, args, *more, env=None, **options):
        popen_init(self, args, *more, env=without_secrets() if env is None else env, **options)

    subprocess.Popen.__init__ = __init__

    as_child = gpginterface.GnuPG._as_child

    def _as_child(self, process, gnupg_commands, args):
        for name in secret_variables():  # in the forked child only
            os.environ.pop(name, None)
        return as_child(self, process, gnupg_commands, args)

    gpginterface.GnuPG._as_child = _as_child
