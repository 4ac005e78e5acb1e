"""sluice: rate limits and reputation for mail servers, from Python.

A thin layer over sluice's C ABI (libsluice.so.0, bindings/c/sluice.h)
with ctypes: nothing to compile at install. The library is found through
$SLUICE_LIBRARY, else the system's library path ("libsluice.so.0").

    import sluice
    with sluice.Engine(config_text) as engine:
        verdict = engine.evaluate(sluice.Stage.RCPT, transaction="q1",
                                  client_address="192.0.2.10",
                                  sender="info@bakery.example",
                                  recipient="friend@remote.example")
        if not verdict.admitted:
            print(verdict.smtp_code, verdict.enhanced_status, verdict.text)

Thread safety: Engine and Limiter methods are thread-safe (the C ABI's
are, and ctypes releases the GIL during calls). A Fingerprinter is for one
thread at a time.
"""
from __future__ import annotations

import ctypes
import enum
import json
import os
import re
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

__all__ = [
    "Action", "Direction", "Engine", "Fingerprint", "Fingerprinter", "Limiter", "SluiceError",
    "Stage", "Status", "Verdict", "version",
]


class Status(enum.IntEnum):
    """The C ABI's status codes (values pinned forever)."""
    OK = 0
    INVALID_ARGUMENT = 1
    CONFIG_ERROR = 2
    NOT_FOUND = 3
    PERMISSION_DENIED = 4
    FAILED_PRECONDITION = 5
    RESOURCE_EXHAUSTED = 6
    IO_ERROR = 7
    INTERNAL = 8


class Stage(enum.IntEnum):
    CONNECT = 0
    HELO = 1
    MAIL = 2
    RCPT = 3
    DATA = 4
    END_OF_MESSAGE = 5
    OTHER = 6


class Direction(enum.IntEnum):
    UNKNOWN = 0
    INBOUND = 1
    OUTGOING = 2


class Action(enum.IntEnum):
    ACCEPT = 0
    DEFER = 1
    REJECT = 2
    HOLD = 3
    DISCARD = 4
    NOTIFY = 5


