"""The two firewall tools: nftables (preferred) and iptables/ip6tables (where nft is absent).

Each backend saves the whole ruleset, adds or removes the lock-down and the seed firewall in one
transaction, and reads back whether a lock-down is in force from the kernel itself (the
lock-down carries a comment with its start time and token), so ``status`` and ``unlock`` work
even without the state files. Every process is spawned through :func:`cfbackup.execute.capture`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil

from cfbackup import execute
from cfbackup.errors import RunRefused
from cfbackup_firewall_lockdown import render
from cfbackup_firewall_lockdown.settings import AllowRule

# cron and sudo often leave /usr/sbin out of PATH, where Debian installs nft and iptables.
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
TIMEOUT = 30
log = logging.getLogger("cfbackup.firewall_lockdown")
_COMMENT_RE = re.compile(r"since=(?P<since>\d+) token=(?P<token>[0-9a-f]+)(?: pid=(?P<pid>\d+))?")


class FirewallError(RunRefused):
    """A firewall tool failed or is missing (exit code REFUSED: nothing was changed)."""


def search_dirs() -> list[str]:
    """Where the tools are looked for: ``$CFBACKUP_FIREWALL_PATH`` when set (for unusual
    installs), else PATH followed by the sbin directories."""
    override = os.environ.get("CFBACKUP_FIREWALL_PATH")
    if override is not None:
        return [d for d in override.split(":") if d]
    dirs = [d for d in os.environ.get("PATH", "").split(":") if d]
    return dirs + [d for d in SBIN_DIRS if d not in dirs]


def find_tool(name: str) -> str | None:
    return shutil.which(name, path=":".join(search_dirs()))


@dataclasses.dataclass(frozen=True)
class LockInfo:
    """A lock-down found in the kernel."""

    token: str
    since: float | None
    pid: int | None
    where: str
    dropped: int | None = None  # packets dropped so far (nftables only)

    @property
    def foreign(self) -> bool:
        """A table or chain of our name without our ``since=... token=...`` comment: someone
        else's, never adopted as a lock-down in force nor deleted."""
        return not self.token

    def foreign_error(self, doing: str) -> FirewallError:
        return FirewallError(
            f"{self.where} exists but was not made by cfbackup (it has no cfbackup "
            f"\"since=... token=...\" comment), so {doing}: rename or delete it yourself if it "
            "is not needed; cfbackup neither adopts nor deletes it.")


def comment_for(token: str, since: float, pid: int | None) -> str:
    return f"cfbackup lock-down since={int(since)} token={token}" + (f" pid={pid}" if pid else "")


def _parse_comment(comment: str, where: str, dropped: int | None = None) -> LockInfo:
    match = _COMMENT_RE.search(comment)
    if not match:
        return LockInfo("", None, None, where, dropped)
    return LockInfo(match["token"], float(match["since"]),
                    int(match["pid"]) if match["pid"] else None, where, dropped)


def _run(argv: list[str], what: str, input_text: str | None = None,
         ok_codes: tuple[int, ...] = (0,)) -> execute.Result:
    result = execute.capture(argv, timeout=TIMEOUT, input_text=input_text)
    if result.returncode not in ok_codes:
        detail = " ".join(line.strip() for line in result.tail[-3:]) or f"exit {result.returncode}"
        raise FirewallError(f"{what} failed ({os.path.basename(argv[0])}: {detail}): check that "
                            "the kernel has nftables/netfilter support and that you are root.")
    return result


