"""``cfbackup recovery-kit export DIR`` (and ``dt-cf-backup --backup-script``)."""

from __future__ import annotations

from pathlib import Path

from cfbackup.cli import output


def export_recovery_kit(args, context) -> int:
    from cfbackup.actions.recovery_kit import export_kit

    config = context.config
    profile = config.profile(getattr(args, "profile", None))
    path = export_kit(config, profile, Path(args.directory).expanduser())
    output.info(
        f"recovery kit written to {path} (encrypted with the passphrase of profile "
        f"{profile.name}); keep a copy away from this server"
    )
    return 0
