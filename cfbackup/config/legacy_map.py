"""From the variables of a legacy file to the native config, as the old scripts used them.

Three scripts of one lineage wrote these files: dt-s3-backup.sh, its Cloud Files sibling
dt-cf-backup.sh, and zertrin's duplicity-backup.sh. ``legacy_vars.MAPPING`` says where each
variable goes (``docs/legacy.md`` is rendered from it and checked by a test). Every variable
read is either carried over or named in a warning, and nothing here changes how an existing
chain is encrypted: the mode and the keys are those the old script gave duplicity. Which script
a file was written for, and the defaults that leaves in force, is decided in ``legacy_form.py``.
"""

from __future__ import annotations

import os
import shlex
import shutil
from typing import Any

from cfbackup.config.legacy_form import old_defaults, zertrin_form
from cfbackup.config.legacy_vars import (
    COMMAND_WORDS,
    NOT_CARRIED,
    PROFILE_NAME,
    RACKSPACE_AUTH_URL,
    REMOVED,
    S3_ONLY,
    SAMPLE_KEY,
    SENDMAIL,
    VERBOSITY_LEVELS,
)
from cfbackup.config.secrets import INHERITED_CREDENTIALS, inherited_credentials
from cfbackup.config.validate import pattern_under
from cfbackup.duplicity import options as dup_options


class _Variables:
    """The variables a file set, and which of them the mapping used."""

    def __init__(self, values: dict[str, Any]):
        self.values = dict(values)
        self.used: set[str] = set()
        self.said: list[str] = []  # warnings about how a value was read
        self.blank_named: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def scalar(self, name: str) -> str:
        self.used.add(name)
        value = self.values.get(name, "")
        return " ".join(value) if isinstance(value, list) else str(value)

    def items(self, name: str) -> list[str]:
        """An array's items; a scalar is split on blanks, as an unquoted expansion was."""
        self.used.add(name)
        value = self.values.get(name, [])
        if isinstance(value, list):
            # a space after a line-continuation backslash (`"/a" \ ` in chmouel's own sample)
            # makes bash store an item " "; the old scripts' unquoted ${EXCLIST[@]} dropped it
            blank = [item for item in value if item and not item.strip()]
            if blank and name not in self.blank_named:
                self.blank_named.add(name)
                self.said.append(
                    f"{name} has {len(blank)} item(s) that are only blanks, most likely from a "
                    "space after a line-continuation backslash (`\\ ` at a line end): ignored, "
                    "as the old script did; delete the space after the backslash"
                )
            return [item for item in value if item.strip()]
        return value.split()

    def flag(self, name: str) -> bool:
        return self.scalar(name).strip().lower() in ("1", "true", "yes", "on")


