"""Decisions per second through the Python package (one thread), for the
same check-and-charge and RCPT stage that bindings/c:sluice_c_benchmark
times through the C ABI directly.

Run: bash bindings/python/benchmark.sh
"""
import time

import sluice

CONFIG = """
level { name: "server" limit { window: "1h" max: 100000000000 } }
level { name: "subscription" limit { window: "1h" max: 100000000000 } }
level { name: "domain" limit { window: "1h" max: 100000000000 } }
level { name: "mailbox" limit { window: "1h" max: 100000000000 } }
entity { level: "subscription" name: "acme" }
entity { level: "domain" name: "acme.example" parent: "acme" }
policy { trusted_network: "192.0.2.0/24" }
"""
SENDERS = [f"user{i}@acme.example" for i in range(1000)]
N = 200000


def rate(fn):
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(N):
            fn(SENDERS[i % 1000])
        best = max(best, N / (time.perf_counter() - t0))
    return best


with sluice.Limiter(CONFIG) as lim, sluice.Engine(CONFIG) as eng:
    cc = rate(lambda s: lim.check_and_charge(sender=s, now=1767225600.0))
    rc = rate(lambda s: eng.evaluate(sluice.Stage.RCPT, client_address="192.0.2.10", sender=s,
                                     recipient="r@remote.example", now=1767225600.0))
print(f"python check_and_charge: {cc:,.0f}/s ({1e9 / cc:,.0f} ns per call)")
print(f"python RCPT stage:       {rc:,.0f}/s ({1e9 / rc:,.0f} ns per call)")
