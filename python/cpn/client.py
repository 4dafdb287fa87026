# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""cpn.Client: the client library of libcpn (cpn/client.h, cpn_client(3)) over ctypes."""
import ctypes
import os

from ._lib import lib

# enum cpn_err
E_INVAL, E_NOMEM, E_TIMEOUT, E_BUSY, E_REMOTE, E_TOO_LARGE, E_PROTO, E_CLOSED, E_FULL, E_SYS, \
    E_SEAL = range(-1, -12, -1)
# enum cpn_client_opt
_OPTS = {
    "timeout_ms": 1, "busy_retry": 2, "max_retries": 3, "retry_percent": 4, "retry_floor": 5,
    "backoff_us": 6, "backoff_max_us": 7, "attempt_ms": 8, "session": 9, "sticky": 10,
    "class_": 11, "max_inflight": 12, "max_message": 13, "frag_size": 14, "dgram_max": 15,
    "discard_reply": 16, "reasm_budget": 17,
}
REQ_IDEMPOTENT, REQ_STICKY, REQ_NOCOPY, REQ_NO_RETRY, REQ_CLASS = 1, 2, 4, 8, 16


class Error(Exception):
    """A cpn error: .code is the negative enum cpn_err, .remote the REPLY status or BUSY
    reason where there is one, .node the node that answered (0: none)."""

    def __init__(self, code, remote=0, node=0, message=None):
        self.code, self.remote, self.node = code, remote, node
        text = message or lib().cpn_strerror(code).decode()
        if code in (E_BUSY, E_REMOTE):
            text += " (status %d)" % remote
        super().__init__(text)


class Busy(Error):
    """BUSY: the service refused the request; .remote is the reason (1 WAIT .. 5 OVERLOAD)."""


class Timeout(Error):
    """No answer before the deadline."""


class RemoteError(Error):
    """The node answered with status .remote (1 bad request, 2 kernel error, 3 unsupported)."""


class TooLarge(Error):
    """A message over the client's limit, or the node's (REPLY status 4)."""


class ProtocolError(Error):
    """The node does not take large messages."""


class SealError(Error):
    """A reply to a sealed request that does not open (another payload key, altered on the
    way, or not sealed)."""


_CLASSES = {E_BUSY: Busy, E_TIMEOUT: Timeout, E_REMOTE: RemoteError, E_TOO_LARGE: TooLarge,
            E_PROTO: ProtocolError, E_SEAL: SealError}


def _error(code, remote=0, node=0):
    if code == E_SYS:
        e = ctypes.get_errno()
        return Error(code, message="cpn: %s" % os.strerror(e))
    return _CLASSES.get(code, Error)(code, remote, node)


class _Req(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_size_t),
                ("timeout_ms", ctypes.c_uint32), ("session_key", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("class_", ctypes.c_uint8), ("user", ctypes.c_uint64)]


class _Comp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("user", ctypes.c_uint64), ("status", ctypes.c_int),
                ("remote", ctypes.c_uint8), ("node_id", ctypes.c_uint16),
                ("retries", ctypes.c_uint32), ("latency_ns", ctypes.c_uint64),
                ("data", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_STATS = ["submitted", "completed", "replies", "remote_errors", "busy", "timeouts", "failed",
          "retries_busy", "retries_lost", "retries_denied", "tx_datagrams", "rx_datagrams",
          "tx_fragments", "rx_fragments", "tx_acks", "rx_acks", "malformed", "bad_type",
          "foreign", "unknown", "late", "duplicates", "frag_bad", "frag_dup", "send_refused",
          "send_full", "send_dropped", "unseal_failed"]


class _Stats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in _STATS]


_bound = False


