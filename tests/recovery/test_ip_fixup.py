"""``ip_fixup`` against a real BIND: records really change (queried back with dnspython), every
refusal is one clear sentence with nothing changed, and the ``cfbackup ip-fixup`` CLI."""

from __future__ import annotations

import base64
import secrets
import shlex

import pytest
from recovery_support import SDK_DEPRECATIONS, ip_fixup_section, load_config, server_image_section

from cfbackup.errors import CfbackupError, ExitCode

pytestmark = [pytest.mark.recovery, *SDK_DEPRECATIONS]

OLD4, NEW4, OLD6, NEW6 = "10.0.0.5", "10.0.0.9", "2001:db8::5", "2001:db8::9"


@pytest.fixture
def setup(bind, host_name, write_config, tmp_path, monkeypatch):
    """(config path, hosts path, fqdn) for a profile following ``host_name``."""
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)
    hosts = tmp_path / "hosts"
    fqdn = bind.fqdn(host_name)
    hosts.write_bytes(
        f"127.0.0.1 localhost\n{OLD4}\t{host_name} {fqdn[:-1]}  # app\n"
        f"{OLD6} {host_name}\n127.0.1.1 {host_name}\n".encode()
    )
    bind.set_records(host_name, [OLD4])
    bind.set_records(host_name, [OLD6], "AAAA")

    def make(**overrides):
        section = ip_fixup_section(bind, hosts, [fqdn], servers=f'["{host_name}"]', **overrides)
        return write_config({"main": {"ip_fixup": section}})

    return make, hosts, host_name


