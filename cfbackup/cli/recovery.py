"""``cfbackup recovery-kit export DIR`` (and ``dt-cf-backup --backup-script``), and
``cfbackup recovery-kit import KIT`` on the machine that restores."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cfbackup import redact, suggest
from cfbackup.cli import output
from cfbackup.errors import CfbackupError, ExitCode


def export_recovery_kit(args, context) -> int:
    from cfbackup import history
    from cfbackup.actions.recovery_kit import KIT_ACTION, export_kit

    config = context.config
    profile = config.profile(getattr(args, "profile", None))
    run_id = history.record_start(config.state_dir, profile.name, KIT_ACTION)
    try:
        path = export_kit(config, profile, Path(args.directory).expanduser())
    except CfbackupError as error:
        result = ExitCode(error.exit_code).name.lower()
        history.record_finish(config.state_dir, run_id, int(error.exit_code), result,
                              redact.redact(error.message), {})  # fmt: skip
        raise
    # where it is: drill --from-nothing drills the newest kit
    history.record_finish(config.state_dir, run_id, 0, "success", f"kit {path.name}",
                          {"kit": str(path.absolute())})  # fmt: skip
    output.info(
        f"recovery kit written to {path}, encrypted with the passphrase of profile "
        f"{profile.name}: copy it away from this server, and keep a copy of that passphrase "
        "away from it too (without it the kit cannot be opened)"
    )
    return 0


def import_recovery_kit(args, context) -> int:
    from cfbackup.actions.recovery_import import import_kit, needing_own_kit

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
    # the commands it suggests run as printed: without -c only where cfbackup looks first
    found_first = kit.config_path == home / ".config/cfbackup/config.toml"
    suggest.use_config(None if found_first else kit.config_path)
    if kit.kept:
        output.info(
            f"kept the config already at {kit.config_path} (add --force to replace it with the "
            "kit's config)"
        )
    else:
        output.info(
            f"installed the config of profile(s) {', '.join(kit.profiles)} at {kit.config_path} "
            "(mode 0600)"
        )
    if kit.keys:
        output.info(f"imported {len(kit.keys)} key(s) into {kit.keyring}: {', '.join(kit.keys)}")
    for key, old in kit.gpg_home_was.items():
        output.info(f"{key} now points at {kit.keyring} (it was {old})")
    for key, value in kit.gpg_home_elsewhere.items():
        output.info(
            f"{key} in {kit.config_path} is {value}, not {kit.keyring} where the keys are: set "
            "it to the keyring that holds them"
        )
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
    made_for = ", ".join(kit.own) or "a profile this config does not have"
    if kit.kept and not kit.own:
        output.info(
            f"{kit.config_path} is not the config of the kit's profile: add --force to replace "
            "it with the kit's config, or give --to FILE to install it elsewhere"
        )
    needing = needing_own_kit(kit.config, kit.own, home) if kit.own and kit.config else []
    for name in needing:  # a passphrase-only profile, or one whose keys are here: none
        output.info(
            f"profile {name}: not prepared by this kit (made for {made_for}): import its own "
            f"kit with {_next_import(kit.host, name, gnupghome)} (it keeps this config and "
            "adds that kit's keys)"
        )
    for name in kit.own:
        output.info(
            f"next, for profile {name}: {suggest.command('check', name, '--for-restore')}, then "
            f"{suggest.command('restore', name, '/srv/restore')} (an empty directory)"
        )
    return int(ExitCode.OK)


def _next_import(host: str, profile: str, gnupghome: str | None) -> str:
    """The import of another profile's kit, as it runs: the same config (-c) and keyring
    (GNUPGHOME), the kit's name a glob for the shell (its time is not known here)."""
    import shlex

    environment = f"GNUPGHOME={shlex.quote(gnupghome)} " if gnupghome else ""
    made = (
        shlex.quote(f"cfbackup-recovery-kit-{host}-{profile}-")
        if host
        else (f"cfbackup-recovery-kit-*-{shlex.quote(profile + '-')}")
    )
    return f"{environment}{suggest.command('recovery-kit', 'import')} {made}*.tar.gpg"


def _kit_passphrase(path: str | None) -> str:
    """From ``--passphrase-file``, else asked on the terminal; never from argv."""
    if path:
        from cfbackup.config.secrets import read_secret_file

        value = read_secret_file(path, "--passphrase-file", "passphrase", warn_loose=True)
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
