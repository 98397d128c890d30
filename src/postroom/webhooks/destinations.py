"""Where webhooks may go: public internet addresses only, unless the operator allows private
ones (POSTROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES). Without this, any tenant could make the
worker POST to the cloud metadata service, the database, or anything else on the private
network behind Postroom (server-side request forgery).

A URL is checked when it is registered (an address literal or a local name is refused at
once) and again at every delivery: the host name is resolved, every address it resolves to
must be public, and the request is sent to the address that was checked (with the name in
the Host header and TLS SNI), so the name cannot be re-pointed between check and connect."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Names that always mean this machine or its private network, whatever DNS says.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


class PrivateDestination(Exception):
    """The URL leads to a loopback, private, link-local or otherwise non-public address."""


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def registration_problem(host: str) -> str | None:
    """Why a webhook host is refused when it is registered (None: it may be, and its
    addresses are checked again at each delivery)."""
    name = host.lower().rstrip(".")
    address = literal_address(name)
    if address is not None:
        return None if is_public(address) else f"points at a non-public address ({address})"
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES) or "." not in name:
        return f"names a local host ({host})"
    return None


@dataclass(frozen=True, slots=True)
class PinnedRequest:
    """A request sent to a checked address, while the server still sees the URL's name."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


async def pinned_request(url: str) -> PinnedRequest:
    """Resolve the URL's host and refuse it unless every address is public; otherwise the
    same URL with the first address in place of the name. Raises PrivateDestination, or
    OSError when the name does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    problem = registration_problem(host)
    if problem is not None:
        raise PrivateDestination(f"the webhook URL {problem}")
    if literal_address(host) is not None:
        return PinnedRequest(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    if not addresses:
        raise OSError(f"{host} has no address")
    private = [a for a in addresses if not is_public(a)]
    if private:
        raise PrivateDestination(f"{host} resolves to a non-public address ({private[0]})")
    return pin(url, addresses[0])


def pin(url: str, address: Address) -> PinnedRequest:
    """The request for ``url`` sent to ``address``: the name goes in Host and TLS SNI (and
    the certificate is checked against it)."""
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    extensions = {"sni_hostname": parts.hostname or ""} if parts.scheme == "https" else {}
    return PinnedRequest(parts._replace(netloc=netloc).geturl(), {"Host": parts.netloc}, extensions)