class Nft:
    """nftables: the lock-down and the seed each live in their own ``inet`` table."""

    name = "nft"
    saved_names = ("nft",)  # the keys of :meth:`save`

    def __init__(self, nft: str):
        self.nft = nft

    def ipv6_warning(self) -> str | None:
        """nftables' inet table covers IPv6 with IPv4: never a gap (as Iptables.ipv6_warning)."""
        return None

    def describe(self) -> dict:
        return {"kind": "nft", "nft": self.nft}

    def version(self) -> str:
        return execute.capture([self.nft, "--version"], timeout=TIMEOUT).stdout.strip()

    def save(self) -> dict[str, str]:
        return {"nft": _run([self.nft, "list", "ruleset"], "saving the ruleset").stdout}

    @staticmethod
    def normalize(text: str) -> str:
        """Live counters (in rules, set elements and named ``counter`` objects), quota usage and
        set-element expiry change by themselves: not part of "the ruleset"."""
        text = re.sub(r"counter packets \d+ bytes \d+", "counter", text)
        text = re.sub(r"^(\s*)packets \d+ bytes \d+$", r"\1packets bytes", text, flags=re.M)
        text = re.sub(r" used \d+ \S*bytes", "", text)
        return re.sub(r" expires \S+", "", text)

    def _table(self, table: str) -> tuple[str, str] | None:
        """(listing, handle) of one of our tables, or None when it does not exist."""
        result = execute.capture([self.nft, "-a", "list", "table", "inet", table], timeout=TIMEOUT)
        if result.returncode != 0:
            if any("No such file or directory" in line for line in result.tail):
                return None
            _run([self.nft, "-a", "list", "table", "inet", table], f"reading table {table}")
        handle = re.search(r"# handle (\d+)", result.stdout)
        return result.stdout, handle[1] if handle else ""

    @staticmethod
    def _info(listing: str) -> LockInfo:
        comment = re.search(r'comment "([^"]*)"', listing)
        dropped = re.search(r"counter packets (\d+) bytes \d+ drop", listing)
        return _parse_comment(comment[1] if comment else "",
                              f"nft table inet {render.LOCKDOWN_TABLE}",
                              int(dropped[1]) if dropped else None)

    def lockdown_info(self) -> LockInfo | None:
        table = self._table(render.LOCKDOWN_TABLE)
        return None if table is None else self._info(table[0])

    def apply_lockdown(self, rules: tuple[AllowRule, ...], comment: str, *,
                       replace: bool = False) -> None:
        """Add the lock-down; ``replace``: in the same transaction as deleting the one in force
        (taking over an orphaned lock-down leaves no moment unfiltered)."""
        text = render.nft_lockdown(rules, comment)
        if replace:
            text = render.nft_replace(render.LOCKDOWN_TABLE, text)
        _run([self.nft, "-f", "-"], "applying the lock-down", input_text=text)

    def remove_lockdown(self, token: str | None = None) -> bool:
        """Delete the lock-down table (only the one carrying ``token``, when given; a foreign
        table of the same name is refused)."""
        table = self._table(render.LOCKDOWN_TABLE)
        if table is None:
            return False
        listing, handle = table
        info = self._info(listing)
        if token is not None and info.token != token:
            return False
        if info.foreign:
            raise info.foreign_error("it was not deleted")
        # By handle: a newer lock-down that replaced this one in between is left alone.
        result = execute.capture([self.nft, "delete", "table", "inet", "handle", handle],
                                 timeout=TIMEOUT)
        if result.returncode != 0:
            again = self._table(render.LOCKDOWN_TABLE)
            if again is None or again[1] != handle:
                return False  # gone, or replaced by a newer lock-down, in the meantime
            _run([self.nft, "delete", "table", "inet", "handle", handle], "removing the lock-down")
        return True

    def reload_saved(self, saved: dict[str, str]) -> None:
        _run([self.nft, "-f", "-"], "reloading the saved ruleset",
             input_text="flush ruleset\n" + saved["nft"])

    def seed_active(self) -> bool:
        return self._table(render.SEED_TABLE) is not None

    def apply_seed(self, rules: tuple[AllowRule, ...], comment: str) -> None:
        text = render.nft_replace(render.SEED_TABLE, render.nft_seed(rules, comment))
        _run([self.nft, "-f", "-"], "applying the seed firewall", input_text=text)

    def remove_seed(self) -> bool:
        if not self.seed_active():
            return False
        _run([self.nft, "delete", "table", "inet", render.SEED_TABLE],
             "removing the seed firewall")
        return True


