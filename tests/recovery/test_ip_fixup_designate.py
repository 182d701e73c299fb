"""``cfbackup ip-fixup`` with OpenStack Designate (dns_backend = "designate") through real
openstacksdk against the emulator: the records follow the new addresses, a failure part-way
names what changed and the command that completes it, ``dns_check_old`` refuses a record
changed by hand (the RFC 2136 and hosts-file cases are in test_ip_fixup.py)."""

from __future__ import annotations

import shlex

import pytest
from recovery_support import SDK_DEPRECATIONS, server_image_section

from cfbackup.errors import ExitCode

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]

OLD4, NEW4, OLD6, NEW6 = "10.0.0.5", "10.0.0.9", "2001:db8::5", "2001:db8::9"


def test_designate_through_openstacksdk_against_the_emulator(
    cli, emulator, clouds, write_config, tmp_path
):
    """Designate is exercised only against the emulator (a test double), not a real one."""
    zone = emulator.add_zone("example.org.")
    config = write_config(
        {
            "web1": {
                "server_image": server_image_section(),
                "ip_fixup": 'dns_backend = "designate"\ndns_names = ["web1.example.org."]\n'
                "update_hosts = false\n",
            }
        }
    )
    first = cli("-c", config, "ip-fixup", "--name", "web1", "--new", f"{NEW4},{NEW6}")
    assert first.returncode == 0, first
    found = {
        (r["name"], r["type"]): r["records"]
        for r in emulator.recordsets.values()
        if r["zone_id"] == zone["id"]
    }
    assert found == {("web1.example.org.", "A"): [NEW4], ("web1.example.org.", "AAAA"): [NEW6]}
    second = cli("-c", config, "ip-fixup", "--name", "web1", "--old", NEW4, "--new", "10.0.0.10")
    assert second.returncode == 0, second
    records = {(r["name"], r["type"]): r["records"] for r in emulator.recordsets.values()}
    assert records[("web1.example.org.", "A")] == ["10.0.0.10"] and len(records) == 2


def _designate_setup(emulator, write_config, check_old: bool):
    """Zone example.org. with web1 and www holding OLD4/OLD6; a profile following web1."""
    import uuid

    zone = emulator.add_zone("example.org.")
    for name in ("web1.example.org.", "www.example.org."):
        for rtype, address in (("A", OLD4), ("AAAA", OLD6)):
            rid = str(uuid.uuid4())
            emulator.recordsets[rid] = {
                "id": rid, "zone_id": zone["id"], "zone_name": zone["name"], "name": name,
                "type": rtype, "records": [address], "ttl": 300, "status": "ACTIVE",
                "action": "NONE", "links": {},
            }  # fmt: skip
    config = write_config(
        {
            "web1": {
                "server_image": server_image_section(),
                "ip_fixup": 'dns_backend = "designate"\n'
                'dns_names = ["web1.example.org.", "www.example.org."]\n'
                f"dns_check_old = {str(check_old).lower()}\nupdate_hosts = false\n",
            }
        }
    )
    return config


def _designate_records(emulator) -> dict:
    return {(r["name"], r["type"]): r["records"] for r in emulator.recordsets.values()}


ALL_NEW = {
    (name, rtype): [address]
    for name in ("web1.example.org.", "www.example.org.")
    for rtype, address in (("A", NEW4), ("AAAA", NEW6))
}
FIXUP = ("ip-fixup", "--name", "web1", "--old", f"{OLD4},{OLD6}", "--new", f"{NEW4},{NEW6}")


@pytest.mark.parametrize("check_old", [False, True])
def test_designate_failure_midway_names_what_changed_and_a_rerun_completes_it(
    cli, emulator, clouds, write_config, check_old
):
    """Designate updates are not atomic: the AAAA of the first name fails after its A was
    changed; the message names the changed record, and the same command completes the rest."""
    config = _designate_setup(emulator, write_config, check_old)
    emulator.recordset_faults.add(("web1.example.org.", "AAAA"))
    failed = cli("-c", config, *FIXUP)
    assert failed.returncode == ExitCode.BACKEND, failed
    assert failed.stderr.count("\n") == 1, failed
    assert "updating the AAAA recordset of web1.example.org in Designate" in failed.stderr
    assert f"not atomic, and web1.example.org A {NEW4} was already changed" in failed.stderr
    rerun = shlex.join(["cfbackup", "-c", str(config), *FIXUP, "--profile", "web1"])
    assert f"run {rerun} to complete the rest" in failed.stderr, failed
    assert _designate_records(emulator) == {
        ("web1.example.org.", "A"): [NEW4], ("web1.example.org.", "AAAA"): [OLD6],
        ("www.example.org.", "A"): [OLD4], ("www.example.org.", "AAAA"): [OLD6],
    }  # fmt: skip
    emulator.clear_faults()
    again = cli(*shlex.split(rerun)[1:])  # as printed
    assert again.returncode == 0, again
    assert _designate_records(emulator) == ALL_NEW
    if check_old:
        assert f"DNS web1.example.org. A {NEW4} (already so)" in again.stdout, again


def test_designate_check_old_refuses_a_hand_changed_record_before_changing_anything(
    cli, emulator, clouds, write_config
):
    config = _designate_setup(emulator, write_config, check_old=True)
    www_a = next(
        r
        for r in emulator.recordsets.values()
        if (r["name"], r["type"]) == ("www.example.org.", "A")
    )
    www_a["records"] = ["10.9.9.9"]  # changed by hand
    before = _designate_records(emulator)
    refused = cli("-c", config, *FIXUP)
    assert refused.returncode == ExitCode.BACKEND, refused
    assert refused.stderr.count("\n") == 1, refused
    assert (
        f"the A record of www.example.org holds 10.9.9.9, not the old {OLD4} nor the new {NEW4}"
        in refused.stderr
    ), refused
    assert "dns_check_old = false" in refused.stderr and "nothing was changed" in refused.stderr
    assert _designate_records(emulator) == before  # not even web1, judged before www
    assert not [r for r in emulator.requests if r[0] in ("PUT", "POST") and "/dns/" in r[1]]
    # already new (a rerun): nothing is written, and it is said so
    www_a["records"] = [NEW4]
    done = cli("-c", config, *FIXUP)
    assert done.returncode == 0, done
    assert f"DNS www.example.org. A {NEW4} (already so)" in done.stdout, done
    assert _designate_records(emulator) == ALL_NEW
    puts = [r for r in emulator.requests if r[0] == "PUT" and "/recordsets/" in r[1]]
    assert len(puts) == 3  # web1 A and AAAA, www AAAA
