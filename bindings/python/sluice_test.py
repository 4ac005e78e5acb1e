"""pytest tests of the Python package, on the real libsluice.so.0."""
import threading

import pytest

import sluice

T0 = 1700000000.0
CONFIG = """
level { name: "domain" limit { window: "1h" max: 100 } }
level { name: "mailbox" limit { window: "1h" max: 2 } }
level { name: "client_ip" limit { window: "1h" max: 3 } }
entity { level: "domain" name: "acme.example" }
policy { trusted_network: "192.0.2.0/24" }
"""


def rcpt(engine, txn, client="192.0.2.10", sender="a@acme.example", **kw):
    return engine.evaluate(sluice.Stage.RCPT, transaction=txn, client_address=client,
                           sender=sender, recipient="r@remote.example", now=T0, **kw)


def test_version():
    assert sluice.version() == "0.1.0"


def test_limits_trip_with_everything_said():
    with sluice.Engine(CONFIG, leases=False) as e:
        assert rcpt(e, "t1").admitted
        assert rcpt(e, "t2").admitted
        v = rcpt(e, "t3")
        assert not v.admitted and v.tripped
        assert v.action == sluice.Action.DEFER
        assert (v.smtp_code, v.enhanced_status) == (451, "4.7.1")
        assert (v.source, v.level, v.entity) == ("limit", "mailbox", "a@acme.example")
        assert (v.limit, v.usage) == (2, 2)
        assert v.retry_after > 0
        assert v.direction == sluice.Direction.OUTGOING
        assert v.direction_reason == "trusted_network"
        usage = e.usage("a@acme.example", now=T0)
        assert usage["rule"][0]["usage"] == "2"
        top = e.top("mailbox", "messages", "1h", 5, now=T0)
        assert top["entry"][0]["entity"] == "a@acme.example"
        with pytest.raises(sluice.SluiceError) as ex:
            e.top("nope")
        assert ex.value.status == sluice.Status.INVALID_ARGUMENT


def test_notices_arrive_once_per_trip_and_stop_when_removed():
    seen = []
    with sluice.Engine(CONFIG, leases=False) as e:
        e.on_notice(seen.append)
        for i in range(5):
            rcpt(e, f"n{i}")
        assert len(seen) == 1
        n = seen[0]
        assert (n.source, n.level, n.entity, n.metric) == ("limit", "mailbox", "a@acme.example",
                                                            "messages")
        assert (n.limit, n.window_seconds, n.action, n.shadow) == (2, 3600, sluice.Action.DEFER,
                                                                   False)
        assert n.time == T0
        e.on_notice(lambda n: 1 / 0)  # an exception in the callback stays in Python
        rcpt(e, "b1", sender="b@acme.example")
        rcpt(e, "b2", sender="b@acme.example")
        assert not rcpt(e, "b3", sender="b@acme.example").admitted
        e.on_notice(None)
        for i in range(3):
            rcpt(e, f"c{i}", sender="c@acme.example")
        assert len(seen) == 1


def test_inbound_counts_only_its_client_and_explain_says_why():
    with sluice.Engine(CONFIG) as e:
        v = rcpt(e, "i1", client="203.0.113.9")
        assert v.direction == sluice.Direction.INBOUND
        assert v.direction_reason == "untrusted_client"
        x = e.explain(client_address="203.0.113.9", sender="a@acme.example", now=T0)
        assert x["direction"] == "inbound" and x["reason"] == "untrusted_client"
        assert x["identity"] == "203.0.113.9"
        assert {r["level"] for r in x["usage"]["rule"]} == {"client_ip"}
        local = rcpt(e, "l1", client="203.0.113.9", direction=sluice.Direction.OUTGOING)
        assert local.direction_reason == "door"


def test_transactions_abort_end_auth_maintain():
    with sluice.Engine(CONFIG) as e:
        assert rcpt(e, "x1", sender="b@acme.example").admitted
        e.abort("x1", now=T0)
        assert e.usage("b@acme.example", now=T0)["rule"][0]["usage"] == "0"
        assert rcpt(e, "x2", sender="b@acme.example").admitted
        end = e.evaluate(sluice.Stage.END_OF_MESSAGE, transaction="x2",
                         client_address="192.0.2.10", sender="b@acme.example", size=1234,
                         recipient_count=1, now=T0)
        assert end.admitted
        assert e.auth("198.51.100.1", "alice", True, now=T0).admitted
        e.maintain(now=T0)
        e.maintain()


