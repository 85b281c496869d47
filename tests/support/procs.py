"""Finding processes by what they were started with, to prove none was left behind."""

from __future__ import annotations

import os
from pathlib import Path


def pids_mentioning(text: str) -> list[int]:
    """Running processes (but this one) whose command line or environment contains
    `text`: a cluster's directory, a demo's state directory (model servers find
    their artifact there through MODEL_URI)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in command or text.encode() in environment:
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "<gone>"


def listening_addresses(pids: list[int]) -> dict[str, list[str]]:
    """Command line -> the TCP addresses (host:port) each of `pids` listens on, in
    whichever network namespace the process is."""
    found: dict[str, list[str]] = {}
    for pid in pids:
        listening: dict[str, str] = {}  # socket inode -> address, in pid's namespace
        try:
            for table in ("tcp", "tcp6"):
                for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        listening[fields[9]] = _address(fields[1])
            links = [str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes = [link[len("socket:[") : -1] for link in links if link.startswith("socket:[")]
        addresses = sorted(listening[i] for i in inodes if i in listening)
        if addresses:
            found[command_line(pid)] = addresses
    return found


def _address(hex_address: str) -> str:
    """/proc/net/tcp's little-endian hex `0100007F:1F90` as `127.0.0.1:8080`."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        text = ".".join(str(b) for b in reversed(raw))
    else:  # IPv6: four little-endian 32-bit words
        words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
        groups = b"".join(words)
        text = ":".join(groups[i : i + 2].hex() for i in range(0, 16, 2))
        text = "::1" if text == "0000:0000:0000:0000:0000:0000:0000:0001" else text
    return f"{text}:{int(port, 16)}"


def network_namespace(pid: int) -> str:
    """The process's network namespace, as `net:[inode]`."""
    try:
        return str(Path(f"/proc/{pid}/ns/net").readlink())
    except OSError:
        return "<gone>"
