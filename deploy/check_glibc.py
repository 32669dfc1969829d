#!/usr/bin/env python3
"""Fail if an ELF executable needs a glibc symbol version newer than the Lambda runtime has.

Usage: check_glibc.py BINARY [MAX_VERSION]   (MAX_VERSION defaults to 2.34: Amazon Linux 2023)

Reads the version-needs table (.gnu.version_r, SHT_GNU_verneed) of the binary directly, so it
needs nothing but python3 (no binutils). Prints the architecture, the libraries the binary links
and the highest GLIBC_ version it requires; exits 1 if that is newer than MAX_VERSION, 2 if the
file cannot be read as a 64-bit little-endian ELF.
"""

import struct
import sys

SHT_GNU_VERNEED = 0x6FFFFFFE
MACHINES = {62: "x86_64", 183: "aarch64"}


def version_key(name):
    """'GLIBC_2.34' -> (2, 34); None for GLIBC_PRIVATE and other non-numeric versions."""
    try:
        return tuple(int(part) for part in name.split("_", 1)[1].split("."))
    except (IndexError, ValueError):
        return None


def needed_versions(data):
    """{library: {version names}} from the ELF's version-needs section."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    machine = struct.unpack_from("<H", data, 18)[0]
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, ...
        sh = struct.unpack_from("<IIQQQQII", data, shoff + i * shentsize)
        sections.append({"type": sh[1], "offset": sh[4], "size": sh[5], "link": sh[6], "info": sh[7]})
    verneed = [s for s in sections if s["type"] == SHT_GNU_VERNEED]
    if not verneed:
        raise ValueError("no .gnu.version_r section: statically linked or not an executable")
    section = verneed[0]
    strtab = sections[section["link"]]

    def string(offset):
        start = strtab["offset"] + offset
        return data[start : data.index(b"\0", start)].decode()

    result = {}
    entry = section["offset"]
    for _ in range(section["info"]):
        _version, count, file_name, aux, next_entry = struct.unpack_from("<HHIII", data, entry)
        names = result.setdefault(string(file_name), set())
        aux_offset = entry + aux
        for _ in range(count):
            _hash, _flags, _other, name, next_aux = struct.unpack_from("<IHHII", data, aux_offset)
            names.add(string(name))
            aux_offset += next_aux
        if not next_entry:
            break
        entry += next_entry
    return MACHINES.get(machine, f"machine {machine}"), result


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = sys.argv[1]
    limit_text = sys.argv[2] if len(sys.argv) == 3 else "2.34"
    limit = tuple(int(part) for part in limit_text.split("."))
    try:
        with open(path, "rb") as handle:
            arch, needs = needed_versions(handle.read())
    except (OSError, ValueError, struct.error) as error:
        print(f"check-glibc: {path}: {error}", file=sys.stderr)
        return 2
    glibc = sorted(
        (v for names in needs.values() for v in names if v.startswith("GLIBC_") and version_key(v)),
        key=version_key,
    )
    print(f"check-glibc: {path}: {arch}, links {', '.join(sorted(needs))}")
    if not glibc:
        print("check-glibc: no GLIBC_ symbol versions required")
        return 0
    highest = glibc[-1]
    too_new = sorted({v for v in glibc if version_key(v) > limit}, key=version_key)
    print(f"check-glibc: max GLIBC version required: {highest.split('_', 1)[1]} (limit {limit_text})")
    if too_new:
        print(
            f"check-glibc: FAIL: needs {', '.join(too_new)}, newer than glibc {limit_text} "
            "(Amazon Linux 2023 / provided.al2023); build with "
            "`cargo lambda build --release --target x86_64-unknown-linux-gnu.2.34`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
