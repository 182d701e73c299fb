"""What duplicity 3.2's own options are: which take a value, which select files.

Needed where options arrive as free text (a legacy ``STATIC_OPTIONS="--volsize 100"``, bound by a
space or by ``=``) and where a profile's ``extra_options`` must sit among the selection options
(duplicity applies selection options in order, first match wins). The tables are duplicity's
parser's (checked against it by tests/unit/test_duplicity_options.py).
"""

from __future__ import annotations

# Options of duplicity 3.2 that take a value (``--rename`` takes two).
VALUE_OPTIONS = frozenset(
    """
    --archive-dir --azure-blob-tier --azure-max-block-size --azure-max-connections
    --azure-max-single-put-size --backend-retry-delay --cf-backend --concurrency --config-dir
    --copy-blocksize --current-time --encrypt-key --encrypt-secret-keyring --encrypt-sign-key
    --exclude --exclude-filelist --exclude-if-present --exclude-older-than --exclude-regexp
    --file-changed --file-prefix --file-prefix-archive --file-prefix-jsonstat
    --file-prefix-manifest --file-prefix-signature --files-from --full-if-n-inc
    --full-if-older-than --gpg-binary --gpg-options --hidden-encrypt-key --idr-fakeroot
    --imap-mailbox --include --include-filelist --include-regexp --log-fd --log-file
    --max-blocksize --metadata-sync-mode --mp-segment-size --name --num-retries --par2-options
    --par2-redundancy --par2-volumes --path-to-restore --progress-rate --rename --restore-time
    --rsync-options --s3-endpoint-url --s3-kms-grant --s3-kms-key-id --s3-multipart-chunk-size
    --s3-multipart-max-procs --s3-region-name --scp-command --sftp-command
    --show-changes-in-set --sign-key --skip-volume --ssh-options --ssl-cacert-file
    --ssl-cacert-path --swift-storage-policy --tempdir --time --time-separator --timeout
    --verbosity --volsize --webdav-headers -r -t -v
    """.split()
)

# Options of duplicity 3.2 that take no value.
FLAG_OPTIONS = frozenset(
    """
    --allow-source-mismatch --asynchronous-upload --b2-hide-files --check-remote --compare-data
    --compression --copy-links --dry-run --encryption --exclude-device-files
    --exclude-other-filesystems --files-changed --filter-globbing --filter-ignorecase
    --filter-literal --filter-regexp --filter-strictcase --force --ftp-passive --ftp-regular
    --ignore-errors --imap-full-address --jsonstat --log-timestamp --mf-purge --no-check-remote
    --no-compression --no-encryption --no-files-changed --no-print-statistics
    --no-restore-ownership --null-separator --numeric-owner --print-statistics --progress
    --pydevd --restore-ownership --s3-unencrypted-connection --s3-use-deep-archive
    --s3-use-glacier --s3-use-glacier-ir --s3-use-ia --s3-use-onezone-ia --s3-use-rrs
    --s3-use-server-side-encryption --s3-use-server-side-kms-encryption --skip-if-no-change
    --ssh-askpass --ssl-no-check-certificate --use-agent --use-gpgsm --version -V
    """.split()
)

# Selection options: duplicity tries them in the order given, the first that matches decides.
SELECTION_OPTIONS = frozenset(
    """
    --exclude --exclude-device-files --exclude-filelist --exclude-if-present
    --exclude-older-than --exclude-other-filesystems --exclude-regexp --files-from
    --filter-globbing --filter-ignorecase --filter-literal --filter-regexp --filter-strictcase
    --include --include-filelist --include-regexp
    """.split()
)

# Options of duplicity 0.6/0.7 that duplicity 3 no longer knows, and what replaced them.
RENAMED = {
    "--exclude-globbing-filelist": "--exclude-filelist",
    "--include-globbing-filelist": "--include-filelist",
    "--file-to-restore": "--path-to-restore",
}
REMOVED_WITH_VALUE = frozenset(("--ssh-backend", "--s3-multipart-max-timeout"))


def option_name(word: str) -> str:
    """``--volsize`` for ``--volsize=100``; duplicity's spelling for a unique abbreviation."""
    name = word.split("=", 1)[0]
    name = RENAMED.get(name, name)
    if name in VALUE_OPTIONS or name in FLAG_OPTIONS or not name.startswith("--"):
        return name
    matches = [o for o in VALUE_OPTIONS | FLAG_OPTIONS if o.startswith(name)]
    return matches[0] if len(matches) == 1 else name


def takes_value(name: str) -> bool:
    return name in VALUE_OPTIONS or name in RENAMED.values() or name in REMOVED_WITH_VALUE


def is_selection(word: str) -> bool:
    return option_name(word) in SELECTION_OPTIONS


def last_value(words: list[str], name: str) -> str | None:
    """The value of the last option ``name`` in ``words`` (``--name=V`` or ``--name V``, or a
    unique abbreviation: the last one wins on duplicity's command line), None when absent."""
    found = None
    for index, word in enumerate(words):
        if option_name(word) == name:
            _, bound, value = word.partition("=")
            found = value if bound else (words[index + 1] if index + 1 < len(words) else "")
    return found