def normalize(variables: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The native config dict for these variables, and what could not be carried over."""
    given = dict(variables)
    zertrin = zertrin_form(given)
    defaults = old_defaults(given)
    given.update(defaults)
    v = _Variables(given)
    warnings: list[str] = []
    profile: dict[str, Any] = {}
    if "ROOT" in v:
        root = v.scalar("ROOT")
        profile["source"] = root.rstrip("/") or root
    if "DEST" in v:
        profile["target"] = v.scalar("DEST")
    profile["include"] = v.items("INCLIST")
    profile["exclude"] = v.items("EXCLIST")
    if "EXCLIST" in defaults:
        _default_excludes(profile, warnings)
    extra: list[str] = []
    if v.scalar("EXDEVICEFILES").strip() not in ("", "0"):
        extra.append("--exclude-device-files")
    swift = _swift_section(v, profile, warnings)
    if swift:
        profile["swift"] = swift
    if profile.get("target", "").startswith("swift://"):
        missing = [key for key in INHERITED_CREDENTIALS if not swift.get(key)]
        if inherited_credentials(missing):
            warnings.append(
                f"the file sets no Swift {', '.join(missing)}{inherited_credentials(missing)}"
            )
    encryption = _encryption_section(v, warnings)
    _static_options(v, profile, encryption, extra, warnings)
    if encryption.get("mode") == "none":
        encryption = {"mode": "none"}
        for name in ("PASSPHRASE", "GPG_KEY", "GPG_ENC_KEY", "GPG_SIGN_KEY", "GPG_OPTIONS"):
            if v.values.get(name):
                warnings.append(f"{name} is not used: the backup is not encrypted")
    profile["encryption"] = encryption
    if extra:
        profile["extra_options"] = extra
    profile["retention"] = _retention_section(v, warnings)
    if zertrin:
        _zertrin_without_defaults(v, profile, zertrin, warnings)
    # no --full-if-older-than on the old command line: duplicity never forced a full backup
    profile.setdefault("full_if_older_than", "never")
    _verbosity(v, profile, warnings)
    if v.scalar("TMPDIR"):  # exported for duplicity; a --tempdir in STATIC_OPTIONS won
        profile.setdefault("tempdir", v.scalar("TMPDIR"))
    notify = _notify_section(v, warnings)
    if notify:
        profile["notify"] = notify
    top: dict[str, Any] = {"profiles": {PROFILE_NAME: profile}}
    if v.scalar("LOGDIR"):
        top["log_dir"] = v.scalar("LOGDIR")
    for name, why in NOT_CARRIED.items():
        v.used.add(name)
        if v.values.get(name):
            warnings.append(f"{name} is not carried over: {why}")
    warnings.extend(v.said)
    for name in sorted(set(v.values) - v.used):
        if v.values[name]:
            warnings.append(f"{name} is not used with DEST={v.values.get('DEST', '')!r}")
    return top, warnings


def _default_excludes(profile: dict, warnings: list[str]) -> None:
    """dt-cf-backup.sh's default EXCLIST names /home: with another ROOT its duplicity refused
    those patterns (they cannot match under ROOT) and every backup failed. They exclude
    nothing there, so they are left out rather than refusing the config."""
    source = os.path.normpath(profile.get("source") or "/")
    outside = [p for p in profile["exclude"] if not pattern_under(p, source)]
    if outside:
        profile["exclude"] = [p for p in profile["exclude"] if p not in outside]
        warnings.append(
            f"EXCLIST is not set, and dt-cf-backup.sh's default excludes {', '.join(outside)} "
            f"are outside ROOT {source} (its duplicity refused them, so its backups with this "
            "file failed): they are left out; set EXCLIST in the file (EXCLIST=() for none)"
        )


def _zertrin_without_defaults(
    v: _Variables, profile: dict, markers: list[str], warnings: list[str]
) -> None:
    """duplicity-backup.sh removed nothing without CLEAN_UP_TYPE and CLEAN_UP_VARIABLE, and
    forced no full backup without --full-if-older-than: cfbackup does the same, and says so."""
    retention = [
        k
        for k, value in profile["retention"].items()
        if k not in ("after_backup", "keep_all") and value
    ]
    missing, does, fixes = [], [], []
    if "CLEAN_UP_TYPE" not in v and "CLEAN_UP_VARIABLE" not in v and not retention:
        missing.append("CLEAN_UP_TYPE and CLEAN_UP_VARIABLE")
        does.append("removes no backup")
        fixes.append(
            'CLEAN_UP_TYPE="remove-all-but-n-full" CLEAN_UP_VARIABLE="2" to remove old ones'
        )
    if "STATIC_OPTIONS" not in v:
        missing.append("STATIC_OPTIONS")
        does.append("forces no full backup by age")
        fixes.append('STATIC_OPTIONS="--full-if-older-than 1M" to start a new chain monthly')
    if missing:
        warnings.append(
            f"{' and '.join(missing)} are not set, so cfbackup {' and '.join(does)}, as "
            f"duplicity-backup.sh did (the file sets {markers[0]}, so it is read as that "
            f"script's config): set {', and '.join(fixes)}"
        )


def _swift_section(v: _Variables, profile: dict, warnings: list[str]) -> dict[str, Any]:
    target = profile.get("target", "")
    swift: dict[str, Any] = {}
    if target.startswith(("cf+http://", "cf+https://")):
        container = target.split("://", 1)[1]
        profile["target"] = f"swift://{container}"
        swift = {
            "auth_version": "1",
            "auth_url": v.scalar("CLOUDFILES_AUTHURL") or RACKSPACE_AUTH_URL,
        }
        if v.scalar("CLOUDFILES_USERNAME"):
            swift["username"] = v.scalar("CLOUDFILES_USERNAME")
        if v.scalar("CLOUDFILES_APIKEY"):
            swift["password"] = v.scalar("CLOUDFILES_APIKEY")
    elif target.startswith("swift://"):
        mapping = {
            "SWIFT_AUTHURL": "auth_url",
            "SWIFT_USERNAME": "username",
            "SWIFT_PASSWORD": "password",
            "SWIFT_AUTHVERSION": "auth_version",
            "SWIFT_TENANTNAME": "project_name",
            "SWIFT_PROJECT_NAME": "project_name",
            "SWIFT_PROJECT_ID": "project_id",
            "SWIFT_REGIONNAME": "region_name",
            "SWIFT_USER_DOMAIN_NAME": "user_domain_name",
            "SWIFT_USER_DOMAIN_ID": "user_domain_id",
            "SWIFT_PROJECT_DOMAIN_NAME": "project_domain_name",
            "SWIFT_PROJECT_DOMAIN_ID": "project_domain_id",
        }
        for var, key in mapping.items():
            if v.scalar(var):
                swift[key] = v.scalar(var)
        if swift.get("auth_version") == "2":
            warnings.append("SWIFT_AUTHVERSION=2 (Keystone v2) is gone from OpenStack; set v3 keys")
            swift["auth_version"] = "3"
        endpoint = v.scalar("SWIFT_ENDPOINT_TYPE").removesuffix("URL")
        if endpoint:
            swift["interface"] = endpoint
    if swift and v.flag("RACKSPACE_SERVICENET"):
        swift["interface"] = "internal"
    return swift


def _encryption_section(v: _Variables, warnings: list[str]) -> dict[str, Any]:
    """The mode and keys dt-*-backup.sh or duplicity-backup.sh gave duplicity."""
    enc: dict[str, Any] = {}
    keys: list[str] = []
    sign = ""
    dt_key = _key(v, "GPG_KEY", warnings)
    if dt_key:  # dt-s3-backup.sh: --encrypt-key=${GPG_KEY} --sign-key=${GPG_KEY}
        keys, sign = [dt_key], dt_key
    enc_key, sign_key = _key(v, "GPG_ENC_KEY", warnings), _key(v, "GPG_SIGN_KEY", warnings)
    if enc_key and sign_key:
        if sign and sign != sign_key:
            warnings.append("GPG_SIGN_KEY is not used: GPG_KEY signs (duplicity takes one)")
        keys, sign = [*keys, enc_key], sign or sign_key
    elif enc_key or sign_key:
        name = "GPG_ENC_KEY" if enc_key else "GPG_SIGN_KEY"
        warnings.append(
            f"{name} is not used: duplicity-backup.sh used GPG keys only when both GPG_ENC_KEY "
            "and GPG_SIGN_KEY were set (it encrypted with PASSPHRASE); kept that way"
        )
    if v.scalar("ENCRYPTION").strip().lower() == "no":
        enc["mode"] = "none"
    elif keys:
        enc["mode"] = "pubkey"
        enc["encrypt_keys"] = list(dict.fromkeys(keys))
    else:
        enc["mode"] = "symmetric"
    if sign:
        enc["sign_key"] = sign
    # PASSPHRASE="" (with GPG_KEY) is no passphrase: duplicity still gets an empty one, as the
    # old script exported it (duplicity/environment.py)
    if v.scalar("PASSPHRASE"):
        enc["passphrase"] = v.scalar("PASSPHRASE")
    if v.scalar("GPG_OPTIONS").strip():
        enc["gpg_options"] = v.scalar("GPG_OPTIONS").strip()
    return enc


def _key(v: _Variables, name: str, warnings: list[str]) -> str:
    key = v.scalar(name).strip()
    if key == SAMPLE_KEY:
        warnings.append(f"{name}={SAMPLE_KEY} is the sample's placeholder; ignored")
        return ""
    return key


def split_static_options(static: str) -> list[tuple[str, str | None]]:
    """``(option, value)`` pairs from a STATIC_OPTIONS string, values bound by ``=`` or by a
    space as duplicity read them (it knows which of its options take a value)."""
    words = shlex.split(static)
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        word = words[i]
        name = dup_options.option_name(word)
        if "=" in word and word.startswith("--"):
            pairs.append((name, word.split("=", 1)[1]))
        elif dup_options.takes_value(name) and i + 1 < len(words):
            pairs.append((name, words[i + 1]))
            i += 1
        elif word.startswith("-v") and len(word) > 2:  # -v4, -vnotice
            pairs.append(("-v", word[2:]))
        else:
            pairs.append((name, None))
        i += 1
    return pairs


def _static_options(
    v: _Variables, profile: dict, enc: dict, extra: list[str], warnings: list[str]
) -> None:
    static = v.scalar("STATIC_OPTIONS")
    try:
        pairs = split_static_options(static)
    except ValueError:
        warnings.append(f"STATIC_OPTIONS could not be split ({static!r}); ignored")
        return
    keys = {
        "--full-if-older-than": "full_if_older_than",
        "--name": "name",
        "--tempdir": "tempdir",
        "--archive-dir": "archive_dir",
    }
    for name, value in pairs:
        shown = name if value is None else f"{name} {value}"
        if name in keys and value is not None:
            profile[keys[name]] = value
        elif name == "--volsize" and value is not None:
            try:
                profile["volsize"] = int(value)
            except ValueError:
                warnings.append(f"--volsize {value!r} in STATIC_OPTIONS is not a number; ignored")
        elif name in ("--encrypt-key", "--hidden-encrypt-key") and value:
            enc["encrypt_keys"] = [*enc.get("encrypt_keys", []), value]
            if enc.get("mode") != "none":
                enc["mode"] = "pubkey"
            if name == "--hidden-encrypt-key":
                warnings.append(f"{shown} in STATIC_OPTIONS: {NOT_CARRIED['HIDE_KEY_ID']}")
        elif name in ("--sign-key", "--encrypt-sign-key") and value:
            enc["sign_key"] = value
            if name == "--encrypt-sign-key":
                enc["encrypt_keys"] = [*enc.get("encrypt_keys", []), value]
                enc["mode"] = "pubkey" if enc.get("mode") != "none" else "none"
        elif name == "--no-encryption":
            enc["mode"] = "none"
        elif name == "--gpg-options" and value is not None:
            enc["gpg_options"] = " ".join(filter(None, (value, enc.get("gpg_options"))))
        elif name in ("--verbosity", "-v") and value is not None:
            v.values["VERBOSITY"] = value  # after VERBOSITY on the old command line: it wins
        elif name in S3_ONLY:
            warnings.append(f"{shown} in STATIC_OPTIONS is for S3 only; dropped")
        elif name in REMOVED:
            warnings.append(f"{shown} in STATIC_OPTIONS: {REMOVED[name]}; dropped")
        elif name in dup_options.VALUE_OPTIONS or name in dup_options.FLAG_OPTIONS:
            extra.append(name if value is None else f"{name}={value}")
        elif name in COMMAND_WORDS:
            warnings.append(
                f"{name} in STATIC_OPTIONS is a duplicity command, not an option (cfbackup "
                "chooses full or incremental for each run: full_if_older_than, backup --full); "
                "dropped"
            )
        else:
            warnings.append(f"{shown} in STATIC_OPTIONS is not a duplicity 3 option; dropped")
    if "encrypt_keys" in enc:
        enc["encrypt_keys"] = list(dict.fromkeys(enc["encrypt_keys"]))


def _retention_section(v: _Variables, warnings: list[str]) -> dict[str, Any]:
    kind = v.scalar("CLEAN_UP_TYPE").strip()
    value = v.scalar("CLEAN_UP_VARIABLE").strip()
    retention: dict[str, Any] = {}
    unknown = ""
    counts = ("remove-all-but-n-full", "remove-all-inc-of-but-n-full")
    if kind in ("", "none") or ("CLEAN_UP_TYPE" in v and not value):
        pass
    elif kind == "remove-older-than":
        retention["remove_older_than"] = value
    elif kind in counts:
        try:
            count = int(value)
        except ValueError:
            warnings.append(f"CLEAN_UP_VARIABLE={value!r} is not a number; kept 2 full backups")
            count = 2
        if count < 1:  # the old script backed up, and only its cleanup failed: back up too
            warnings.append(
                f"CLEAN_UP_VARIABLE={value!r} is not a count of at least 1 (the old script "
                "backed up, and only its cleanup failed); kept 2 full backups: set "
                "CLEAN_UP_VARIABLE to 1 or more"
            )
            count = 2
        key = "keep_full" if kind == counts[0] else "keep_incrementals_of_full"
        retention[key] = count
    else:
        unknown = kind  # said below, once the other variables' rules are known
    older = v.scalar("REMOVE_OLDER_THAN").strip()
    if older and "remove_older_than" in retention:
        warnings.append(
            f"REMOVE_OLDER_THAN is not used: CLEAN_UP_TYPE=remove-older-than already removes "
            f"sets older than {retention['remove_older_than']}"
        )
    elif older:
        retention["remove_older_than"] = older
    incrementals = v.scalar("REMOVE_INCREMENTALS_OLDER_THAN").strip()
    if incrementals.isdigit() and int(incrementals) > 0:
        previous = retention.get("keep_incrementals_of_full")
        retention["keep_incrementals_of_full"] = min(int(incrementals), previous or 10**9)
    elif incrementals:
        warnings.append(
            f"REMOVE_INCREMENTALS_OLDER_THAN={incrementals!r} is not a count of full backups "
            "(duplicity-backup.sh ignored it too); ignored"
        )
    if unknown:
        applies = ", ".join(f"{k} = {v}" for k, v in retention.items())
        warnings.append(
            f"CLEAN_UP_TYPE={unknown!r} is unknown (the old script's duplicity refused it); "
            + (
                f"only {applies} applies"
                if retention
                else "no backup is removed (retention.keep_all)"
            )
            + ": set the retention rules you want"
        )
    if not retention:  # CLEAN_UP_TYPE=none, unknown or without a value: the old script removed
        retention["keep_all"] = True  # nothing, so neither does prune (the default rule would)
    return retention


def _verbosity(v: _Variables, profile: dict, warnings: list[str]) -> None:
    raw = v.scalar("VERBOSITY")
    verbosity = raw.strip().removeprefix("--verbosity").lstrip("=").lstrip("-").lstrip("v").lower()
    if not verbosity:
        return
    level = VERBOSITY_LEVELS.get(verbosity[:1] if verbosity.isalpha() else verbosity)
    if level:
        profile["verbosity"] = level
    else:
        warnings.append(f"VERBOSITY={raw!r} is not a duplicity verbosity; ignored")


def _notify_section(v: _Variables, warnings: list[str]) -> dict[str, Any]:
    """EMAIL_* as the old scripts mailed: the run's report to EMAIL_TO through the local MTA."""
    recipients = v.scalar("EMAIL_TO").replace(",", " ").split()
    for name in ("EMAIL_FROM", "EMAIL_SUBJECT", "EMAIL_FAILURE_ONLY", "MAIL"):
        v.scalar(name)
    if not recipients:
        return {}
    email: dict[str, Any] = {
        "to": recipients,
        "when": "failure" if v.scalar("EMAIL_FAILURE_ONLY").strip() == "yes" else "always",
    }
    if v.scalar("EMAIL_FROM").strip():
        email["from"] = v.scalar("EMAIL_FROM").strip()
    if v.scalar("EMAIL_SUBJECT").strip():
        email["subject_prefix"] = v.scalar("EMAIL_SUBJECT").strip()
    path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    sendmail = shutil.which("sendmail", path=f"{path}:/usr/sbin:/usr/lib")
    if sendmail:
        email["transport"] = "sendmail"
        email["sendmail_command"] = f"{sendmail} -t"
    else:
        email.update(host="localhost", port=25, security="none")
        mail = v.scalar("MAIL").strip()
        how = (
            "as the old script did"
            if not mail or os.path.basename(mail.split()[0]) == "sendmail"
            else f"(the old script ran MAIL={mail}, which cfbackup does not use)"
        )
        warnings.append(
            f"EMAIL_TO: there is no sendmail on this machine ({SENDMAIL}) to hand the mail to, "
            f"{how}: install a mail transfer agent (e.g. msmtp-mta), or point "
            "notify.email host, port, security and username at your mail server (it is now "
            "localhost:25)"
        )
    return {"actions": ["backup", "verify", "restore", "cleanup"], "email": email}
