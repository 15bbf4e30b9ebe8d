#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mkinitramfs.py INIT OUT: a newc cpio with /dev/console and INIT as /init
(the `linux` suite's initramfs; no cpio(1) needed)."""
import sys


def main():
    init, out = sys.argv[1], sys.argv[2]
    data = b''
    ino = [1]

    def entry(name, mode, body=b'', rdev=(0, 0)):
        nonlocal data
        nm = name.encode() + b'\0'
        fields = [ino[0], mode, 0, 0, 1, 0, len(body), 0, 0, rdev[0], rdev[1], len(nm), 0]
        ino[0] += 1
        data += b'070701' + b''.join(b'%08x' % f for f in fields) + nm
        data += b'\0' * (-len(data) % 4) + body
        data += b'\0' * (-len(data) % 4)

    entry('dev', 0o040755)
    entry('dev/console', 0o020600, rdev=(5, 1))
    entry('proc', 0o040755)
    with open(init, 'rb') as f:
        entry('init', 0o100755, f.read())
    entry('TRAILER!!!', 0)
    with open(out, 'wb') as f:
        f.write(data)


if __name__ == '__main__':
    main()
