"""The pure parts: the allow-rule grammar, the rendered rulesets, the argv (the inventory and
the selection of servers: test_firewall_selection.py)."""

from __future__ import annotations

import argparse
import ipaddress

import pytest
from cfbackup_firewall_lockdown import cli, render, seed
from cfbackup_firewall_lockdown.settings import AllowRule, parse_allow_rule, settings_from_section

from cfbackup.errors import ConfigError

pytestmark = pytest.mark.firewall
net = ipaddress.ip_network


@pytest.mark.parametrize("text, rule", [
    ("tcp/443", AllowRule("tcp", (443, 443))),
    ("UDP/60000-61000", AllowRule("udp", (60000, 61000))),
    ("tcp/5432 from 10.1.2.3, fd00::/8", AllowRule("tcp", (5432, 5432),
                                                   (net("10.1.2.3/32"), net("fd00::/8")))),
    ("icmp", AllowRule("icmp")),
    ("icmp from 10.0.0.0/8", AllowRule("icmp", None, (net("10.0.0.0/8"),))),
    ("from 192.168.7.9/24", AllowRule(None, None, (net("192.168.7.0/24"),))),
])
def test_allow_rules_parse(text, rule):
    assert parse_allow_rule(text) == rule


@pytest.mark.parametrize("text, message", [
    ("", "is not a rule"),
    ("ssh", "is not a rule"),
    ("tcp", "is not a rule"),
    ("tcp/0", "'0' is not a port number"),
    ("tcp/70000", "'70000' is not a port number"),
    ("tcp/90-80", "reversed"),
    ("tcp/80 from 10.0.0.300", "'10.0.0.300' is not a network"),
])
def test_bad_allow_rules_say_what_is_expected(text, message):
    with pytest.raises(ValueError, match=message):
        parse_allow_rule(text)


def test_settings_report_every_problem_naming_the_key():
    with pytest.raises(ConfigError) as caught:
        settings_from_section({"management_networks": ["10.0.0.0/8", "nonsense"],
                               "allow": ["tcp/80", "udp/x"]}, "profiles.web.firewall_lockdown")
    assert caught.value.message == (
        "profiles.web.firewall_lockdown.management_networks: 'nonsense' is not a network such "
        "as 10.0.0.0/8 or 2001:db8::/32; profiles.web.firewall_lockdown.allow: 'udp/x' is not a "
        "rule such as \"tcp/443\", \"udp/53 from 10.0.0.0/8\", \"icmp\" or \"from 10.0.0.0/8\".")


def test_without_management_networks_ssh_is_open_from_anywhere():
    settings = settings_from_section({})
    assert settings.ssh_rule == AllowRule("tcp", (22, 22), ())
    assert settings.ssh_rule.describe() == "tcp/22 from anywhere"
    assert settings.deadman_timeout == 3600 and settings.backend == "auto"


def test_nft_lockdown_table():
    settings = settings_from_section({"management_networks": ["10.0.0.0/8", "fd00::/8"],
                                      "allow": ["udp/161 from 10.5.0.0/16", "icmp"]})
    text = render.nft_lockdown(settings.lockdown_rules, "cfbackup lock-down since=1 token=ab")
    nd = "nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert"
    assert text == f"""table inet cfbackup_lockdown {{
\tcomment "cfbackup lock-down since=1 token=ab"
\tchain input {{
\t\ttype filter hook input priority filter - 10; policy accept;
\t\tiif "lo" accept
\t\tct state established,related accept
\t\ticmpv6 type {{ {nd} }} accept
\t\tip saddr {{ 10.0.0.0/8 }} tcp dport 22 accept
\t\tip6 saddr {{ fd00::/8 }} tcp dport 22 accept
\t\tip saddr {{ 10.5.0.0/16 }} udp dport 161 accept
\t\ticmp type echo-request accept
\t\ticmpv6 type echo-request accept
\t\tcounter drop
\t}}
}}
"""


def test_iptables_scripts_split_the_sources_by_ip_version():
    rules = (parse_allow_rule("tcp/22 from 10.0.0.0/8, fd00::/8"),
             parse_allow_rule("tcp/80 from fd01::/16"))
    v4 = render.iptables_lockdown(rules, 4, "c")
    v6 = render.iptables_lockdown(rules, 6, "c")
    assert "-A CFBACKUP_LOCKDOWN -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j RETURN" in v4
    assert "fd0" not in v4 and "--dport 80" not in v4
    assert "-A CFBACKUP_LOCKDOWN -s fd01::/16 -p tcp -m tcp --dport 80 -j RETURN" in v6
    assert "neighbour-solicitation" in v6 and "neighbour" not in v4
    assert v4.splitlines()[-3:] == ["-A CFBACKUP_LOCKDOWN -j DROP",
                                    '-I INPUT 1 -m comment --comment "c" -j CFBACKUP_LOCKDOWN',
                                    "COMMIT"]


def test_comments_cannot_inject_rules():
    with pytest.raises(ValueError):
        render.nft_lockdown((), 'x"\nflush ruleset')


@pytest.mark.parametrize("text, normal", [("80", "80/tcp"), ("53/UDP", "53/udp"),
                                          ("60000-61000/udp", "60000-61000/udp")])
def test_seed_ports_are_normalized(text, normal):
    assert seed.normalize_port(text) == normal


def test_the_remote_operation_keeps_its_words():
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["firewall", "--backend", "iptables", "-s", "web", "deny", "port",
                              "80/udp"])
    assert cli.operation_argv(args) == ["--backend", "iptables", "deny", "port", "80/udp"]
    args = parser.parse_args(["firewall", "-s", "web", "lock", "--timeout", "600"])
    assert cli.operation_argv(args) == ["lock", "--timeout", "600"]