class SluiceError(Exception):
    """A failed call: `status` (a Status), the message, and for config
    errors the position (`file`, `line`, `column`) it names."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = Status(status) if status in Status._value2member_map_ else status
        self.message = message
        self.file: Optional[str] = None
        self.line: Optional[int] = None
        self.column: Optional[int] = None
        m = re.match(r"^([^:]+):(\d+):(\d+): ", message)
        if m:
            self.file, self.line, self.column = m.group(1), int(m.group(2)), int(m.group(3))

    def __str__(self) -> str:
        return f"{self.status.name if isinstance(self.status, Status) else self.status}: {self.message}"


# ---- The C structs (bindings/c/sluice.h) ------------------------------------

_c_char_p = ctypes.c_char_p


class _Event(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t), ("stage", ctypes.c_uint32),
        ("direction", ctypes.c_uint32),
        ("transaction", _c_char_p), ("transaction_len", ctypes.c_size_t),
        ("client_address", _c_char_p), ("client_address_len", ctypes.c_size_t),
        ("helo", _c_char_p), ("helo_len", ctypes.c_size_t),
        ("sasl_username", _c_char_p), ("sasl_username_len", ctypes.c_size_t),
        ("sender", _c_char_p), ("sender_len", ctypes.c_size_t),
        ("recipient", _c_char_p), ("recipient_len", ctypes.c_size_t),
        ("script", _c_char_p), ("script_len", ctypes.c_size_t),
        ("size", ctypes.c_uint64), ("recipient_count", ctypes.c_uint64),
        ("server_port", ctypes.c_uint32),
    ]


class _Verdict(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t), ("action", ctypes.c_uint32),
        ("admitted", ctypes.c_uint8), ("shadow", ctypes.c_uint8), ("tripped", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8), ("smtp_code", ctypes.c_int32),
        ("enhanced_status", ctypes.c_char * 16), ("text", ctypes.c_char * 512),
        ("source", ctypes.c_char * 32), ("level", ctypes.c_char * 16),
        ("entity", ctypes.c_char * 256), ("identity", ctypes.c_char * 256),
        ("limit", ctypes.c_uint64), ("usage", ctypes.c_uint64),
        ("retry_after_ms", ctypes.c_int64), ("direction", ctypes.c_uint32),
        ("direction_reason", ctypes.c_char * 32),
    ]


class _Notice(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t), ("time_ms", ctypes.c_int64),
        ("action", ctypes.c_uint32), ("shadow", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 3), ("source", ctypes.c_char * 32),
        ("level", ctypes.c_char * 16), ("entity", ctypes.c_char * 256),
        ("metric", ctypes.c_char * 16), ("window_seconds", ctypes.c_int64),
        ("limit", ctypes.c_uint64), ("usage", ctypes.c_uint64), ("text", ctypes.c_char * 512),
    ]


_NoticeFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(_Notice))


class _Request(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("sender", _c_char_p), ("sender_len", ctypes.c_size_t),
        ("sasl_user", _c_char_p), ("sasl_user_len", ctypes.c_size_t),
        ("client_ip", _c_char_p), ("client_ip_len", ctypes.c_size_t),
        ("script", _c_char_p), ("script_len", ctypes.c_size_t),
        ("list", _c_char_p), ("list_len", ctypes.c_size_t),
        ("inbound", ctypes.c_uint8),
        ("messages", ctypes.c_uint64), ("recipients", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
    ]


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(os.environ.get("SLUICE_LIBRARY", "libsluice.so.0"))
    P, S = ctypes.c_void_p, ctypes.c_size_t
    err = ctypes.POINTER(ctypes.c_void_p)
    sig = {
        "sluice_version_number": (ctypes.c_uint, []),
        "sluice_version_string": (ctypes.c_char_p, []),
        "sluice_status_name": (ctypes.c_char_p, [ctypes.c_int]),
        "sluice_free": (None, [P]),
        "sluice_options_create": (P, []),
        "sluice_options_destroy": (None, [P]),
        "sluice_options_set_table_path": (None, [P, ctypes.c_char_p, S]),
        "sluice_options_set_leases": (None, [P, ctypes.c_uint8]),
        "sluice_engine_open": (ctypes.c_int, [ctypes.c_char_p, S, P, ctypes.POINTER(P), err]),
        "sluice_engine_open_file": (ctypes.c_int, [ctypes.c_char_p, S, P, ctypes.POINTER(P), err]),
        "sluice_engine_close": (None, [P]),
        "sluice_engine_reload": (ctypes.c_int, [P, ctypes.c_char_p, S, err]),
        "sluice_engine_evaluate": (ctypes.c_int, [P, ctypes.POINTER(_Event), ctypes.c_int64,
                                                  ctypes.POINTER(_Verdict)]),
        "sluice_engine_abort": (ctypes.c_int, [P, ctypes.c_char_p, S, ctypes.c_int64]),
        "sluice_engine_auth": (ctypes.c_int, [P, ctypes.c_char_p, S, ctypes.c_char_p, S,
                                              ctypes.c_uint8, ctypes.c_int64,
                                              ctypes.POINTER(_Verdict)]),
        "sluice_engine_maintain": (ctypes.c_int, [P, ctypes.c_int64]),
        "sluice_engine_usage_json": (ctypes.c_int, [P, ctypes.c_char_p, S, ctypes.c_int64,
                                                    err, err]),
        "sluice_engine_explain_json": (ctypes.c_int, [P, ctypes.POINTER(_Event), ctypes.c_int64,
                                                      err, err]),
        "sluice_engine_top_json": (ctypes.c_int, [P, ctypes.c_char_p, S, ctypes.c_char_p, S,
                                                  ctypes.c_char_p, S, ctypes.c_uint32,
                                                  ctypes.c_int64, err, err]),
        "sluice_engine_set_notice_callback": (ctypes.c_int, [P, _NoticeFn, P]),
        "sluice_limiter_open": (ctypes.c_int, [ctypes.c_char_p, S, P, ctypes.POINTER(P), err]),
        "sluice_limiter_close": (None, [P]),
        "sluice_limiter_check_and_charge": (ctypes.c_int, [P, ctypes.POINTER(_Request),
                                                           ctypes.c_int64,
                                                           ctypes.POINTER(_Verdict)]),
        "sluice_limiter_reserve": (ctypes.c_int, [P, ctypes.c_char_p, S, ctypes.c_char_p, S,
                                                  ctypes.POINTER(_Request), ctypes.c_int64,
                                                  ctypes.POINTER(_Verdict)]),
        "sluice_limiter_commit": (ctypes.c_int, [P, ctypes.c_char_p, S, ctypes.c_uint64,
                                                 ctypes.c_int64, ctypes.POINTER(_Verdict)]),
        "sluice_limiter_release": (ctypes.c_int, [P, ctypes.c_char_p, S, ctypes.c_int64]),
        "sluice_fingerprinter_create": (P, []),
        "sluice_fingerprinter_destroy": (None, [P]),
        "sluice_fingerprinter_begin": (None, [P]),
        "sluice_fingerprinter_feed": (None, [P, ctypes.c_char_p, S]),
        "sluice_fingerprinter_finish": (P, [P]),
        "sluice_fingerprint_destroy": (None, [P]),
        "sluice_fingerprint_digest": (None, [P, ctypes.c_char_p]),
        "sluice_fingerprint_similarity": (ctypes.c_double, [P, P]),
        "sluice_fingerprint_same_template": (ctypes.c_uint8, [P, P]),
        "sluice_fingerprint_link_host": (ctypes.c_char_p, [P, S]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


_lib = _load()


def version() -> str:
    """The library's version ("0.1.0")."""
    return _lib.sluice_version_string().decode()