class Iptables:
    """iptables (and ip6tables when present): chains in the filter table, jumped to from the
    top of INPUT. IPv4 is required; IPv6 is covered when ip6tables works on this host."""

    name = "iptables"
    saved_names = ("iptables", "ip6tables")  # the keys of :meth:`save`

    def __init__(self, families: dict[int, dict[str, str]], ipv6_gap: str | None = None):
        self.families = families  # {4: {"cmd": ..., "save": ..., "restore": ...}, 6: ...}
        # why IPv6 is not covered although this kernel has it on (None: covered, or IPv6 off)
        self.ipv6_gap = ipv6_gap

    @classmethod
    def find(cls) -> Iptables | None:
        families: dict[int, dict[str, str]] = {}
        for version, prefix in ((4, "iptables"), (6, "ip6tables")):
            tools = {key: find_tool(prefix + suffix)
                     for key, suffix in (("cmd", ""), ("save", "-save"), ("restore", "-restore"))}
            if all(tools.values()):
                families[version] = tools  # type: ignore[assignment]
        if 4 not in families:
            return None
        gap = None
        if 6 not in families:
            gap = "ip6tables, ip6tables-save or ip6tables-restore is missing"
        else:
            probe = execute.capture([families[6]["cmd"], "-w", "-S", "INPUT"], timeout=TIMEOUT)
            if probe.returncode != 0:  # IPv6 disabled in this kernel, or ip6tables broken
                del families[6]
                detail = " ".join(line.strip() for line in probe.tail[-1:])
                gap = f"ip6tables fails ({detail or f'exit {probe.returncode}'})"
        return cls(families, gap if gap and ipv6_enabled() else None)

    def ipv6_warning(self) -> str | None:
        """One sentence when IPv6 is on in this kernel but not covered, else None."""
        if self.ipv6_gap is None:
            return None
        return (f"IPv6 is enabled in this kernel but {self.ipv6_gap}, so the lock-down leaves "
                "IPv6 traffic unfiltered: install ip6tables (apt install iptables) or use the "
                "nft backend (apt install nftables).")

    def describe(self) -> dict:
        return {"kind": "iptables", "families": {str(k): v for k, v in self.families.items()}}

    def version(self) -> str:
        return execute.capture([self.families[4]["cmd"], "--version"], timeout=TIMEOUT)\
            .stdout.strip() + ("" if 6 in self.families else " (no ip6tables)")

    def save(self) -> dict[str, str]:
        return {f"ip{'' if v == 4 else '6'}tables": _run([t["save"]], "saving the ruleset").stdout
                for v, t in self.families.items()}

    @staticmethod
    def normalize(text: str) -> str:
        """Packet counters ignored, and a table holding nothing (built-in chains with ACCEPT
        policy, no rule: what adding our chain to a host without that table leaves) counts as
        absent."""
        lines = [line for line in text.splitlines() if not line.startswith("#")]
        text = re.sub(r"\[\d+:\d+\]", "[0:0]", "\n".join(lines))
        return re.sub(r"^\*\w+\n(?::[A-Z]+ ACCEPT \[0:0\]\n)*COMMIT(?:\n|$)", "", text,
                      flags=re.M)

    def _jumps(self, version: int, chain: str) -> list[str]:
        result = _run([self.families[version]["cmd"], "-w", "-S", "INPUT"], "reading INPUT")
        return [line for line in result.stdout.splitlines() if line.endswith(f"-j {chain}")]

    def _chain_exists(self, version: int, chain: str) -> bool:
        result = execute.capture([self.families[version]["cmd"], "-w", "-S", chain],
                                 timeout=TIMEOUT)
        return result.returncode == 0

    def _restore(self, version: int, script: str, what: str) -> None:
        _run([self.families[version]["restore"], "-w", "--noflush"], what, input_text=script)

    def lockdown_info(self) -> LockInfo | None:
        jumps = self._jumps(4, render.LOCKDOWN_CHAIN)
        if not jumps and not self._chain_exists(4, render.LOCKDOWN_CHAIN):
            return None
        comment = re.search(r'--comment "?([^"]*)"?', jumps[0]) if jumps else None
        return _parse_comment(comment[1] if comment else "",
                              f"iptables chain {render.LOCKDOWN_CHAIN}")

    def apply_lockdown(self, rules: tuple[AllowRule, ...], comment: str, *,
                       replace: bool = False) -> None:
        """Add the lock-down chains; ``replace``: each family's chain and jump are replaced in
        one commit (taking over an orphaned lock-down leaves no moment unfiltered)."""
        warning = self.ipv6_warning()
        if warning:
            log.warning("%s", warning)
        done: list[int] = []
        try:
            for version in self.families:
                jumps = self._jumps(version, render.LOCKDOWN_CHAIN) if replace else []
                self._restore(version, render.iptables_lockdown(rules, version, comment, jumps),
                              f"applying the IPv{version} lock-down")
                done.append(version)
        except BaseException:
            for version in done:  # nothing half-applied: IPv4 without IPv6 is rolled back
                self._remove(version, render.LOCKDOWN_CHAIN)
            raise

    def _remove(self, version: int, chain: str) -> bool:
        jumps = self._jumps(version, chain)
        if not jumps and not self._chain_exists(version, chain):
            return False
        self._restore(version, render.iptables_remove(chain, jumps), f"removing {chain}")
        return True

    def remove_lockdown(self, token: str | None = None) -> bool:
        info = self.lockdown_info()
        if token is not None and (info is None or info.token != token):
            return False
        if info is not None and info.foreign:
            raise info.foreign_error("it was not deleted")
        removed = [self._remove(version, render.LOCKDOWN_CHAIN) for version in self.families]
        return any(removed)

    def reload_saved(self, saved: dict[str, str]) -> None:
        for version, tools in self.families.items():
            text = saved.get(f"ip{'' if version == 4 else '6'}tables")
            if text:
                _run([tools["restore"], "-w"], "reloading the saved ruleset", input_text=text)

    def seed_active(self) -> bool:
        return self._chain_exists(4, render.SEED_CHAIN)

    def apply_seed(self, rules: tuple[AllowRule, ...], comment: str) -> None:
        for version in self.families:
            script = render.iptables_seed(rules, version, comment,
                                          self._jumps(version, render.SEED_CHAIN))
            self._restore(version, script, f"applying the IPv{version} seed firewall")

    def remove_seed(self) -> bool:
        return any([self._remove(version, render.SEED_CHAIN) for version in self.families])


