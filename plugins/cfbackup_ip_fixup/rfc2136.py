"""DNS A/AAAA updates by RFC 2136 dynamic update, signed with TSIG (dnspython).

One UPDATE message per zone, so the names of a zone change together or not at all. What a
server answers is turned into one sentence (DESIGN.md section 5): a wrong secret, an unknown key
or a skewed clock make dnspython raise ``dns.tsig.PeerBadSignature`` / ``PeerBadKey`` /
``PeerBadTime`` without a reply; a policy refusal (REFUSED) and a failed prerequisite (NXRRSET)
are ordinary replies; and ``dns.rcode.to_text(16)`` says BADVERS, so TSIG codes are named here.
"""

from __future__ import annotations

import binascii
import re
import socket
from collections.abc import Iterable
from typing import Any

from cfbackup.errors import BackendError, ConfigError

TSIG_RCODES = {16: "BADSIG", 17: "BADKEY", 18: "BADTIME", 22: "BADTRUNC"}
TSIG_ALGORITHMS = (  # the choices of ip_fixup.tsig_algorithm
    "hmac-sha256",
    "hmac-sha384",
    "hmac-sha512",
    "hmac-sha224",
    "hmac-sha1",
    "hmac-md5",
)


def shown(name: str) -> str:
    """A DNS name for a sentence: without the root's final dot, which would read as a full
    stop before the colon or period that follows ("zone example.test.: ...")."""
    return str(name).rstrip(".") or "."


def _rcode_text(code: int) -> str:
    import dns.rcode

    return TSIG_RCODES.get(code) or dns.rcode.to_text(code)


# a quoted string (kept: a base64 secret may hold "//"), else a comment (removed)
_COMMENTS = re.compile(r'("[^"]*")|/\*.*?\*/|(?://|#)[^\n]*', re.S)
_KEY = re.compile(r'\bkey\s+"?([^"\s{;]+)"?\s*\{(.*?)\}\s*;', re.S)
_ALGORITHM = re.compile(r'\balgorithm\s+"?([\w.-]+)"?\s*;', re.I)
_SECRET = re.compile(r'\bsecret\s+"([^"]+)"\s*;')


def tsig_key(text: str, key_name: str | None, where: str) -> tuple[str | None, str | None, str]:
    """(key name, algorithm or None, base64 secret) from what ``tsig_secret`` holds: a bare
    base64 secret (the name is ``tsig_key_name``), or a BIND key statement as ``tsig-keygen``
    writes it, ``key "NAME" { algorithm ALG; secret "..."; };``, which names the key and its
    algorithm itself (``tsig_key_name``, when set, picks one of several keys)."""
    from cfbackup import redact

    keys = _KEY.findall(_COMMENTS.sub(lambda found: found[1] or "", text))
    if not keys:
        secret = text.strip()
        if not key_name:
            raise ConfigError(
                f"{where}.tsig_key_name: a TSIG secret is given but not the name of its key: set "
                "tsig_key_name, or give the key file tsig-keygen wrote (it names the key)."
            )
        return key_name, None, secret
    if key_name:
        keys = [k for k in keys if k[0] == key_name] or keys
        if keys[0][0] != key_name:
            raise ConfigError(
                f"{where}.tsig_key_name: the key file names key {keys[0][0]}, not {key_name}: "
                "fix tsig_key_name (or remove it: the file names the key)."
            )
    elif len(keys) > 1:
        raise ConfigError(
            f"{where}.tsig_secret: the key file holds {len(keys)} keys "
            f"({', '.join(k[0] for k in keys)}): set tsig_key_name to the one to use."
        )
    name, body = keys[0]
    secret = _SECRET.search(body)
    algorithm = _ALGORITHM.search(body)
    if secret is None:
        raise ConfigError(
            f'{where}.tsig_secret: key {name} in the key file has no secret "..."; statement: '
            "give the file tsig-keygen wrote."
        )
    redact.register(secret[1])
    if algorithm is None:
        return name, None, secret[1]
    alg = algorithm[1].lower().rstrip(".").removesuffix(".sig-alg.reg.int")
    if alg not in TSIG_ALGORITHMS:
        raise ConfigError(
            f"{where}.tsig_secret: key {name} uses algorithm {alg}, which cfbackup cannot sign "
            f"with (it knows {', '.join(TSIG_ALGORITHMS)}): make a key with tsig-keygen -a "
            "hmac-sha256."
        )
    return name, alg, secret[1]