def test_dns_and_hosts_follow_the_new_addresses_and_a_rerun_is_a_no_op(cli, setup, bind):
    make, hosts, host = setup
    config = make()
    before = hosts.read_bytes()
    result = cli(
        "-c",
        config,
        "ip-fixup",
        "--name",
        host,
        "--old",
        f"{OLD4},{OLD6}",
        "--new",
        NEW4,
        "--new",
        NEW6,
    )
    assert result.returncode == 0, result
    assert bind.query(host, "A") == [NEW4] and bind.query(host, "AAAA") == [NEW6]
    assert hosts.read_bytes() == before.replace(OLD4.encode(), NEW4.encode()).replace(
        OLD6.encode(), NEW6.encode()
    )
    assert b"127.0.1.1 " + host.encode() in hosts.read_bytes()  # other addresses: untouched
    assert (hosts.parent / "hosts.cfbackup.bak").read_bytes() == before
    assert f"DNS {bind.fqdn(host)} A {NEW4}" in result.stdout and "hosts" in result.stdout
    fixed, inode = hosts.read_bytes(), hosts.stat().st_ino
    again = cli(
        "-c",
        config,
        "ip-fixup",
        "--name",
        host,
        "--old",
        f"{OLD4},{OLD6}",
        "--new",
        f"{NEW4},{NEW6}",
    )
    assert again.returncode == 0, again
    assert hosts.read_bytes() == fixed and hosts.stat().st_ino == inode
    assert bind.query(host, "A") == [NEW4]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tsig_secret_env": '"T_WRONG_SECRET"'}, "(BADSIG)"),
        ({"tsig_key_name": '"no-such-key"'}, "(BADKEY)"),
        (
            {"tsig_key_name": '"cfbackup-nogrant"', "tsig_secret_env": '"T_NOGRANT_SECRET"'},
            "answered REFUSED",
        ),
    ],
)
def test_rejected_updates_are_clear_and_change_nothing(
    cli, setup, bind, monkeypatch, change, message
):
    make, hosts, host = setup
    monkeypatch.setenv("T_WRONG_SECRET", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.setenv("T_NOGRANT_SECRET", bind.nogrant_secret)
    before = hosts.read_bytes()
    result = cli(
        "-c",
        make(dns_zone=f'"{bind.zone}"', **change),
        "ip-fixup",
        "--name",
        host,
        "--old",
        OLD4,
        "--new",
        NEW4,
    )
    assert result.returncode == ExitCode.BACKEND, result
    assert message in result.stderr and "nothing was changed" in result.stderr
    assert result.stderr.count("\n") == 1  # one sentence, no traceback
    # names are written without the root's dot, so no "example.test.:" or "example.test.."
    assert f"zone {bind.zone.rstrip('.')}" in result.stderr
    assert ".:" not in result.stderr and ".." not in result.stderr, result
    assert bind.query(host, "A") == [OLD4]
    assert hosts.read_bytes() == before
    assert not (hosts.parent / "hosts.cfbackup.bak").exists()


def test_skewed_clock_is_badtime(setup, bind, monkeypatch):
    import dns.message
    from cfbackup_ip_fixup import fix_profile

    make, hosts, host = setup
    profile = load_config(make()).profile("main")

    class Skewed:
        @staticmethod
        def time():
            import time

            return time.time() - 3 * 3600

    monkeypatch.setattr(dns.message, "time", Skewed)
    with pytest.raises(CfbackupError, match=r"BADTIME.*fix the clock") as error:
        fix_profile(profile, host, [OLD4], [NEW4])
    assert error.value.exit_code == ExitCode.BACKEND
    monkeypatch.undo()
    assert bind.query(host, "A") == [OLD4]


def test_check_old_refuses_a_record_changed_to_a_third_value(cli, setup, bind):
    make, hosts, host = setup
    bind.set_records(host, ["10.9.9.9"])  # changed by hand since the server was parked
    config = make(dns_check_old="true")
    before = hosts.read_bytes()
    refused = cli(
        "-c", config, "ip-fixup", "--name", host, "--old", f"{OLD4},{OLD6}",
        "--new", f"{NEW4},{NEW6}",
    )  # fmt: skip
    assert refused.returncode == ExitCode.BACKEND, refused
    name = bind.fqdn(host).rstrip(".")
    assert f"the A record of {name} holds 10.9.9.9" in refused.stderr, refused
    assert f"not the old {OLD4} nor the new {NEW4}" in refused.stderr
    assert "dns_check_old = false" in refused.stderr and "nothing was changed" in refused.stderr
    assert refused.stderr.count("\n") == 1
    # the fix ends with the command that runs the fix-up again, as the user ran it
    rerun = (
        f"cfbackup -c {config} ip-fixup --name {host} --old {OLD4},{OLD6} --new {NEW4},{NEW6} "
        "--profile main"
    )
    assert f"then run {rerun}; nothing was changed" in refused.stderr, refused
    # nothing changed: not the AAAA record that still held the old address, not the hosts file
    assert bind.query(host, "A") == ["10.9.9.9"] and bind.query(host, "AAAA") == [OLD6]
    assert hosts.read_bytes() == before
    bind.set_records(host, [OLD4])  # the old address put back: the command runs as printed
    done = cli(*shlex.split(rerun)[1:])
    assert done.returncode == 0, done
    assert bind.query(host, "A") == [NEW4] and bind.query(host, "AAAA") == [NEW6]


def test_dns_networks_keep_private_addresses_out_of_dns(cli, setup, bind):
    make, hosts, host = setup
    config = make(dns_networks='["203.0.113.0/24"]', update_hosts="false")
    result = cli(
        "-c", config, "ip-fixup", "--name", host, "--old", OLD4, "--new", "10.0.0.77,203.0.113.44"
    )
    assert result.returncode == 0, result
    assert bind.query(host, "A") == ["203.0.113.44"]
    assert bind.query(host, "AAAA") == [OLD6]  # no new v6 address: left alone


def test_configuration_and_usage_errors(cli, setup, bind, monkeypatch, write_config, tmp_path):
    make, hosts, host = setup
    config = make()
    bad_ip = cli("-c", config, "ip-fixup", "--name", host, "--new", "10.0.0.300")
    assert bad_ip.returncode == ExitCode.USAGE and "not an IPv4 or IPv6" in bad_ip.stderr
    nobody = cli("-c", config, "ip-fixup", "--name", "other-host", "--new", NEW4)
    assert nobody.returncode == ExitCode.CONFIG and "servers = [" in nobody.stderr
    monkeypatch.setenv("T_TSIG_SECRET", "not base64 at all!")
    garbled = cli("-c", config, "ip-fixup", "--name", host, "--new", NEW4)
    assert garbled.returncode == ExitCode.CONFIG and "base64" in garbled.stderr
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)
    closed = cli(
        "-c", make(dns_port=1, dns_zone=f'"{bind.zone}"'), "ip-fixup", "--name", host, "--new", NEW4
    )
    assert closed.returncode == ExitCode.BACKEND and "cannot reach" in closed.stderr, closed


