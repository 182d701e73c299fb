"""The session key of an object gpg encrypted with a passphrase, derived here, so that the gpg
that decrypts it does not derive it again (``gpg --override-session-key-fd``).

gpg encrypting with a passphrase (duplicity's symmetric mode) derives each object's key from the
passphrase with OpenPGP's iterated and salted S2K (RFC 4880 3.7.1.3): 65 MB hashed with a salt
of the object's own, the count gpg-agent calibrated. gpg 2.2 (libgcrypt) takes 0.16-0.2 s of CPU
for it, a volume's decryption 0.05 s more (AES-NI); hashlib (OpenSSL) hashes the same 65 MB in
0.03 s. A restore, a ``verify --read-data`` and the passphrase check before a backup derive one
key per object they open, so deriving here takes most of gpg's CPU off every one of them
(docs/performance.md, eighth stop). Nothing about the objects changes: gpg wrote them, gpg
decrypts them, plain duplicity restores them with the passphrase; the key is the one gpg would
derive, and it is as secret as the passphrase: it reaches gpg on a pipe, never its command line.

Only the form gpg writes by default with a passphrase: one symmetric-key packet (version 4, no
encrypted session key: the derived key is the session key), S2K simple, salted or iterated,
AES, a SHA-1/SHA-2 hash, then an integrity-protected data packet (version 1). Anything else
(public keys, several passphrases, AEAD, another cipher, a damaged head) gets ``None`` and gpg
derives as before. The key is checked before it is used: the first block of the data decrypts
to OpenPGP's check bytes (a random block whose last two bytes repeat) only with the right key,
and then to a packet header; a wrong passphrase fails that check, and gpg itself then derives,
fails and says why, exactly as without this module. ``CFBACKUP_NO_SESSION_KEYS=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
from typing import IO, NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

OFF = "CFBACKUP_NO_SESSION_KEYS"
HEAD = 64  # bytes of an object enough to find its key: the packet, then the data's first block

_CIPHERS = {7: 16, 8: 24, 9: 32}  # OpenPGP cipher id: AES-128/192/256, key length
_HASHES = {2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
_SKESK, _SEIPD = 3, 18  # packet tags: symmetric-key encrypted session key, integrity-protected
_BLOCK = 16  # AES's block: the length of the random prefix the data starts with
_CHUNK = 1 << 20  # the salted passphrase repeated to about this length, hashed per update


class Head(NamedTuple):
    """What an object's first bytes say about its key: cipher, S2K hash, salt, count, and the
    data's first encrypted bytes (to check a key against)."""

    cipher: int
    hash_name: str
    salt: bytes
    count: int
    first: bytes


def enabled() -> bool:
    return not os.environ.get(OFF)


def session_key(head: bytes, passphrase: bytes) -> str | None:
    """The object's session key as gpg spells it (``9:HEX``), or None: not the form this module
    reads, ``passphrase`` is not the one it was encrypted with, or any doubt (an error here is
    never the object's: gpg then derives the key as it always did)."""
    try:
        parsed = read_head(head)
        if parsed is None:
            return None
        key = derive(passphrase, parsed)
        if not opens(key, parsed.first):
            return None
    except Exception:  # noqa: BLE001 - see above
        return None
    return f"{parsed.cipher}:{key.hex().upper()}"


def secret_pipe(secret: str) -> int:
    """The read end of a new pipe holding ``secret`` and a newline, in UTF-8 (as duplicity
    writes a passphrase): how a passphrase or a key reaches gpg (``--passphrase-fd``,
    ``--override-session-key-fd``), never its command line. The caller closes it."""
    readable, writable = os.pipe()
    with open(writable, "wb") as pipe:  # a few bytes: the pipe holds them
        pipe.write(f"{secret}\n".encode())
    return readable


