#!/usr/bin/env python3
"""Write a Lambda deployment zip: zip.py OUT.zip bootstrap [extra files...]

Needs only python3 (no `zip`). The archive is reproducible: fixed timestamps and modes, so the
same binary gives the same CodeSha256. `bootstrap` goes in at the root with mode 0755 (Lambda's
provided.al2023 runtime executes /var/task/bootstrap); every other file keeps its base name with
mode 0644 (so collector.yaml ends up at /var/task/collector.yaml).
"""

import os
import sys
import zipfile

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def add(archive, path, name, mode):
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.external_attr = (0o100000 | mode) << 16  # regular file + permissions
    info.create_system = 3  # unix, so the permissions are honoured
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as handle:
        archive.writestr(info, handle.read(), compresslevel=9)


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out, binary, extras = sys.argv[1], sys.argv[2], sys.argv[3:]
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w") as archive:
        add(archive, binary, "bootstrap", 0o755)
        for extra in extras:
            add(archive, extra, os.path.basename(extra), 0o644)
    os.replace(tmp, out)
    with zipfile.ZipFile(out) as archive:
        for info in archive.infolist():
            print(f"  {info.filename:<16} {info.file_size:>10} bytes -> {info.compress_size:>9} compressed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
