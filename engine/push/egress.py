"""Where the webhook worker may post: an http(s) URL with a host and a port in 1-65535 whose
addresses are all public, unless the operator allows private ones
(`TUBETRACE_WEBHOOK_ALLOW_PRIVATE=1`: a district system on the same private network, tests).
The check runs when a subscription is added and again before each attempt, which then connects
to the address it checked (a name that later resolves to 127.0.0.1 reaches nobody). A URL's
userinfo (`https://user:pass@host/`) is masked wherever the URL is shown."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import httpx

from engine.errors import InputError

MASK = "***"


class Refused(InputError):
    """The URL may not be posted to (it resolves to a private address, or not at all)."""


def _split(url: str) -> SplitResult:
    if not url or any(not ch.isprintable() or ch.isspace() for ch in url):
        raise InputError("the URL is empty or holds spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, or past 65535
        raise InputError(f"'{masked(url)}' has a bad port: {exc}; use 1-65535") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"'{masked(url)}' is not an http(s) URL with a host")
    if port is not None and not 1 <= port <= 65535:
        raise InputError(f"'{masked(url)}' has port {port}; use 1-65535")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InputError(f"'{masked(url)}' is not a valid URL: {exc}") from None
    return parts


def masked(url: str) -> str:
    """The URL with any userinfo replaced by `***` (`https://***@host/path`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{MASK}@{host}").geturl()


def is_public(address: str) -> bool:
    """A globally routable address: not loopback, link-local, private, shared (CGNAT),
    multicast, reserved or unspecified (an IPv4-mapped IPv6 address is judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not ip.is_multicast


def _addresses(infos: list[tuple[object, ...]]) -> list[str]:
    out: list[str] = []
    for info in infos:
        address = str(info[4][0])  # type: ignore[index]
        if address not in out:
            out.append(address)
    return out


def _default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _judge(url: str, host: str, addresses: list[str]) -> str:
    """The first address when every one is public; else Refused."""
    if not addresses:
        raise Refused(f"'{masked(url)}': {host} resolves to no address")
    private = [a for a in addresses if not is_public(a)]
    if private:
        raise Refused(
            f"'{masked(url)}' resolves to a loopback, link-local or private address "
            f"({private[0]}); an operator may allow those with TUBETRACE_WEBHOOK_ALLOW_PRIVATE=1"
        )
    return addresses[0]


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL when a subscription may post to it; InputError (Refused) with a sentence else."""
    parts = _split(url)
    if allow_private:
        return url
    host = httpx.URL(url).raw_host.decode("ascii")
    try:
        infos = socket.getaddrinfo(host, _default_port(parts), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"'{masked(url)}': the host {host} does not resolve ({exc})") from None
    _judge(url, host, _addresses(list(infos)))
    return url


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL (its host replaced by the checked address, unless
    private addresses are allowed), the Host header and TLS name it keeps."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


async def pinned(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host now and connect to the address checked (no second lookup that
    could answer differently). Refused when it may not be posted to."""
    parts = _split(url)
    if allow_private:
        return Target(url)
    host = httpx.URL(url).raw_host.decode("ascii")
    port = _default_port(parts)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Refused(f"the host {host} does not resolve ({exc})") from None
    address = _judge(url, host, _addresses(list(infos)))
    original = httpx.URL(url)
    return Target(
        str(original.copy_with(host=address)),
        {"host": original.netloc.decode("ascii")},
        {"sni_hostname": original.raw_host.decode("ascii")} if parts.scheme == "https" else {},
    )