def _bind():
    global _bound
    if _bound:
        return lib()
    L = lib()
    P, I, U16, U32, U64, SZ = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint16, ctypes.c_uint32,
                               ctypes.c_uint64, ctypes.c_size_t)
    sig = {
        "cpn_strerror": (ctypes.c_char_p, [I]),
        "cpn_client_open": (P, [ctypes.c_char_p, U16, U32, ctypes.POINTER(I)]),
        "cpn_client_close": (None, [P]),
        "cpn_client_set_key": (I, [P, ctypes.c_char_p]),
        "cpn_client_set_key_bytes": (I, [P, ctypes.c_char_p]),
        "cpn_client_set_payload_key": (I, [P, ctypes.c_char_p]),
        "cpn_client_set_payload_key_bytes": (I, [P, ctypes.c_char_p]),
        "cpn_client_setopt": (I, [P, I, U64]),
        "cpn_client_getopt": (I, [P, I, ctypes.POINTER(U64)]),
        "cpn_client_fd": (I, [P]),
        "cpn_client_inflight": (ctypes.c_uint, [P]),
        "cpn_client_submit": (I, [P, ctypes.POINTER(_Req), ctypes.POINTER(U64)]),
        "cpn_client_submit_many": (I, [P, ctypes.POINTER(_Req), I, ctypes.POINTER(U64)]),
        "cpn_client_poll": (I, [P, ctypes.POINTER(_Comp), I, I]),
        "cpn_client_call_req": (I, [P, ctypes.POINTER(_Req), ctypes.POINTER(_Comp)]),
        "cpn_client_stats": (I, [P, ctypes.POINTER(_Stats), SZ]),
    }
    for name, (res, args) in sig.items():
        f = getattr(L, name)
        f.restype, f.argtypes = res, args
    _bound = True
    return L


class Completion:
    """One answered (or failed) request of submit()/poll(): .id, .user, .status (0 or a
    negative code), .error (an Error or None), .reply (bytes), .node, .retries, .latency
    (seconds)."""
    __slots__ = ("id", "user", "status", "error", "reply", "node", "retries", "latency")

    def __init__(self, c):
        self.id, self.user, self.status = c.id, c.user, c.status
        self.node, self.retries, self.latency = c.node_id, c.retries, c.latency_ns / 1e9
        self.reply = ctypes.string_at(c.data, c.len) if c.data and c.len else b""
        self.error = _error(c.status, c.remote, c.node_id) if c.status else None

    def result(self):
        """The reply, or raise the request's error."""
        if self.error is not None:
            raise self.error
        return self.reply


