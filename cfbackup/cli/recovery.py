"""``cfbackup recovery-kit export DIR`` (and ``dt-cf-backup --backup-script``), and
``cfbackup recovery-kit import KIT`` on the machine that restores."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cfbackup import redact, suggest
from cfbackup.cli import output
from cfbackup.errors import CfbackupError, ConfigError, ExitCode


def export_recovery_kit(args, context) -> int:
    from cfbackup import history
    from cfbackup.actions.recovery_kit import KIT_ACTION, export_kit
    from cfbackup.errors import CfbackupError

    config = context.config
    profile = config.profile(getattr(args, "profile", None))
    run_id = history.record_start(config.state_dir, profile.name, KIT_ACTION)
    try:
        path = export_kit(config, profile, Path(args.directory).expanduser())
    except CfbackupError as error:
        history.record_finish(
            config.state_dir, run_id, int(error.exit_code), "failure", error.message, {}
        )
        raise
    history.record_finish(config.state_dir, run_id, 0, "success", f"kit {path.name}", {})
    output.info(
        f"recovery kit written to {path}, encrypted with the passphrase of profile "
        f"{profile.name}: copy it away from this server, and keep a copy of that passphrase "
        "away from it too (without it the kit cannot be opened)"
    )
    return 0


def import_recovery_kit(args, context) -> int:
    from cfbackup.actions.recovery_import import import_kit

    passphrase = _kit_passphrase(args.passphrase_file)
    home = Path.home()
    to = args.to or getattr(args, "config", None)
    gnupghome = os.environ.get("GNUPGHOME")
    kit = import_kit(
        Path(args.kit).expanduser(),
        passphrase,
        home=home,
        gnupghome=Path(gnupghome) if gnupghome else None,
        to=Path(to) if to else None,
        force=args.force,
        plugin_sections=context.plugin_sections(),
    )
    default = kit.config_path == home / ".config/cfbackup/config.toml" or (
        kit.kind == "legacy" and kit.config_path == home / ".dt-cf-backup.conf"
    )
    suggest.use_config(None if default else kit.config_path)
    output.info(
        f"installed the config of profile(s) {', '.join(kit.profiles)} at {kit.config_path} "
        "(mode 0600)"
    )
    if kit.keys:
        output.info(f"imported {len(kit.keys)} key(s) into {kit.keyring}: {', '.join(kit.keys)}")
    for key, old in kit.gpg_home_was.items():
        output.info(f"{key} now points at {kit.keyring} (it was {old})")
    if kit.keys and not kit.gpg_home_was and kit.keyring != home / ".gnupg":
        output.info(
            f"the keys are in {kit.keyring}, not gpg's default keyring: keep GNUPGHOME="
            f"{kit.keyring} set when running cfbackup, or set encryption.gpg_home to it"
        )
    missing = [need for need in kit.secrets if need.how != "file" or not need.present]
    if missing:
        output.info("the config still needs these secrets on this machine (never in the kit):")
        for need in missing:
            output.info(f"  {need.advice()}")
    for name, source in kit.missing_sources:
        output.info(
            f"profile {name}: source {source} does not exist here yet, as expected before a restore"
        )
    for name in kit.profiles:
        output.info(
            f"next, for profile {name}: {suggest.command('check', name, '--for-restore')}, then "
            f"{suggest.command('restore', name, '/srv/restore')} (an empty directory)"
        )
    return int(ExitCode.OK)


def _kit_passphrase(path: str | None) -> str:
    """From ``--passphrase-file``, else asked on the terminal; never from argv."""
    if path:
        try:
            value = Path(path).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "it is not UTF-8 text"
            raise ConfigError(
                f"--passphrase-file: cannot read {path} ({reason.lower()}): give a readable file "
                "holding the passphrase."
            ) from None
        if not value:
            raise ConfigError(f"--passphrase-file: {path} is empty: write the passphrase into it.")
        redact.register(value)
        return value
    if not sys.stdin.isatty():
        raise CfbackupError(
            "the recovery kit's passphrase is needed and there is no terminal to ask for it: "
            "give --passphrase-file FILE (a file holding the passphrase, mode 0600).",
            exit_code=ExitCode.USAGE,
        )
    import getpass

    value = getpass.getpass("passphrase of the recovery kit (the profile's passphrase): ")
    if not value:
        raise CfbackupError("no passphrase given: nothing was changed.", exit_code=ExitCode.USAGE)
    redact.register(value)
    return value
