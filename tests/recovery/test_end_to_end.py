"""Incident recovery end to end, with the real local Swift, real duplicity and gpg, real BIND and
the Nova/Glance emulator: the park record lives next to the backups; park -> unpark -> new IP
-> DNS and hosts fixed -> restore of the profile onto the new server's disk -> verify."""

from __future__ import annotations

import json
import secrets

import pytest
from recovery_support import SDK_DEPRECATIONS, ip_fixup_section, server_image_section
from support.trees import assert_same_tree, make_awkward_tree
from swiftclient import client as swiftclient

pytestmark = [pytest.mark.recovery, pytest.mark.swift, *SDK_DEPRECATIONS]

PASSPHRASE = f"recovery-Passphrase-{secrets.token_hex(6)}"


@pytest.fixture
def swift_profile(local_swift, container, monkeypatch, tmp_path):
    """The [swift] section and target of a profile backing up to the local Swift."""
    user, key = local_swift.users["admin"]
    monkeypatch.setenv("T_SWIFT_KEY", key)
    monkeypatch.setenv("T_PASSPHRASE", PASSPHRASE)
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(gnupg))
    swift = (
        f'auth_url = "{local_swift.auth_url}"\nusername = "{user}"\npassword_env = "T_SWIFT_KEY"\n'
    )
    return {
        "target": f"swift://{container}/web1",
        "swift": swift,
        "encryption": 'passphrase_env = "T_PASSPHRASE"',
    }


def _swift(local_swift):
    user, key = local_swift.users["admin"]
    return swiftclient.Connection(
        authurl=local_swift.auth_url, user=user, key=key, auth_version="1", retries=0
    )


def test_park_record_is_stored_in_swift_and_unpark_works_from_it_alone(
    cli, write_config, swift_profile, emulator, clouds, local_swift, container, tmp_path
):
    emulator.add_server("web1", metadata={"role": "db"})
    config = write_config(
        {
            "web1": {
                **swift_profile,
                "server_image": server_image_section(),
                "ip_fixup": "update_hosts = false\n",
            }
        }
    )
    parked = cli("-c", config, "server", "park", "web1")
    assert parked.returncode == 0, parked
    assert f"swift://{container}/web1/cfbackup-parked/web1.json" in parked.stdout
    _h, body = _swift(local_swift).get_object(container, "web1/cfbackup-parked/web1.json")
    stored = json.loads(body)
    assert stored["state"] == "parked" and stored["metadata"] == {"role": "db"}

    (tmp_path / "state" / "parked" / "web1.json").unlink()  # this machine lost its state
    listed = cli("-c", config, "server", "list-parked", "--json")
    assert listed.returncode == 0, listed
    assert json.loads(listed.stdout)[0]["source"].startswith("swift://")
    unparked = cli("-c", config, "server", "unpark", "web1")
    assert unparked.returncode == 0, unparked
    _h, body = _swift(local_swift).get_object(container, "web1/cfbackup-parked/web1.json")
    assert json.loads(body)["state"] == "unparked"


def test_park_unpark_new_ip_dns_hosts_then_restore_and_verify(
    cli,
    write_config,
    swift_profile,
    emulator,
    clouds,
    bind,
    host_name,
    local_swift,
    container,
    tmp_path,
    monkeypatch,
):
    # the server, its data (its disk, simulated by a local tree), its DNS name and hosts line
    old = emulator.add_server("web1")
    old_ip = old["addresses"]["private"][0]["addr"]
    src = make_awkward_tree(tmp_path / "src-web1", big_mb=1)
    fqdn = bind.fqdn(host_name)
    bind.set_records(host_name, [old_ip])
    hosts = tmp_path / "hosts"
    hosts_text = f"127.0.0.1 localhost\n{old_ip} web1 {fqdn[:-1]}\n"
    hosts.write_text(hosts_text)
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)
    config = write_config(
        {
            "web1": {
                **swift_profile,
                "server_image": server_image_section(),
                "ip_fixup": ip_fixup_section(bind, hosts, [fqdn]),
            }
        }
    )

    # 1. park with a final backup: backup, image active, record stored, server deleted
    parked = cli("-c", config, "server", "park", "web1", "--final-backup", "web1")
    assert parked.returncode == 0, parked
    assert "backup of web1 done" in parked.stdout and "server deleted" in parked.stdout
    assert emulator.server_named("web1") is None
    names = [o["name"] for o in _swift(local_swift).get_container(container)[1]]
    assert "web1/cfbackup-parked/web1.json" in names
    assert any(n.startswith("web1/duplicity-full.") for n in names)
    assert bind.query(host_name) == [old_ip]  # nothing moves while parked

    # 2. unpark: a new server with a new address; DNS and the hosts file follow it
    unparked = cli("-c", config, "server", "unpark", "web1")
    assert unparked.returncode == 0, unparked
    new_ip = emulator.server_named("web1")["addresses"]["private"][0]["addr"]
    assert new_ip != old_ip
    assert bind.query(host_name) == [new_ip]
    assert hosts.read_text() == hosts_text.replace(old_ip, new_ip)
    assert f"DNS {fqdn} A {new_ip}" in unparked.stdout

    # 3. restore the profile onto the new server's disk, byte for byte, and verify
    disk = tmp_path / "new-server-disk"
    restored = cli("-c", config, "restore", "web1", disk)
    assert restored.returncode == 0, restored
    assert_same_tree(src, disk)
    verified = cli("-c", config, "verify", "web1")
    assert verified.returncode == 0, verified
    for result in (parked, unparked, restored, verified):
        assert PASSPHRASE not in result.output and bind.secret not in result.output