def _b(s: Optional[str]) -> bytes:
    return b"" if s is None else (s.encode() if isinstance(s, str) else bytes(s))


def _take(p: ctypes.c_void_p) -> str:
    """A library-owned C string as str, released."""
    if not p:
        return ""
    try:
        return ctypes.string_at(p).decode(errors="replace")
    finally:
        _lib.sluice_free(p)


def _check(status: int, err: Optional[ctypes.c_void_p] = None) -> None:
    if status != Status.OK:
        message = _take(err) if err is not None and err.value else Status(status).name
        raise SluiceError(status, message)


def _ms(now: Optional[float]) -> int:
    """Seconds since the epoch (float) to the C ABI's milliseconds; None: the clock."""
    return 0 if now is None else int(now * 1000)


@dataclass(frozen=True)
class Verdict:
    """The answer for one stage (see sluice_verdict_t)."""
    action: Action
    admitted: bool
    shadow: bool
    tripped: bool
    smtp_code: int
    enhanced_status: str
    text: str
    source: str
    level: str
    entity: str
    identity: str
    limit: int
    usage: int
    retry_after: Optional[float]  # seconds; None: never (it can never pass)
    direction: Direction
    direction_reason: str

    @staticmethod
    def _from(v: _Verdict) -> "Verdict":
        d = lambda b: b.decode(errors="replace")  # noqa: E731
        return Verdict(Action(v.action), bool(v.admitted), bool(v.shadow), bool(v.tripped),
                       v.smtp_code, d(v.enhanced_status), d(v.text), d(v.source), d(v.level),
                       d(v.entity), d(v.identity), v.limit, v.usage,
                       None if v.retry_after_ms < 0 else v.retry_after_ms / 1000.0,
                       Direction(v.direction), d(v.direction_reason))