def test_profile_option_limits_the_fixup(cli, bind, host_name, write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)
    files = {}
    profiles = {}
    for name in ("a", "b"):
        files[name] = tmp_path / f"hosts-{name}"
        files[name].write_text(f"{OLD4} {host_name}\n")
        profiles[name] = {"ip_fixup": f'servers = ["{host_name}"]\nhosts_file = "{files[name]}"\n'}
    config = write_config(profiles)
    result = cli(
        "-c",
        config,
        "ip-fixup",
        "--name",
        host_name,
        "--old",
        OLD4,
        "--new",
        NEW4,
        "--profile",
        "b",
    )
    assert result.returncode == 0, result
    assert files["a"].read_text() == f"{OLD4} {host_name}\n"
    assert files["b"].read_text() == f"{NEW4} {host_name}\n"


def test_check_proves_the_tsig_key_without_changing_anything(cli, setup, bind, monkeypatch):
    make, hosts, host = setup
    config = make()
    good = cli("-c", config, "check", "main")
    assert "[ok] DNS updates: 127.0.0.1" in good.stdout and "accepts TSIG key" in good.stdout
    assert "[ok] hosts file" in good.stdout, good
    monkeypatch.setenv("T_TSIG_SECRET", base64.b64encode(secrets.token_bytes(32)).decode())
    bad = cli("-c", config, "check", "main")
    assert "[FAIL] DNS updates" in bad.stdout and "(BADSIG)" in bad.stdout, bad
    assert bad.returncode == ExitCode.REFUSED
    assert bind.query(host, "A") == [OLD4]


def test_unwritable_hosts_file_after_dns_is_a_clear_config_error(cli, setup, bind, tmp_path):
    make, hosts, host = setup
    missing = tmp_path / "no-such-dir" / "hosts"
    result = cli(
        "-c",
        make(hosts_file=f'"{missing}"'),
        "ip-fixup",
        "--name",
        host,
        "--old",
        OLD4,
        "--new",
        NEW4,
    )
    assert result.returncode == ExitCode.CONFIG, result
    assert f"cannot rewrite {missing}" in result.stderr
    assert "DNS was already updated" in result.stderr
    assert bind.query(host, "A") == [NEW4]


def test_check_old_rerun_after_a_hosts_file_failure_completes_it(cli, setup, bind, tmp_path):
    """DNS done, hosts file failed (exit 3): the same command run again skips the records that
    already hold the new addresses and fixes the hosts file (dns_check_old stays on)."""
    make, hosts, host = setup
    missing = tmp_path / "not-yet" / "hosts"
    command = ("ip-fixup", "--name", host, "--old", f"{OLD4},{OLD6}", "--new", f"{NEW4},{NEW6}")
    config = make(dns_check_old="true", hosts_file=f'"{missing}"')
    failed = cli("-c", config, *command)
    assert failed.returncode == ExitCode.CONFIG, failed
    assert "DNS was already updated, and a rerun skips it" in failed.stderr
    rerun = shlex.join(["cfbackup", "-c", str(config), *command, "--profile", "main"])
    assert f"check the path and permissions, then run {rerun}; DNS was" in failed.stderr, failed
    assert bind.query(host, "A") == [NEW4] and bind.query(host, "AAAA") == [NEW6]
    missing.parent.mkdir()
    missing.write_text(f"{OLD4} {host}\n")
    again = cli(*shlex.split(rerun)[1:])  # as printed
    assert again.returncode == 0, again
    fqdn = bind.fqdn(host)
    assert f"DNS {fqdn} A {NEW4} (already so)" in again.stdout, again
    assert missing.read_text() == f"{NEW4} {host}\n"
    assert bind.query(host, "A") == [NEW4] and bind.query(host, "AAAA") == [NEW6]
    # half done (A new, AAAA still old): only AAAA is updated, A is reported as already so
    bind.set_records(host, [OLD6], "AAAA")
    half = cli("-c", make(dns_check_old="true", update_hosts="false"), *command)
    assert half.returncode == 0, half
    assert f"DNS {fqdn} A {NEW4} (already so)" in half.stdout
    assert f"DNS {fqdn} AAAA {NEW6}\n" in half.stdout
    assert bind.query(host, "AAAA") == [NEW6]