def test_errors_carry_status_and_position():
    with pytest.raises(sluice.SluiceError) as ex:
        sluice.Engine('level { name: "mailbox"\n limit { window: "1q" max: 1 } }')
    assert ex.value.status == sluice.Status.CONFIG_ERROR
    assert (ex.value.file, ex.value.line) == ("<config>", 2)
    assert ex.value.column is not None
    with pytest.raises(sluice.SluiceError) as ex:
        sluice.Engine(path="/nonexistent/sluice.conf")
    assert ex.value.status == sluice.Status.NOT_FOUND
    with sluice.Engine(CONFIG) as e:
        with pytest.raises(sluice.SluiceError) as ex:
            e.reload('level { name: "nope" }')
        assert ex.value.status == sluice.Status.CONFIG_ERROR and ex.value.line == 1
        e.reload(CONFIG)
        with pytest.raises(sluice.SluiceError) as ex:
            e.usage("")
        assert ex.value.status == sluice.Status.INVALID_ARGUMENT
        with pytest.raises(TypeError):
            e.evaluate(sluice.Stage.RCPT, no_such_field="x")
    closed = sluice.Engine(CONFIG)
    closed.close()
    with pytest.raises(sluice.SluiceError):
        rcpt(closed, "c1")
    with pytest.raises(ValueError):
        sluice.Engine()


def test_limiter_alone():
    with sluice.Limiter(CONFIG, leases=False) as lim:
        assert lim.check_and_charge(sender="m@acme.example", now=T0).admitted
        assert lim.check_and_charge(sender="m@acme.example", now=T0).admitted
        v = lim.check_and_charge(sender="m@acme.example", now=T0)
        assert not v.admitted and v.level == "mailbox"
        for _ in range(3):
            assert lim.check_and_charge(client_ip="203.0.113.9", inbound=True, now=T0).admitted
        assert lim.check_and_charge(client_ip="203.0.113.9", inbound=True, now=T0).level == \
            "client_ip"
        assert lim.reserve("x1", "r1", sender="t@acme.example", now=T0).admitted
        assert lim.reserve("x1", "r1", sender="t@acme.example", now=T0).admitted
        assert lim.commit("x1", 100, now=T0).admitted
        assert lim.reserve("x2", "r1", sender="t@acme.example", now=T0).admitted
        lim.release("x2", now=T0)
        assert lim.reserve("x3", "r1", sender="t@acme.example", now=T0).admitted
        assert not lim.reserve("x4", "r1", sender="t@acme.example", now=T0).admitted


def test_fingerprints():
    a = (b"Subject: offer\r\n\r\nDear Alice, your invoice 12345 is ready at "
         b"https://pay.example.com/x?id=1 today. Best regards, the billing team of example.")
    b = (b"Subject: offer\r\n\r\nDear Bob, your invoice 67890 is ready at "
         b"https://pay.example.com/x?id=2 today. Best regards, the billing team of example.")
    c = (b"Subject: hi\r\n\r\nLunch on Friday? The new place near the station has good "
         b"noodles and we could walk there after the meeting.")
    f = sluice.Fingerprinter()
    fa, fb, fc = f.fingerprint(a[:20], a[20:]), f.fingerprint(b), f.fingerprint(c)
    assert fa.same_template(fb) and not fa.same_template(fc)
    assert fa.digest == fb.digest and len(fa.digest) == 16
    assert fa.similarity(fb) > 0.9 > 0.3 > fa.similarity(fc)
    assert fa.link_hosts == ["pay.example.com"] and fc.link_hosts == []


def test_threads_share_one_engine_and_counts_are_exact():
    config = 'level { name: "mailbox" limit { window: "1h" max: 1000 } }\n' \
             'policy { trusted_network: "192.0.2.0/24" }'
    with sluice.Engine(config) as e:
        admitted = []

        def worker(n):
            ok = 0
            for i in range(300):
                ok += rcpt(e, f"w{n}-{i}", sender="busy@acme.example").admitted
            admitted.append(ok)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(admitted) == 1000