Backend = Nft | Iptables


def ipv6_enabled() -> bool:
    """True when this kernel (this network namespace) has IPv6 on."""
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6", encoding="ascii") as flag:
            return flag.read().strip() == "0"
    except OSError:
        return False  # no IPv6 in this kernel at all


def detect(choice: str = "auto") -> Backend:
    """The backend to use: nft when installed (for ``auto``), else iptables."""
    looked = ":".join(search_dirs())
    nft = find_tool("nft") if choice in ("auto", "nft") else None
    if nft:
        return Nft(nft)
    if choice == "nft":
        raise FirewallError(f"nft was not found (looked in {looked}): install nftables "
                            "(apt install nftables) or set backend = \"iptables\".")
    iptables = Iptables.find()
    if iptables:
        return iptables
    if choice == "iptables":
        raise FirewallError(f"iptables, iptables-save and iptables-restore were not all found "
                            f"(looked in {looked}): install iptables or set backend = \"nft\".")
    raise FirewallError(f"neither nft nor iptables was found (looked in {looked}): install "
                        "nftables (apt install nftables) or iptables.")


def from_description(description: dict) -> Backend:
    """Rebuild a backend from :meth:`describe` (the dead-man uses the same tools as cfbackup)."""
    if description.get("kind") == "nft":
        return Nft(description["nft"])
    families = {int(k): v for k, v in description["families"].items()}
    return Iptables(families)
