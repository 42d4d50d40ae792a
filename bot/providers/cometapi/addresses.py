"""Where a download may go: origins, the address rules, and a resolver that applies them.

A download may connect only to public addresses. Refused: loopback, private (RFC 1918, unique
local), link-local, multicast, unspecified, reserved and shared (100.64/10) addresses, IPv4
addresses hidden inside IPv6 ones (mapped, 6to4, Teredo, NAT64), and the cloud metadata
endpoints (:data:`METADATA_ADDRESSES`). The one exception, the configured CometAPI origin, is
made by :class:`~bot.providers.cometapi.download.Downloader`, which sends requests for that
origin through a connector of its own.

Names are checked where they are resolved: :class:`PublicResolver` is the resolver of the
connector every other download uses, so aiohttp connects only to addresses this module has
already accepted (no second lookup between the check and the connection). aiohttp never
resolves an IP literal, so the downloader checks literals itself (:func:`literal_address`).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from bot.providers.cometapi.errors import DownloadRefusedError

__all__ = [
    "METADATA_ADDRESSES",
    "IPAddress",
    "Origin",
    "PublicResolver",
    "forbidden_reason",
    "literal_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
        "169.254.170.2",  # AWS ECS task credentials
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
    )
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class Origin:
    """A URL's scheme, host and port (the default port filled in), compared exactly."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def of(cls, url: URL) -> Origin:
        return cls(url.scheme.lower(), (url.raw_host or "").lower(), url.port)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def forbidden_reason(address: IPAddress) -> str | None:
    """Why a download may not connect to ``address``; None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and (reason := forbidden_reason(embedded)):
            return reason
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if address.is_private or address.is_reserved or site_local or not address.is_global:
        return "a private or reserved address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` names literally (None for a name to resolve).

    Raises :class:`DownloadRefusedError` for a host aiohttp would take as an address but
    that is not one in canonical form (``2130706433``, ``127.1``): such spellings exist to
    slip past checks like this one.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        if ":" in host or host.replace(".", "").isdigit():
            raise DownloadRefusedError(f"{host!r} is not a valid address") from None
        return None


class PublicResolver(AbstractResolver):
    """Resolves a name with ``base`` (getaddrinfo in a thread by default) and refuses it
    when *any* of its addresses is not public: a name that answers both a public and a
    private address could otherwise be connected to the private one."""

    def __init__(self, base: AbstractResolver | None = None) -> None:
        self._base = base

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._base is None:
            self._base = ThreadedResolver()  # needs the running loop: made on first use
        results = await self._base.resolve(host, port, family)
        for result in results:
            reason = forbidden_reason(ipaddress.ip_address(result["host"]))
            if reason is not None:
                raise DownloadRefusedError(f"{host} resolves to {reason}; not downloading")
        if not results:
            raise DownloadRefusedError(f"{host} resolves to no address")
        return results

    async def close(self) -> None:
        if self._base is not None:
            await self._base.close()
