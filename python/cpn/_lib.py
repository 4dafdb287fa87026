# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Loads libcpn.so.0: $CPN_LIBRARY if set, else the dynamic linker's search
(an installed libcpn0, or LD_LIBRARY_PATH pointing at a build directory)."""
import ctypes
import ctypes.util
import os

_lib = None


def lib():
    """The shared library, loaded once."""
    global _lib
    if _lib is None:
        path = os.environ.get("CPN_LIBRARY") or "libcpn.so.0"
        try:
            _lib = ctypes.CDLL(path, use_errno=True)
        except OSError as e:
            raise ImportError(
                "cpn: cannot load %s (%s); install libcpn0, or set CPN_LIBRARY "
                "to the path of libcpn.so.0" % (path, e)) from e
    return _lib
