# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A cpn node in Python: libcpn's worker library (cpn/worker.h) over ctypes.

    import cpn
    w = cpn.Worker(listen="10.0.0.1:7471", routers=["10.0.0.254:7471"], node_id=1,
                   max_batch=16, max_delay_us=2000, capacity=1)
    w.serve(lambda batch: [model(p) for p in batch])

The library receives the requests, batches them, reports the node's load to
the routers, answers PROBEs and BUSY, signs with the node key, reassembles
large requests and sends large replies; the callback only computes. It is
given a list of requests, each a `bytes` (the payload) with the attributes
request_id, tenant, service and session, and returns a list of the same
length whose items are bytes-like (status 0) or (status, bytes) pairs
(status as in cpn's REPLY: 0 ok, 1 bad request, 2 kernel error, 3
unsupported). It runs on the library's slot threads (one per `capacity`),
holding the GIL; an exception, or a list of the wrong length, answers the
whole batch with status 2 (kernel error) and is logged on stderr.

Every option of cpn-worker(8) that is the node's is a keyword, '-' written
'_' (max_message="8M", key="00112233...", metrics="127.0.0.1:9100", ...);
`routers` takes a list; hop_key=, join_key=, freshness_ms= as cpn-worker's options;
payload_key={tenant: 64 hex digits or 32 bytes} opens those tenants' sealed
requests before the callable sees them and seals their replies. serve() returns once SIGTERM or SIGINT drained the
node (0), or 1 when a second signal stopped it early.
"""
import ctypes
import sys
import threading
import traceback

from ._lib import lib

ST_OK, ST_BAD_REQUEST, ST_KERNEL_ERROR, ST_UNSUPPORTED = 0, 1, 2, 3


class _Req(ctypes.Structure):
    _fields_ = [("payload", ctypes.c_void_p), ("len", ctypes.c_uint32),
                ("service", ctypes.c_uint16), ("tenant", ctypes.c_uint32),
                ("session", ctypes.c_uint32), ("request_id", ctypes.c_uint64)]


class _Rep(ctypes.Structure):
    _fields_ = [("status", ctypes.c_uint8), ("payload", ctypes.c_void_p),
                ("len", ctypes.c_uint32)]


_SLOT_OPEN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                              ctypes.c_void_p, ctypes.c_size_t)
_RUN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(_Req), ctypes.c_int,
                        ctypes.POINTER(_Rep))
_SLOT_CLOSE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_PAYLOAD_OK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)
_WARM = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
_QUEUE_EXTRA = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p)


class _Handler(ctypes.Structure):
    _fields_ = [("kernel", ctypes.c_char_p), ("backend", ctypes.c_char_p),
                ("device", ctypes.c_char_p), ("user", ctypes.c_void_p),
                ("slot_open", _SLOT_OPEN), ("run", _RUN), ("slot_close", _SLOT_CLOSE),
                ("payload_ok", _PAYLOAD_OK), ("warm", _WARM), ("queue_extra", _QUEUE_EXTRA),
                ("svc_hint_ns", ctypes.c_uint64)]


def _bind():
    L = lib()
    if getattr(L, "_cpn_worker_bound", False):
        return L
    vp, cp, i, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t
    for name, res, args in (
            ("cpn_worker_config_new", vp, []),
            ("cpn_worker_config_free", None, [vp]),
            ("cpn_worker_config_set", i, [vp, cp, cp]),
            ("cpn_worker_config_check", i, [vp]),
            ("cpn_worker_config_error", cp, [vp]),
            ("cpn_worker_open", i, [ctypes.POINTER(vp), vp, ctypes.POINTER(_Handler), cp, sz]),
            ("cpn_worker_start", i, [vp, cp, sz]),
            ("cpn_worker_drain", None, [vp]),
            ("cpn_worker_wait", i, [vp, i]),
            ("cpn_worker_error", cp, [vp]),
            ("cpn_worker_stop", None, [vp]),
            ("cpn_worker_close", None, [vp]),
            ("cpn_worker_run", i, [vp, cp]),
            ("cpn_worker_describe", i, [vp, cp, sz])):
        f = getattr(L, name)
        f.restype, f.argtypes = res, args
    L._cpn_worker_bound = True
    return L


class Request(bytes):
    """A request's payload, with its identity as attributes."""
    request_id = tenant = service = session = 0

    @property
    def payload(self):
        return bytes(self)


