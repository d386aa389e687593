"""Which TCP addresses a group of processes listens on, read from ``/proc`` (Linux)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def _group_members(pgids: dict[str, int]) -> dict[int, str]:
    """Map each pid to its name, for every process whose process group is one of ``pgids``'."""
    by_group = {pgid: name for name, pgid in pgids.items()}
    members: dict[int, str] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pgrp = int(fields[2])
        if pgrp in by_group:
            members[int(entry.name)] = by_group[pgrp]
    return members


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in (PROC / str(pid) / "fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _decode(address: str, family: int) -> tuple[str, int]:
    host_hex, port_hex = address.split(":")
    raw = bytes.fromhex(host_hex)
    if family == socket.AF_INET:
        host = socket.inet_ntop(family, struct.pack("<I", struct.unpack(">I", raw)[0]))
    else:
        words = struct.unpack(">4I", raw)
        host = socket.inet_ntop(family, struct.pack("<4I", *words))
    return host, int(port_hex, 16)


def _listeners() -> dict[str, tuple[str, int]]:
    """Map inode to (host, port) for every listening TCP socket on the machine."""
    found: dict[str, tuple[str, int]] = {}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError):
            for line in (PROC / "net" / table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == LISTEN:
                    found[cols[9]] = _decode(cols[1], family)
    return found


def listening_addresses(pgids: dict[str, int]) -> dict[str, set[tuple[str, int]]]:
    """For each named process group: the (host, port) pairs its processes listen on."""
    listeners = _listeners()
    result: dict[str, set[tuple[str, int]]] = {name: set() for name in pgids}
    for pid, name in _group_members(pgids).items():
        for inode in _socket_inodes(pid):
            if inode in listeners:
                result[name].add(listeners[inode])
    return result
