"""The Prometheus textfile written after each run (``--metrics-file``, ``notify.metrics_file``)."""

from __future__ import annotations

import re
import threading

from cfbackup_notify import metrics

SAMPLE = re.compile(r'^([a-z_]+)\{([a-z_]+="[^"]*"(?:,[a-z_]+="[^"]*")*)\} (-?[0-9.e+]+)$')


def parse(text: str) -> dict[tuple[str, str], float]:
    """Check the text exposition format strictly enough for node_exporter, and read it."""
    samples, described = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            described.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            assert line.split()[3] == "gauge" and line.split()[2] in described
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        assert match.group(1) in described, f"{match.group(1)} has no HELP"
        samples[(match.group(1), match.group(2))] = float(match.group(3))
    return samples


BACKUP = 'action="backup",profile="demo"'


def test_backup_failure_and_second_profile_share_one_file(setup):
    prom = setup.root / "textfile" / "cfbackup.prom"
    setup.cli("backup", "--metrics-file", str(prom), check=0)
    first = parse(prom.read_text())
    assert first[("cfbackup_last_run_exit_code", BACKUP)] == 0
    assert first[("cfbackup_last_run_success", BACKUP)] == 1
    success = first[("cfbackup_last_success_timestamp_seconds", BACKUP)]
    assert success == first[("cfbackup_last_run_timestamp_seconds", BACKUP)]
    assert first[("cfbackup_last_run_duration_seconds", BACKUP)] > 0
    assert first[("cfbackup_last_backup_uploaded_bytes", 'profile="demo"')] > 64 * 1024
    assert first[("cfbackup_last_backup_source_files", 'profile="demo"')] == 3
    assert first[("cfbackup_last_backup_changed_files", 'profile="demo"')] == 3

    # a failed run updates its exit code and keeps the last success
    setup.profile("demo")["source"] = str(setup.root / "missing")
    setup.add_profile("other", notify={"metrics_file": str(prom)})  # from the config this time
    setup.write()
    setup.cli("backup", "demo", "--metrics-file", str(prom), check=3)
    setup.cli("backup", "other", check=0)
    after = parse(prom.read_text())
    assert after[("cfbackup_last_run_exit_code", BACKUP)] == 3
    assert after[("cfbackup_last_run_success", BACKUP)] == 0
    assert after[("cfbackup_last_success_timestamp_seconds", BACKUP)] == success
    assert after[("cfbackup_last_run_exit_code", 'action="backup",profile="other"')] == 0
    assert sorted(p.name for p in prom.parent.iterdir()) == [".cfbackup.prom.lock", "cfbackup.prom"]
    assert oct(prom.stat().st_mode & 0o777) == "0o644"

    # a dry run leaves it alone; other actions add their own series
    before = prom.read_text()
    setup.cli("backup", "other", "--dry-run", check=0)
    assert prom.read_text() == before
    setup.cli("verify", "other", "--metrics-file", str(prom), check=0)
    assert (
        parse(prom.read_text())[("cfbackup_last_run_exit_code", 'action="verify",profile="other"')]
        == 0
    )


def test_concurrent_writers_lose_nothing(tmp_path):
    prom = tmp_path / "cfbackup.prom"

    def writer(n: int) -> None:
        for i in range(10):
            metrics.record_run(prom, f"p{n}", "backup", 0, float(i), {})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples = parse(prom.read_text())
    for n in range(6):
        assert (
            samples[("cfbackup_last_run_duration_seconds", f'action="backup",profile="p{n}"')] == 9
        )


def test_labels_are_escaped_and_read_back(tmp_path):
    prom = tmp_path / "m.prom"
    metrics.record_run(prom, 'odd"na\\me', "backup", 7, 1.5, {})
    assert 'profile="odd\\"na\\\\me"' in prom.read_text()
    samples = metrics.read_samples(prom)
    key = ("cfbackup_last_run_exit_code", (("action", "backup"), ("profile", 'odd"na\\me')))
    assert samples[key] == 7


def _record(prom, action: str, options: dict, exit_code: int, stats: dict) -> None:
    """What the notify plugin records in ``prom`` for a run of ``action`` that ended so."""
    import types

    from cfbackup_notify import _record_metrics

    run = types.SimpleNamespace(
        options={"metrics_file": str(prom), **options},
        dry_run=False,
        action=action,
        profile=types.SimpleNamespace(name="demo"),
        plugin_config=lambda section: {},
    )
    result = types.SimpleNamespace(exit_code=exit_code, duration=1.0, stats=stats)
    _record_metrics(run, result)


def test_a_plain_verify_after_a_failed_read_data_keeps_the_failure_visible(tmp_path):
    """verify --read-data and verify were one action label: a plain verify passing after a
    failed read-data set cfbackup_last_run_success{action="verify"} back to 1."""
    prom = tmp_path / "cfbackup.prom"

    def record(options, exit_code, stats):
        _record(prom, "verify", options, exit_code, stats)

    bad = {"read_data": "all volumes", "volumes_checked": 5, "bad_volumes": ["vol2 is corrupt"]}
    record({"read_data": "all"}, 8, bad)
    record({}, 0, {"compared": 6, "differences": 0})
    samples = parse(prom.read_text())
    read_data = 'action="read-data",profile="demo"'
    assert samples[("cfbackup_last_run_success", read_data)] == 0
    assert samples[("cfbackup_last_run_exit_code", read_data)] == 8
    assert samples[("cfbackup_last_run_success", 'action="verify",profile="demo"')] == 1
    assert samples[("cfbackup_verify_bad_volumes", 'profile="demo"')] == 1


def test_a_drill_from_nothing_has_its_own_label_and_gauges(tmp_path):
    """drill --from-nothing shared the drill's action label and its gauges: a kit drill
    passing set cfbackup_drill_last_success_timestamp and cfbackup_drill_mismatches 0 after a
    plain drill had failed, and a plain drill passing set the from-nothing one's success back
    to 1. Each proves something else (docs/checks.md): each has its own."""
    prom = tmp_path / "cfbackup.prom"

    def record(options, exit_code, stats):
        _record(prom, "drill", options, exit_code, stats)

    record({}, 8, {"files_checked": 40, "mismatches": 2, "failures": 1, "from_nothing": False})
    record({"from_nothing": True}, 0, {"files_checked": 30, "mismatches": 0, "from_nothing": True})
    samples = parse(prom.read_text())
    plain = 'action="drill",profile="demo"'
    kit = 'action="drill-from-nothing",profile="demo"'
    only = 'profile="demo"'
    assert samples[("cfbackup_last_run_success", plain)] == 0
    assert samples[("cfbackup_last_run_success", kit)] == 1
    assert ("cfbackup_drill_last_success_timestamp", only) not in samples
    assert samples[("cfbackup_drill_mismatches", only)] == 3
    assert samples[("cfbackup_drill_files_checked", only)] == 40
    assert samples[("cfbackup_drill_from_nothing_files_checked", only)] == 30
    assert samples[("cfbackup_drill_from_nothing_mismatches", only)] == 0
    assert samples[("cfbackup_drill_from_nothing_last_success_timestamp", only)] > 0

    record({}, 0, {"files_checked": 40, "mismatches": 0, "from_nothing": False})
    record({"from_nothing": True}, 11, {"from_nothing": True})  # a stale kit: nothing checked
    samples = parse(prom.read_text())
    assert samples[("cfbackup_last_run_success", kit)] == 0  # not hidden by the plain drill
    assert samples[("cfbackup_last_run_success", plain)] == 1
    assert samples[("cfbackup_drill_last_success_timestamp", only)] > 0