class Server:
    """Where updates go and how they are signed, from a profile's [ip_fixup] section."""

    def __init__(self, settings: dict[str, Any], secret: str | None, where: str):
        import dns.name
        import dns.tsig
        import dns.tsigkeyring

        if not settings.get("dns_server"):
            raise ConfigError(
                f"{where}.dns_server: required for RFC 2136 updates: name the "
                "primary server of the zone."
            )
        self.host = settings["dns_server"]
        self.port = settings["dns_port"]
        self.timeout = settings["dns_timeout"]
        self.where = where
        self.key_name = settings.get("tsig_key_name")
        self.keyring = None
        self.algorithm = dns.tsig.default_algorithm
        algorithm = settings["tsig_algorithm"]
        if secret:
            self.key_name, from_file, secret = tsig_key(secret, self.key_name, where)
            algorithm = from_file or algorithm
        if self.key_name:
            if not secret:
                raise ConfigError(
                    f"{where}.tsig_secret: tsig_key_name is set but no secret is "
                    "given (tsig_secret_file, _env or _command)."
                )
            try:
                self.keyring = dns.tsigkeyring.from_text({self.key_name: secret})
            except (binascii.Error, ValueError):
                raise ConfigError(
                    f"{where}.tsig_secret: not a base64 TSIG secret: copy the "
                    "secret of the key from the server's config, or give the key file "
                    "tsig-keygen wrote."
                ) from None
            self.algorithm = dns.name.from_text(algorithm)
        try:
            self.address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][4][
                0
            ]
        except OSError as error:
            raise BackendError(
                f"{where}.dns_server: cannot resolve {self.host}: {error.strerror or error}."
            ) from None

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}" if self.port != 53 else self.host

    def _send(self, message, doing: str):
        import dns.exception
        import dns.query
        import dns.tsig

        key = f"TSIG key {self.key_name}"
        try:
            return dns.query.tcp(message, self.address, port=self.port, timeout=self.timeout)
        except dns.tsig.PeerBadSignature:
            raise BackendError(
                f"DNS server {self.label} rejected the signature of {key} "
                f"(BADSIG) {doing}: tsig_secret does not match the secret the "
                "server has for that key; nothing was changed."
            ) from None
        except dns.tsig.PeerBadKey:
            raise BackendError(
                f"DNS server {self.label} does not know {key} (BADKEY) {doing}: "
                "check tsig_key_name and tsig_algorithm against the server's "
                "key statement; nothing was changed."
            ) from None
        except dns.tsig.PeerBadTime:
            raise BackendError(
                f"DNS server {self.label} rejected the time of {key} (BADTIME) "
                f"{doing}: this machine's clock and the server's differ by more "
                "than the allowed fudge; fix the clock (NTP); nothing was "
                "changed."
            ) from None
        except dns.tsig.PeerError as error:
            raise BackendError(
                f"DNS server {self.label} rejected {key} ({error}) {doing}; nothing was changed."
            ) from None
        except dns.exception.Timeout:
            raise BackendError(
                f"DNS server {self.label} did not answer within {self.timeout} s "
                f"{doing}: check dns_server and dns_port."
            ) from None
        except OSError as error:
            raise BackendError(
                f"cannot reach DNS server {self.label} {doing}: "
                f"{error.strerror or error}: check dns_server and dns_port."
            ) from None
        except dns.exception.DNSException as error:
            raise BackendError(
                f"DNS server {self.label} sent an unusable answer {doing}: {error}."
            ) from None

    def _message(self, kind, *args):
        message = kind(*args)
        if self.keyring is not None:
            message.use_tsig(self.keyring, keyname=self.key_name, algorithm=self.algorithm)
        return message

    def zone_of(self, name: str) -> str:
        """The zone holding ``name``: the closest enclosing SOA the server itself serves."""
        import dns.message
        import dns.name
        import dns.rcode
        import dns.rdatatype

        candidate = dns.name.from_text(name)
        while True:
            query = self._message(dns.message.make_query, candidate, dns.rdatatype.SOA)
            reply = self._send(query, f"while looking for the zone of {shown(name)}")
            if reply.rcode() == dns.rcode.NOERROR and any(
                r.rdtype == dns.rdatatype.SOA and r.name == candidate for r in reply.answer
            ):
                return candidate.to_text()
            if candidate == dns.name.root or len(candidate.labels) <= 2:
                raise ConfigError(
                    f"{self.where}.dns_zone: DNS server {self.label} serves no "
                    f"zone containing {shown(name)}: set dns_zone, or check dns_server."
                )
            candidate = candidate.parent()

    def check(self, zone: str) -> str:
        """A signed SOA query: proves the server answers and accepts the key, changes nothing."""
        import dns.message
        import dns.rcode
        import dns.rdatatype

        query = self._message(dns.message.make_query, zone, dns.rdatatype.SOA)
        reply = self._send(query, f"to an SOA query for {shown(zone)}")
        if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
            raise BackendError(
                f"DNS server {self.label} answered {_rcode_text(reply.rcode())} "
                f"for the SOA of {shown(zone)}: check dns_zone."
            )
        return f"{self.label} serves {shown(zone)}" + (
            f", accepts TSIG key {self.key_name}" if self.key_name else ""
        )

    def current(self, zone: str, name: str, rtype: str) -> list[str]:
        """The addresses ``name`` has now, as the zone's primary answers them (signed query)."""
        import dns.message
        import dns.name
        import dns.rcode
        import dns.rdatatype

        wanted, owner = dns.rdatatype.from_text(rtype), dns.name.from_text(name)
        query = self._message(dns.message.make_query, owner, wanted)
        doing = f"to a query for the {rtype} record of {shown(name)}"
        reply = self._send(query, doing)
        if reply.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise BackendError(
                f"DNS server {self.label} answered {_rcode_text(reply.rcode())} {doing} "
                f"(dns_check_old): check dns_server and dns_zone; nothing was changed in zone "
                f"{shown(zone)}."
            )
        return [
            r.to_text()
            for rrset in reply.answer
            if rrset.rdtype == wanted and rrset.name == owner
            for r in rrset
        ]

    def replace(
        self,
        zone: str,
        records: dict[str, dict[str, list[str]]],
        ttl: int,
        check_old: dict[str, dict[str, list[str]]] | None = None,
        *,
        rerun: str,
    ) -> set[tuple[str, str]]:
        """Replace the ``{name: {"A": [...], "AAAA": [...]}}`` rrsets of ``zone`` in one message.

        With ``check_old`` (checkold.py) each rrset is read first: one that holds only the
        server's old or new addresses is replaced, one that already holds the new ones is left
        alone (a rerun), and one holding anything else refuses the whole update before anything
        is sent.
        The update itself carries value-dependent prerequisites (RFC 2136) for what was read, so
        a change made in between makes the server refuse it (NXRRSET). Returns the
        ``(name, type)`` pairs that already held the new addresses. ``rerun`` is the command
        that runs the fix-up again, for the messages whose fix ends with it.
        """
        import dns.rcode
        import dns.rdata
        import dns.rdataclass
        import dns.rdataset
        import dns.rdatatype
        import dns.update

        from . import checkold

        already: set[tuple[str, str]] = set()
        expect: dict[tuple[str, str], list[str]] = {}
        refused = []
        for name, by_type in (check_old or {}).items():
            for rtype, old in by_type.items():
                new = records.get(name, {}).get(rtype)
                if new is None:
                    continue
                now = self.current(zone, name, rtype)
                verdict = checkold.state(now, old, new)
                if verdict == checkold.CHANGED:
                    refused.append(
                        checkold.describe(f"the {rtype} record of {shown(name)}", now, old, new)
                    )
                    continue
                if verdict == checkold.ALREADY:
                    already.add((name, rtype))
                expect[(name, rtype)] = new if verdict == checkold.ALREADY else now  # as read
        names = ", ".join(shown(n) for n in sorted(records))
        where_zone = f"zone {shown(zone)}"
        if refused:
            raise BackendError(
                f"DNS server {self.label}: {'; '.join(refused)}: "
                f"{checkold.refusal_fix(self.where, len(refused), rerun)}; nothing was changed in "
                f"{where_zone}."
            )
        changes = [
            (name, rtype, addresses)
            for name, by_type in records.items()
            for rtype, addresses in by_type.items()
            if (name, rtype) not in already
        ]
        if not changes:
            return already
        update = self._message(dns.update.UpdateMessage, zone)
        for (name, rtype), addresses in expect.items():
            if not addresses:  # read as absent: it must still be
                update.absent(name, rtype)
                continue
            rdataset = dns.rdataset.from_text_list(dns.rdataclass.IN, rtype, 0, addresses)
            update.present(name, rdataset)
        for name, rtype, addresses in changes:
            update.replace(name, ttl, rtype, *addresses)
        reply = self._send(update, f"while updating {names} in {where_zone}")
        code = reply.rcode()
        if code == dns.rcode.NOERROR:
            return already
        problem = {
            dns.rcode.REFUSED: f"refused the update: its update-policy (or allow-update) does "
            f"not let {self._who()} change {names} in {where_zone}",
            dns.rcode.NOTAUTH: f"is not authoritative for {where_zone} (or did not accept "
            f"{self._who()}): send updates to the zone's primary",
            dns.rcode.NOTZONE: f"says {names} is not in {where_zone}: check dns_zone",
            dns.rcode.NXRRSET: f"found that the records of {names} no longer hold what "
            "cfbackup had just read from it (dns_check_old): someone changed them meanwhile; "
            f"check them, then run {rerun}",
            dns.rcode.YXRRSET: "found an rrset the update did not expect",
            dns.rcode.NXDOMAIN: f"found that {names} does not exist (prerequisite failed)",
            dns.rcode.SERVFAIL: "could not apply the update: see its log (can it write the "
            "zone's journal?)",
        }.get(code, "could not apply the update")
        raise BackendError(
            f"DNS server {self.label} answered {_rcode_text(code)}: it "
            f"{problem}; nothing was changed in {where_zone}."
        )

    def _who(self) -> str:
        return f"TSIG key {self.key_name}" if self.key_name else "unsigned updates"


def by_family(addresses: Iterable[str]) -> dict[str, list[str]]:
    """``{"A": [...], "AAAA": [...]}`` (only families that have addresses)."""
    import ipaddress

    result: dict[str, list[str]] = {}
    for text in addresses:
        address = ipaddress.ip_address(text)
        result.setdefault("A" if address.version == 4 else "AAAA", []).append(str(address))
    return result
