"""Run a program under the seccomp filter of systemd's ``MemoryDenyWriteExecute=yes``.

``python _seccomp.py PROGRAM ARGS...`` loads the filter (with libseccomp, as systemd does) and
executes PROGRAM; the filter stays on across exec and fork. It is systemd's rule set
(``seccomp_memory_deny_write_execute()`` in src/shared/seccomp-util.c): ``mmap`` writable and
executable, ``mprotect`` and ``pkey_mprotect`` to executable, and ``shmat`` with ``SHM_EXEC`` all
fail with EPERM. Exit status 3: the filter could not be loaded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import sys

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO = 0x00050000
SCMP_CMP_MASKED_EQ = 7
SHM_EXEC = 0o100000


class ArgCmp(ctypes.Structure):
    """``struct scmp_arg_cmp``."""

    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


def load_filter() -> None:
    """Load the filter into this process (and whatever it executes or forks)."""
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    )
    lib.seccomp_load.argtypes = (ctypes.c_void_p,)
    context = lib.seccomp_init(SCMP_ACT_ALLOW)
    write_exec = mmap.PROT_WRITE | mmap.PROT_EXEC
    rules = (
        ("mmap", write_exec),
        ("mprotect", mmap.PROT_EXEC),
        ("pkey_mprotect", mmap.PROT_EXEC),
        ("shmat", SHM_EXEC),
    )
    for name, flags in rules:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        # The protection (shmat: the flags) is the third argument; denied when all flags are set.
        cmp = ArgCmp(2, SCMP_CMP_MASKED_EQ, flags, flags)
        action = SCMP_ACT_ERRNO | errno.EPERM
        if lib.seccomp_rule_add_array(context, action, number, 1, ctypes.byref(cmp)) != 0:
            sys.exit(3)
    if lib.seccomp_load(context) != 0:
        sys.exit(3)


def main() -> None:
    load_filter()
    try:
        mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        pass
    else:
        sys.exit(3)  # the filter is not working: the test would prove nothing
    os.execv(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