@pytest.mark.parametrize("check_old", [False, True])
def test_rfc2136_failure_in_a_later_zone_names_the_zones_changed_and_the_rerun_completes_it(
    cli, write_config, tmp_path, monkeypatch, check_old
):
    """One UPDATE per zone: the second zone's update-policy refuses the key after the first
    zone was changed. The message names that zone, its records old -> new and the command;
    once the profile signs with a key both zones grant, that command, run as printed,
    completes the job (with dns_check_old the first zone is found already so)."""
    from support.bind import Bind

    first, second = "web.example.test.", "web.second.test."
    with Bind(
        records={first: [OLD4], second: [OLD4]},
        more_zones={"second.test.": ("cfbackup-other",)},
        also_grant=("cfbackup-other",),
    ) as dns:
        monkeypatch.setenv("T_TSIG_SECRET", dns.secret)
        hosts = tmp_path / "hosts"
        hosts.write_text(f"{OLD4} web\n")
        section = ip_fixup_section(
            dns, hosts, [first, second], servers='["web"]', dns_check_old=str(check_old).lower()
        )
        config = write_config({"main": {"ip_fixup": section}})
        failed = cli("-c", config, "ip-fixup", "--name", "web", "--old", OLD4, "--new", NEW4)
        assert failed.returncode == ExitCode.BACKEND, failed
        assert failed.stderr.count("\n") == 1, failed  # one sentence
        assert "answered REFUSED" in failed.stderr
        assert "nothing was changed in zone second.test; " in failed.stderr, failed
        rerun = f"cfbackup -c {config} ip-fixup --name web --old {OLD4} --new {NEW4} --profile main"
        assert (
            "RFC 2136 updates are atomic only within a zone, and zone example.test "
            f"(web.example.test A {OLD4} -> {NEW4}) was already changed: once that is fixed, "
            f"run {rerun} to complete the rest (it leaves what is done as it is)."
        ) in failed.stderr, failed
        assert dns.query(first) == [NEW4] and dns.query(second) == [OLD4]
        assert hosts.read_text() == f"{OLD4} web\n"  # a DNS failure stops before the hosts file
        # the cause fixed: the profile signs with a key the second zone grants too
        config.write_text(config.read_text().replace(f'"{dns.key_name}"', f'"{dns.other_key}"'))
        monkeypatch.setenv("T_TSIG_SECRET", dns.other_secret)
        again = cli(*shlex.split(rerun)[1:])
        assert again.returncode == 0, again
        assert dns.query(first) == [NEW4] and dns.query(second) == [NEW4]
        assert hosts.read_text() == f"{NEW4} web\n"
        if check_old:
            assert f"DNS {first} A {NEW4} (already so)" in again.stdout, again
            assert f"DNS {second} A {NEW4}\n" in again.stdout, again


def test_unpark_rerun_command_completes_a_fixup_whose_hosts_file_failed(
    cli, write_config, clouds, emulator, bind, host_name, tmp_path, monkeypatch
):
    """The command unpark prints after a hosts-file failure runs as printed, with
    dns_check_old on, although DNS already holds the new address."""
    import shlex

    old = emulator.add_server("web1")["addresses"]["private"][0]["addr"]
    bind.set_records(host_name, [old])
    monkeypatch.setenv("T_TSIG_SECRET", bind.secret)
    hosts = tmp_path / "etc" / "hosts"  # its folder is missing: the hosts file fails
    section = ip_fixup_section(bind, hosts, [bind.fqdn(host_name)], dns_check_old="true")
    cfg = write_config({"web1": {"server_image": server_image_section(), "ip_fixup": section}})
    assert cli("-c", cfg, "server", "park", "web1").returncode == 0
    result = cli("-c", cfg, "server", "unpark", "web1")
    assert result.returncode == ExitCode.CONFIG, result
    new = emulator.server_named("web1")["addresses"]["private"][0]["addr"]
    assert bind.query(host_name) == [new]
    rerun = f"cfbackup -c {cfg} ip-fixup --name web1 --old {old} --new {new}"
    assert rerun in result.stderr, result
    hosts.parent.mkdir()
    hosts.write_text(f"{old} web1\n")
    fixed = cli(*shlex.split(rerun)[1:])
    assert fixed.returncode == 0, fixed
    assert "(already so)" in fixed.stdout
    assert bind.query(host_name) == [new] and hosts.read_text() == f"{new} web1\n"


