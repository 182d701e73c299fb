"""A first backup's checks read an empty target: the quota guard's plan of the next backup
(``next_backup.read_sets``) imports none of duplicity's modules for it (``duplicity.dup_time``
and what it imports: 8 ms of the checks before duplicity may start, docs/performance.md), and
still reads the sets of a target that holds some."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from cfbackup import next_backup
from cfbackup.duplicity import names

empty = next_backup.read_sets([], naming=names.PLAIN)
before = sorted(m for m in sys.modules if m.split(".")[0] == "duplicity")
other = next_backup.read_sets([{"name": "notes.txt", "bytes": 1}], naming=names.PLAIN)
found = next_backup.read_sets(
    [{"name": "duplicity-full.20261101T010000Z.vol1.difftar.gpg", "bytes": 5}],
    naming=names.PLAIN,
)
print(json.dumps({"empty": len(empty) + len(other), "imported": before,
                  "found": [(s.type, s.end, s.volumes) for s in found]}))
"""


def test_an_empty_target_imports_no_duplicity_module():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["empty"] == 0 and found["imported"] == [], found
    assert found["found"] == [["full", "20261101T010000Z", [5]]], found