def derive(passphrase: bytes, head: Head) -> bytes:
    """OpenPGP's S2K: the salt and passphrase repeated to ``count`` bytes (at least once), hashed
    in as many contexts as the key needs, the i-th preceded by i zero bytes."""
    unit = head.salt + passphrase
    total = max(head.count, len(unit))
    chunk = unit * max(1, _CHUNK // max(1, len(unit)))  # whole units: each chunk starts aligned
    full, rest = divmod(total, len(chunk)) if chunk else (0, 0)
    wanted = _CIPHERS[head.cipher]
    key = b""
    preload = 0
    while len(key) < wanted:
        digest = hashlib.new(head.hash_name)
        digest.update(b"\0" * preload)
        for _ in range(full):
            digest.update(chunk)
        digest.update(chunk[:rest])
        key += digest.digest()
        preload += 1
    return key[:wanted]


def opens(key: bytes, first: bytes) -> bool:
    """Whether ``key`` decrypts the data's first bytes to OpenPGP's quick check (the random
    block's last two bytes, repeated) followed by the start of a packet. OpenPGP's CFB with a
    zero IV, for two blocks: each clear block is the cipher block XOR the encryption of the
    one before (of zeros for the first)."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = encryptor.update(b"\0" * _BLOCK + first[:_BLOCK]) + encryptor.finalize()
    clear = bytes(a ^ b for a, b in zip(first, stream, strict=False))
    return clear[_BLOCK - 2 : _BLOCK] == clear[_BLOCK : _BLOCK + 2] and bool(clear[-1] & 0x80)


def memory_file(name: str) -> IO[bytes]:
    """A binary file in memory (a Linux memfd), for what must never reach a disk: gpg's stderr
    once it is given a key (gpg 2.2 prints it: ``gpg: DBG: seskey: ...``), a clear manifest."""
    return open(os.memfd_create(name), "w+b")  # noqa: SIM115 - the caller closes it


def read_head(data: bytes) -> Head | None:
    """The key's parameters from an object's first bytes (at least :data:`HEAD` of them, or
    all of a smaller object), or None when they are not the form this module reads."""
    first = _packet(data, 0)
    if first is None or first[0] != _SKESK:
        return None
    _tag, body, end = first
    if len(body) < 4 or body[0] != 4 or body[1] not in _CIPHERS or body[3] not in _HASHES:
        return None
    specifier, s2k = body[2], body[3:]
    if specifier == 0 and len(s2k) == 1:  # simple: the passphrase alone
        salt, count = b"", 0
    elif specifier == 1 and len(s2k) == 9:  # salted
        salt, count = s2k[1:9], 0
    elif specifier == 3 and len(s2k) == 10:  # iterated and salted
        salt, coded = s2k[1:9], s2k[9]
        count = (16 + (coded & 15)) << ((coded >> 4) + 6)
    else:  # another S2K, or an encrypted session key after it: gpg's own way
        return None
    data_packet = _packet(data, end, partial=True)
    if data_packet is None or data_packet[0] != _SEIPD:
        return None
    content = data_packet[1]
    if len(content) < 1 + _BLOCK + 3 or content[0] != 1:
        return None
    return Head(body[1], _HASHES[body[3]], salt, count, content[1 : 1 + _BLOCK + 3])


def _packet(data: bytes, at: int, *, partial: bool = False) -> tuple[int, bytes, int] | None:
    """The packet at offset ``at``: its tag, its body (as much of it as ``data`` holds), the
    offset after it. A partial body length (gpg's streamed data) is read as its first part
    when ``partial``."""
    if at >= len(data) or not data[at] & 0x80:
        return None
    ctb = data[at]
    if ctb & 0x40:  # new format
        tag = ctb & 0x3F
        if at + 1 >= len(data):
            return None
        first = data[at + 1]
        if first < 192:
            length, start = first, at + 2
        elif first < 224:
            if at + 2 >= len(data):
                return None
            length, start = ((first - 192) << 8) + data[at + 2] + 192, at + 3
        elif first == 255:
            if at + 5 >= len(data):
                return None
            length, start = int.from_bytes(data[at + 2 : at + 6], "big"), at + 6
        elif partial:
            length, start = 1 << (first & 0x1F), at + 2
        else:
            return None
    else:  # old format
        tag, kind = (ctb >> 2) & 0x0F, ctb & 0x03
        if kind == 3:  # indeterminate: to the end
            if not partial:
                return None
            length, start = len(data) - at - 1, at + 1
        else:
            size = 1 << kind
            start = at + 1 + size
            if start > len(data):
                return None
            length = int.from_bytes(data[at + 1 : start], "big")
    return tag, data[start : start + length], start + length