class Client:
    """A client of one cpn service: Client("VIP:PORT" or "[v6]:PORT" or "A:P,B:P",
    service=S, tenant=T, key=None (32 hex digits or 16 bytes), payload_key=None (64 hex
    digits or 32 bytes), **options) where options are the CPN_OPT_* names in lower case
    (timeout_ms, busy_retry, max_retries, session, sticky, max_message, ...). With key,
    requests are signed and fresh; with payload_key, payloads are sealed end to end and
    replies opened (SealError for one that does not open). One thread at a time."""

    def __init__(self, to, service, tenant, key=None, payload_key=None, **options):
        L = _bind()
        err = ctypes.c_int(0)
        self._cl = L.cpn_client_open(to.encode(), service, tenant, ctypes.byref(err))
        if not self._cl:
            raise _error(err.value)
        self._keep = {}  # request id -> payload buffer, while in flight
        self._comp = (_Comp * 256)()
        try:
            if key is not None:
                if isinstance(key, (bytes, bytearray)):
                    if len(key) != 16:
                        raise Error(E_INVAL, message="cpn: a key is 16 bytes")
                    rc = L.cpn_client_set_key_bytes(self._cl, bytes(key))
                else:
                    rc = L.cpn_client_set_key(self._cl, key.encode())
                if rc:
                    raise Error(rc, message="cpn: the key is not 32 hex digits")
            if payload_key is not None:
                if isinstance(payload_key, (bytes, bytearray)):
                    if len(payload_key) != 32:
                        raise Error(E_INVAL, message="cpn: a payload key is 32 bytes")
                    rc = L.cpn_client_set_payload_key_bytes(self._cl, bytes(payload_key))
                else:
                    rc = L.cpn_client_set_payload_key(self._cl, payload_key.encode())
                if rc:
                    raise Error(rc, message="cpn: the payload key is not 64 hex digits")
            for name, value in options.items():
                self.setopt(name, value)
        except Exception:
            self.close()
            raise

    def setopt(self, name, value):
        if name not in _OPTS:
            raise Error(E_INVAL, message="cpn: no option %r" % name)
        rc = lib().cpn_client_setopt(self._handle(), _OPTS[name], int(value))
        if rc:
            raise Error(rc, message="cpn: option %s: bad value %r" % (name, value))

    def getopt(self, name):
        v = ctypes.c_uint64()
        rc = lib().cpn_client_getopt(self._handle(), _OPTS[name], ctypes.byref(v))
        if rc:
            raise _error(rc)
        return v.value

    def _handle(self):
        if not self._cl:
            raise Error(E_CLOSED, message="cpn: the client is closed")
        return self._cl

    @staticmethod
    def _req(payload, timeout, session, idempotent, sticky, user=0):
        buf = ctypes.create_string_buffer(bytes(payload), len(payload)) if payload else None
        flags = REQ_NOCOPY | (REQ_IDEMPOTENT if idempotent else 0) | (REQ_STICKY if sticky else 0)
        r = _Req(ctypes.cast(buf, ctypes.c_void_p) if buf else None, len(payload),
                 int(timeout * 1000) if timeout else 0, session or 0, flags, 0, user)
        return r, buf

    def call(self, payload, timeout=None, session=None, idempotent=False, sticky=False):
        """Send one request, wait for the reply (bytes); raises Busy, Timeout, RemoteError,
        TooLarge, ProtocolError or Error. timeout in seconds (None: the client's)."""
        r, buf = self._req(payload, timeout, session, idempotent, sticky)
        c = _Comp()
        rc = lib().cpn_client_call_req(self._handle(), ctypes.byref(r), ctypes.byref(c))
        del buf
        if rc == E_INVAL and self.inflight():
            raise Error(rc, message="cpn: call() with requests in flight: poll() them first")
        if rc:
            raise _error(rc, c.remote, c.node_id)
        return ctypes.string_at(c.data, c.len) if c.len else b""

    def submit(self, payload, timeout=None, session=None, idempotent=False, sticky=False,
               user=0):
        """Submit one request; returns its id. poll() returns its Completion."""
        r, buf = self._req(payload, timeout, session, idempotent, sticky, user)
        rid = ctypes.c_uint64()
        rc = lib().cpn_client_submit(self._handle(), ctypes.byref(r), ctypes.byref(rid))
        if rc:
            raise _error(rc)
        self._keep[rid.value] = buf
        return rid.value

    def poll(self, timeout=0.0, max=256):
        """Completions (a list, maybe empty), waiting up to timeout seconds (None: until
        one completes or nothing is in flight)."""
        max = min(max, len(self._comp))
        ms = -1 if timeout is None else int(timeout * 1000)
        n = lib().cpn_client_poll(self._handle(), self._comp, max, ms)
        if n < 0:
            raise _error(n)
        out = []
        for i in range(n):
            c = Completion(self._comp[i])
            self._keep.pop(c.id, None)
            out.append(c)
        return out

    def call_many(self, payloads, timeout=None, idempotent=False, window=1024):
        """Send every payload, at most `window` in flight; returns their Completions in
        the payloads' order (each .result() is the reply or raises)."""
        payloads = list(payloads)
        out = [None] * len(payloads)
        nxt = done = 0
        while done < len(payloads):
            room = min(window - self.inflight(), len(payloads) - nxt)
            if room > 0:
                reqs = (_Req * room)()
                bufs = []
                for k in range(room):
                    r, b = self._req(payloads[nxt + k], timeout, None, idempotent, False, nxt + k)
                    reqs[k] = r
                    bufs.append(b)
                ids = (ctypes.c_uint64 * room)()
                n = lib().cpn_client_submit_many(self._handle(), reqs, room, ids)
                if n < 0 and n != E_FULL:
                    raise _error(n)
                for k in range(max(n, 0)):
                    self._keep[ids[k]] = bufs[k]
                nxt += max(n, 0)
            for c in self.poll(timeout=None):
                out[c.user] = c
                done += 1
        return out

    def inflight(self):
        return lib().cpn_client_inflight(self._handle())

    def fileno(self):
        return lib().cpn_client_fd(self._handle())

    def stats(self):
        """The client's counters (cpn_client_stats) as a dict."""
        s = _Stats()
        lib().cpn_client_stats(self._handle(), ctypes.byref(s), ctypes.sizeof(s))
        return {n: getattr(s, n) for n in _STATS}

    def close(self):
        if getattr(self, "_cl", None):
            lib().cpn_client_close(self._cl)
            self._cl = None
            self._keep.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