@dataclass(frozen=True)
class Notice:
    """A trip the engine reports once per entity, rule and window, or a DNS
    list's suspension (see sluice_notice_t)."""
    time: float  # seconds since the epoch
    source: str  # "limit", a detector's name, "dnsbl"
    level: str
    entity: str
    metric: str
    window_seconds: int
    limit: int
    usage: int
    action: Action
    shadow: bool
    text: str

    @staticmethod
    def _from(n: _Notice) -> "Notice":
        d = lambda b: b.decode(errors="replace")  # noqa: E731
        return Notice(n.time_ms / 1000.0, d(n.source), d(n.level), d(n.entity), d(n.metric),
                      n.window_seconds, n.limit, n.usage, Action(n.action), bool(n.shadow),
                      d(n.text))


def _verdict() -> _Verdict:
    v = _Verdict()
    v.struct_size = ctypes.sizeof(_Verdict)
    return v


def _options(table_path: Optional[str], leases: bool) -> ctypes.c_void_p:
    o = ctypes.c_void_p(_lib.sluice_options_create())
    if table_path:
        p = _b(table_path)
        _lib.sluice_options_set_table_path(o, p, len(p))
    _lib.sluice_options_set_leases(o, 1 if leases else 0)
    return o


class _Handle:
    """An open C handle, closed by close(), the context manager or GC."""

    _close_fn = None  # the C destroy function (set by subclasses)

    def close(self) -> None:
        if getattr(self, "_h", None):  # (also when __init__ failed)
            type(self)._close_fn(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def _handle(self) -> ctypes.c_void_p:
        if not getattr(self, "_h", None):
            raise SluiceError(Status.INVALID_ARGUMENT, f"the {type(self).__name__} is closed")
        return self._h


class Engine(_Handle):
    """The whole engine: direction, limits, abuse detectors, DNS lists.

    Engine(config_text) or Engine(path=...). `table_path` overrides the
    config's counter table; `leases=False` for processes that live for one
    message (counts stay exact across processes). Use as a context manager
    or call close().
    """

    _close_fn = staticmethod(lambda h: _lib.sluice_engine_close(h))

    def __init__(self, config: Optional[str] = None, *, path: Optional[str] = None,
                 table_path: Optional[str] = None, leases: bool = True):
        if (config is None) == (path is None):
            raise ValueError("give the config text or a path, not both")
        self._h = ctypes.c_void_p()
        opts = _options(table_path, leases)
        err = ctypes.c_void_p()
        try:
            if path is not None:
                p = _b(path)
                st = _lib.sluice_engine_open_file(p, len(p), opts, ctypes.byref(self._h),
                                                  ctypes.byref(err))
            else:
                c = _b(config)
                st = _lib.sluice_engine_open(c, len(c), opts, ctypes.byref(self._h),
                                             ctypes.byref(err))
        finally:
            _lib.sluice_options_destroy(opts)
        _check(st, err)

    @staticmethod
    def _event(stage: Stage, fields: Dict[str, Any]) -> tuple:
        e = _Event()
        e.struct_size = ctypes.sizeof(_Event)
        e.stage = int(stage)
        keep = []
        for name in ("transaction", "client_address", "helo", "sasl_username", "sender",
                     "recipient", "script"):
            value = _b(fields.pop(name, None))
            keep.append(value)
            setattr(e, name, value)
            setattr(e, name + "_len", len(value))
        e.direction = int(fields.pop("direction", Direction.UNKNOWN))
        e.size = int(fields.pop("size", 0))
        e.recipient_count = int(fields.pop("recipient_count", 0))
        e.server_port = int(fields.pop("server_port", 0))
        if fields:
            raise TypeError(f"unknown event fields: {', '.join(sorted(fields))}")
        return e, keep

    def evaluate(self, stage: Stage, *, now: Optional[float] = None, **fields: Any) -> Verdict:
        """Evaluates one SMTP stage. Fields: transaction, client_address,
        helo, sasl_username, sender, recipient, script, size,
        recipient_count, server_port, direction (Direction.OUTGOING for
        local submission)."""
        e, _keep = self._event(stage, fields)
        v = _verdict()
        _check(_lib.sluice_engine_evaluate(self._handle(), ctypes.byref(e), _ms(now),
                                           ctypes.byref(v)))
        return Verdict._from(v)

    def abort(self, transaction: str, *, now: Optional[float] = None) -> None:
        t = _b(transaction)
        _check(_lib.sluice_engine_abort(self._handle(), t, len(t), _ms(now)))

    def auth(self, client_address: str, user: str, ok: bool, *,
             now: Optional[float] = None) -> Verdict:
        c, u, v = _b(client_address), _b(user), _verdict()
        _check(_lib.sluice_engine_auth(self._handle(), c, len(c), u, len(u), 1 if ok else 0,
                                       _ms(now), ctypes.byref(v)))
        return Verdict._from(v)

    def on_notice(self, callback: Optional[Callable[[Notice], None]]) -> None:
        """Calls callback(Notice) for every trip (once per entity, rule and
        window) and DNS list suspension, on the thread whose call tripped;
        None removes it. Exceptions in the callback are printed, not raised."""
        if callback is None:
            fn = _NoticeFn()
        else:
            def fn_py(_arg: Any, n: Any) -> None:
                try:
                    callback(Notice._from(n.contents))
                except Exception:  # noqa: BLE001 -- never into C
                    traceback.print_exc()
            fn = _NoticeFn(fn_py)
        _check(_lib.sluice_engine_set_notice_callback(self._handle(), fn, None))
        self._notice_fn = fn  # keep the C thunk alive while C may call it

    def maintain(self, *, now: Optional[float] = None) -> None:
        _check(_lib.sluice_engine_maintain(self._handle(), _ms(now)))

    def reload(self, config: str) -> None:
        """Swaps in a new config; on error (SluiceError) the running one stays."""
        c, err = _b(config), ctypes.c_void_p()
        _check(_lib.sluice_engine_reload(self._handle(), c, len(c), ctypes.byref(err)), err)

    def usage(self, entity: str, *, now: Optional[float] = None) -> Dict[str, Any]:
        """The counters of an entity ("a@b.example", "b.example", "LEVEL:NAME")."""
        n, out, err = _b(entity), ctypes.c_void_p(), ctypes.c_void_p()
        _check(_lib.sluice_engine_usage_json(self._handle(), n, len(n), _ms(now),
                                             ctypes.byref(out), ctypes.byref(err)), err)
        return json.loads(_take(out))

    def top(self, level: str, metric: str = "messages", window: str = "", n: int = 20, *,
            now: Optional[float] = None) -> Dict[str, Any]:
        """The n entities of a level with the highest usage ("top senders")."""
        lv, m, w = _b(level), _b(metric), _b(window)
        out, err = ctypes.c_void_p(), ctypes.c_void_p()
        _check(_lib.sluice_engine_top_json(self._handle(), lv, len(lv), m, len(m), w, len(w), n,
                                           _ms(now), ctypes.byref(out), ctypes.byref(err)), err)
        return json.loads(_take(out))

    def explain(self, *, now: Optional[float] = None, **fields: Any) -> Dict[str, Any]:
        """What the engine makes of a message (counts nothing)."""
        e, _keep = self._event(Stage.RCPT, fields)
        out, err = ctypes.c_void_p(), ctypes.c_void_p()
        _check(_lib.sluice_engine_explain_json(self._handle(), ctypes.byref(e), _ms(now),
                                               ctypes.byref(out), ctypes.byref(err)), err)
        return json.loads(_take(out))


class Limiter(_Handle):
    """The hierarchical limits alone (no direction, detectors or lists)."""

    _close_fn = staticmethod(lambda h: _lib.sluice_limiter_close(h))

    def __init__(self, config: str, *, table_path: Optional[str] = None, leases: bool = True):
        self._h = ctypes.c_void_p()
        opts = _options(table_path, leases)
        c, err = _b(config), ctypes.c_void_p()
        try:
            st = _lib.sluice_limiter_open(c, len(c), opts, ctypes.byref(self._h),
                                          ctypes.byref(err))
        finally:
            _lib.sluice_options_destroy(opts)
        _check(st, err)

    @staticmethod
    def _request(fields: Dict[str, Any]) -> tuple:
        r = _Request()
        r.struct_size = ctypes.sizeof(_Request)
        keep = []
        for name in ("sender", "sasl_user", "client_ip", "script", "list"):
            value = _b(fields.pop(name, None))
            keep.append(value)
            setattr(r, name, value)
            setattr(r, name + "_len", len(value))
        r.inbound = 1 if fields.pop("inbound", False) else 0
        r.messages = int(fields.pop("messages", 1))
        r.recipients = int(fields.pop("recipients", 1))
        r.bytes = int(fields.pop("bytes", 0))
        if fields:
            raise TypeError(f"unknown request fields: {', '.join(sorted(fields))}")
        return r, keep

    def check_and_charge(self, *, now: Optional[float] = None, **fields: Any) -> Verdict:
        """All or nothing over the request's path. Fields: sender,
        sasl_user, client_ip, script, list, inbound, messages, recipients,
        bytes."""
        r, _keep = self._request(fields)
        v = _verdict()
        _check(_lib.sluice_limiter_check_and_charge(self._handle(), ctypes.byref(r), _ms(now),
                                                    ctypes.byref(v)))
        return Verdict._from(v)

    def reserve(self, transaction: str, item: str, *, now: Optional[float] = None,
                **fields: Any) -> Verdict:
        r, _keep = self._request(fields)
        t, i, v = _b(transaction), _b(item), _verdict()
        _check(_lib.sluice_limiter_reserve(self._handle(), t, len(t), i, len(i), ctypes.byref(r),
                                           _ms(now), ctypes.byref(v)))
        return Verdict._from(v)

    def commit(self, transaction: str, bytes: int = 0, *, now: Optional[float] = None) -> Verdict:
        t, v = _b(transaction), _verdict()
        _check(_lib.sluice_limiter_commit(self._handle(), t, len(t), bytes, _ms(now), ctypes.byref(v)))
        return Verdict._from(v)

    def release(self, transaction: str, *, now: Optional[float] = None) -> None:
        t = _b(transaction)
        _check(_lib.sluice_limiter_release(self._handle(), t, len(t), _ms(now)))


class Fingerprint:
    """A message's content fingerprint (from Fingerprinter)."""

    def __init__(self, handle: int):
        self._h = ctypes.c_void_p(handle)

    def __del__(self) -> None:
        if getattr(self, "_h", None):
            _lib.sluice_fingerprint_destroy(self._h)
            self._h = ctypes.c_void_p()

    @property
    def digest(self) -> bytes:
        """The 128-bit template digest."""
        buf = ctypes.create_string_buffer(16)
        _lib.sluice_fingerprint_digest(self._h, buf)
        return buf.raw

    def similarity(self, other: "Fingerprint") -> float:
        return _lib.sluice_fingerprint_similarity(self._h, other._h)

    def same_template(self, other: "Fingerprint") -> bool:
        return bool(_lib.sluice_fingerprint_same_template(self._h, other._h))

    @property
    def link_hosts(self) -> List[str]:
        """The distinct hosts of the message's links (what domain lists judge)."""
        out: List[str] = []
        while True:
            h = _lib.sluice_fingerprint_link_host(self._h, len(out))
            if h is None:
                return out
            out.append(h.decode())


class Fingerprinter:
    """Fingerprints messages, whole or in chunks. One thread at a time."""

    def __init__(self) -> None:
        self._h = ctypes.c_void_p(_lib.sluice_fingerprinter_create())

    def __del__(self) -> None:
        if getattr(self, "_h", None):
            _lib.sluice_fingerprinter_destroy(self._h)
            self._h = ctypes.c_void_p()

    def fingerprint(self, *chunks: bytes) -> Fingerprint:
        """The fingerprint of a raw message (headers and body), given in
        one or more chunks."""
        _lib.sluice_fingerprinter_begin(self._h)
        for c in chunks:
            c = _b(c)
            _lib.sluice_fingerprinter_feed(self._h, c, len(c))
        return Fingerprint(_lib.sluice_fingerprinter_finish(self._h))