class Worker:
    """A cpn node whose batches a Python callable computes."""

    def __init__(self, listen, routers, node_id, kernel="python", payload_ok=None,
                 queue_extra=None, payload_key=None, **options):
        self._L = _bind()
        self.name = kernel
        self._payload_ok = payload_ok
        self._queue_extra = queue_extra
        self._fn = None
        self._w = ctypes.c_void_p()
        self._keep = {}  # slot -> the reply buffers of its last batch
        self._lock = threading.Lock()
        self._cfg = self._L.cpn_worker_config_new()
        if not self._cfg:
            raise MemoryError("cpn_worker_config_new")
        if isinstance(routers, str):
            routers = [routers]
        opts = dict(options, listen=listen, router=",".join(routers), node_id=node_id)
        # payload_key={tenant: 64 hex digits or 32 bytes}: one payload-key option each
        pairs = list(opts.items()) + [
            ("payload_key", "%d:%s" % (t, k.hex() if isinstance(k, (bytes, bytearray)) else k))
            for t, k in (payload_key or {}).items()]
        for k, v in pairs:
            if isinstance(v, (list, tuple)):
                v = ",".join(str(x) for x in v)
            if self._L.cpn_worker_config_set(self._cfg, k.encode(), str(v).encode()):
                msg = self._L.cpn_worker_config_error(self._cfg).decode()
                self._L.cpn_worker_config_free(self._cfg)
                self._cfg = None
                raise ValueError("cpn.Worker: " + msg)

    # ---- the handler's callbacks (on the library's threads) -------------------

    def _slot_open(self, user, slot, max_batch, err, errlen):
        return slot + 1

    def _run(self, inst, req, n, rep):
        slot = inst
        batch = []
        for k in range(n):
            r = req[k]
            p = Request(ctypes.string_at(r.payload, r.len) if r.len else b"")
            p.request_id, p.tenant, p.service, p.session = (r.request_id, r.tenant, r.service,
                                                            r.session)
            batch.append(p)
        keep = []
        try:
            out = self._fn(batch)
            out = list(out) if out is not None else []
            if len(out) != n:
                raise ValueError("the callback returned %d answers for %d requests"
                                 % (len(out), n))
            for k, a in enumerate(out):
                st = ST_OK
                if isinstance(a, tuple):
                    st, a = a
                b = bytes(a) if a is not None else b""
                keep.append(b)
                rep[k].status = int(st)
                rep[k].len = len(b)
                rep[k].payload = ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value \
                    if b else None
        except Exception:
            sys.stderr.write("cpn.Worker %s: the callback failed; its batch of %d answered "
                             "kernel error:\n%s" % (self.name, n, traceback.format_exc()))
            sys.stderr.flush()
            for k in range(n):
                rep[k].status = ST_KERNEL_ERROR
                rep[k].payload = None
                rep[k].len = 0
            keep = []
        # The library sends (or copies) the replies before the slot's next
        # batch: they live until then.
        self._keep[slot] = keep

    def _slot_close(self, inst):
        self._keep.pop(inst, None)

    def _payload_ok_cb(self, user, n):
        try:
            return 1 if self._payload_ok(n) else 0
        except Exception:
            traceback.print_exc()
            return 0

    def _queue_extra_cb(self, user):
        try:
            return max(0, min(int(self._queue_extra()), 0xffffffff))
        except Exception:
            traceback.print_exc()
            return 0

    # ---- the node ------------------------------------------------------------

    def open(self, fn):
        """Bind and open the slots with fn as the batch callback."""
        if self._w:
            raise RuntimeError("cpn.Worker: already open")
        self._fn = fn
        self._cbs = (_SLOT_OPEN(self._slot_open), _RUN(self._run), _SLOT_CLOSE(self._slot_close),
                     _PAYLOAD_OK(self._payload_ok_cb) if self._payload_ok else _PAYLOAD_OK(),
                     _QUEUE_EXTRA(self._queue_extra_cb) if self._queue_extra else _QUEUE_EXTRA())
        self._name_b = self.name.encode()
        self._h = _Handler(kernel=self._name_b, backend=b"python", device=b"none",
                           slot_open=self._cbs[0], run=self._cbs[1], slot_close=self._cbs[2],
                           payload_ok=self._cbs[3], queue_extra=self._cbs[4])
        err = ctypes.create_string_buffer(512)
        rc = self._L.cpn_worker_open(ctypes.byref(self._w), self._cfg, ctypes.byref(self._h),
                                     err, len(err))
        if rc:
            self._w = ctypes.c_void_p()
            raise OSError(-rc, "cpn.Worker: " + err.value.decode())

    def describe(self):
        buf = ctypes.create_string_buffer(512)
        self._L.cpn_worker_describe(self._w, buf, len(buf))
        return buf.value.decode()

    def start(self):
        err = ctypes.create_string_buffer(512)
        rc = self._L.cpn_worker_start(self._w, err, len(err))
        if rc:
            raise OSError(-rc, "cpn.Worker: " + err.value.decode())

    def drain(self):
        self._L.cpn_worker_drain(self._w)

    def wait(self, timeout=None):
        """True once drained; False at the timeout (seconds)."""
        rc = self._L.cpn_worker_wait(self._w, -1 if timeout is None else int(timeout * 1000))
        if rc < 0:
            raise OSError(-rc, "cpn.Worker: " + (self._L.cpn_worker_error(self._w) or b"").decode())
        return rc == 1

    def serve(self, fn):
        """Open with fn, answer until SIGTERM or SIGINT drained the node, close.
        Returns 0 (drained) or 1 (stopped early, or a thread of the node failed)."""
        self.open(fn)
        sys.stderr.write("cpn.Worker: %s\n" % self.describe())
        sys.stderr.flush()
        try:
            rc = self._L.cpn_worker_run(self._w, ("cpn.Worker " + self.name).encode())
        finally:
            self.close()
        if rc < 0:
            raise OSError(-rc, "cpn.Worker: the node did not start")
        return rc

    def close(self):
        if self._w:
            self._L.cpn_worker_close(self._w)
            self._w = ctypes.c_void_p()
        if self._cfg:
            self._L.cpn_worker_config_free(self._cfg)
            self._cfg = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
