"""What tests share besides fixtures: the test secrets, the installed CLI, leak checks.

Import from here, not from ``conftest`` (several conftest modules exist; the name is ambiguous).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent

# Secrets used by the tests: none of them may ever appear in output, logs or argv. Drawn once
# per test process, so no secret is written in the code (and none can match by accident).
PASSPHRASE = f"test-Passphrase-{secrets.token_hex(6)}"
KEY_PASSPHRASE = f"key-Passphrase-{secrets.token_hex(6)}"
# a passphrase outside ASCII (German, French, a euro sign), and one that is wrong
UTF8_PASSPHRASE = f"Größte Sicherheit-{secrets.token_hex(6)}: 12 € pro Tür, déjà vu"
WRONG_PASSPHRASE = f"wrong-Passphrase-{secrets.token_hex(6)}"


class CliResult:
    def __init__(self, completed: subprocess.CompletedProcess):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.output = completed.stdout + completed.stderr

    def __repr__(self):
        return f"<exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}>"


def secret_values(local_swift=None) -> list[str]:
    values = [PASSPHRASE, KEY_PASSPHRASE, UTF8_PASSPHRASE]
    if local_swift is not None:
        values += [key for _, key in local_swift.users.values()]
    return values


def assert_no_secret(text: str, local_swift=None) -> None:
    for secret in secret_values(local_swift):
        assert secret not in text, f"a secret leaked: {text[:2000]}"


def stop_gpg_agent(gnupghome: Path) -> None:
    """gpg starts an agent (and any daemon it needs) per GNUPGHOME that outlives the command
    and the test: stop them."""
    if Path(gnupghome).is_dir():
        subprocess.run(["gpgconf", "--homedir", str(gnupghome), "--kill", "all"],
                       capture_output=True, check=False)