@pytest.fixture
def silent_dns():
    """A TCP port that accepts connections and never answers (a hung DNS server)."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def _closed_port() -> int:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@pytest.mark.parametrize("case", ["notauth", "timeout", "refused"])
def test_dns_server_not_authoritative_hung_or_down(cli, setup, bind, silent_dns, case):
    """docs/plugins/ip_fixup.md's table: NOTAUTH, a timeout and a refused connection are
    each one sentence naming the setting to check, exit BACKEND, nothing changed."""
    make, hosts, host = setup
    change, message = {
        "notauth": (
            {"dns_zone": '"elsewhere.test."', "dns_names": f'["{host}.elsewhere.test."]'},
            "answered NOTAUTH: it is not authoritative for zone elsewhere.test ",
        ),
        "timeout": ({"dns_port": silent_dns, "dns_timeout": 1}, "did not answer within 1 s"),
        "refused": ({"dns_port": _closed_port()}, "cannot reach DNS server"),
    }[case]
    before = hosts.read_bytes()
    result = cli("-c", make(**change), "ip-fixup", "--name", host, "--old", OLD4, "--new", NEW4)
    assert result.returncode == ExitCode.BACKEND, result
    assert message in result.stderr, result
    if case != "notauth":
        assert "check dns_server and dns_port" in result.stderr
    assert result.stderr.count("\n") == 1  # one sentence, no traceback
    assert bind.query(host, "A") == [OLD4]
    assert hosts.read_bytes() == before


def test_dns_server_that_cannot_write_its_zone_answers_servfail(
    cli, write_config, host_name, tmp_path, monkeypatch
):
    """A server of its own whose zone folder it may not write (no journal): SERVFAIL, one
    sentence pointing at the server's log, nothing changed."""
    import os

    from support.bind import Bind

    with Bind(records={host_name: [OLD4]}) as private:
        os.chown(private.dir, 0, 0)  # named runs as bind: it can no longer write there
        private.dir.chmod(0o755)
        monkeypatch.setenv("T_TSIG_SECRET", private.secret)
        hosts = tmp_path / "hosts"
        hosts.write_bytes(f"{OLD4} {host_name}\n".encode())
        section = ip_fixup_section(
            private,
            hosts,
            [private.fqdn(host_name)],
            servers=f'["{host_name}"]',
            dns_zone=f'"{private.zone}"',
        )
        config = write_config({"main": {"ip_fixup": section}})
        result = cli("-c", config, "ip-fixup", "--name", host_name, "--old", OLD4, "--new", NEW4)
        assert result.returncode == ExitCode.BACKEND, result
        assert "answered SERVFAIL" in result.stderr and "see its log" in result.stderr
        assert result.stderr.count("\n") == 1
        assert private.query(host_name, "A") == [OLD4]
        assert hosts.read_bytes() == f"{OLD4} {host_name}\n".encode()


def test_tsig_key_file_as_tsig_keygen_writes_it_or_a_bare_secret(
    cli, host_name, write_config, tmp_path
):
    """``tsig_secret_file`` takes the BIND key file (name and algorithm come from it: the config
    names neither, and its default algorithm, hmac-sha256, is not the key's) or a bare secret."""
    import re
    import subprocess

    from support.bind import Bind

    key_file = tmp_path / "tsig.key"
    made = subprocess.run(
        ["tsig-keygen", "-a", "hmac-sha512", "web-fix-key"], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    key_file.write_text(made.stdout)
    key_file.chmod(0o600)  # as a key file is kept: check fails one that others can read
    secret = re.search(r'secret "([^"]+)"', made.stdout)[1]
    with Bind(key_name="web-fix-key", algorithm="hmac-sha512", secret=secret) as bind:
        bind.set_records(host_name, [OLD4])
        hosts = tmp_path / "hosts"
        hosts.write_text(f"{OLD4} {host_name}\n")
        section = ip_fixup_section(bind, hosts, [bind.fqdn(host_name)], servers=f'["{host_name}"]')
        section = re.sub(r"tsig_(key_name|secret_env) = .*\n", "", section)
        cfg = write_config({"main": {"ip_fixup": section + f'tsig_secret_file = "{key_file}"\n'}})
        checked = cli("-c", cfg, "check", "main")
        assert "accepts TSIG key web-fix-key" in checked.stdout, checked.output
        assert checked.returncode == 0, checked.output
        done = cli("-c", cfg, "ip-fixup", "--name", host_name, "--old", OLD4, "--new", NEW4)
        assert done.returncode == 0, done
        assert bind.query(host_name) == [NEW4]
        assert secret not in done.output + checked.output

        bare = tmp_path / "bare.secret"
        bare.write_text(secret + "\n")
        cfg = write_config(
            {
                "main": {
                    "ip_fixup": section
                    + f'tsig_secret_file = "{bare}"\ntsig_key_name = "web-fix-key"\n'
                    + 'tsig_algorithm = "hmac-sha512"\n'
                }
            },
            "bare.toml",
        )
        done = cli("-c", cfg, "ip-fixup", "--name", host_name, "--old", NEW4, "--new", OLD4)
        assert done.returncode == 0, done
        assert bind.query(host_name) == [OLD4]
