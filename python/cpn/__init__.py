# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""cpn from Python: requests to a cpn service (Client), over libcpn.so.0.

    import cpn
    with cpn.Client("10.0.0.100:7470", service=1, tenant=42) as c:
        reply = c.call(b"payload", timeout=0.5)
"""
from .client import (Client, Completion, Error, Busy, Timeout, RemoteError, TooLarge,
                     ProtocolError, SealError)
from .worker import Worker, ST_OK, ST_BAD_REQUEST, ST_KERNEL_ERROR, ST_UNSUPPORTED  # noqa: E402,F401

__all__ = ["Client", "Completion", "Error", "Busy", "Timeout", "RemoteError", "TooLarge",
           "ProtocolError", "SealError"]
