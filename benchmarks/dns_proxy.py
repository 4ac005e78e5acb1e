#!/usr/bin/env python3
"""A UDP DNS proxy on 127.0.0.1 that loses queries on purpose.

Forwards each query to an upstream server (a real rbldnsd) and relays its
answer, except queries it drops: those whose name holds a given label (a
black hole for part of the address space) and a given fraction of all the
others (a lossy server). For benchmarks and soak runs only; loopback only.

usage: dns_proxy.py LISTEN_PORT UPSTREAM_PORT [--drop-label LABEL] [--drop-fraction F]
"""
import random
import select
import socket
import sys


def labels(query):
    """The query name's labels (lower case), or [] if it does not parse."""
    out, i = [], 12
    while i < len(query):
        n = query[i]
        if n == 0 or n >= 64:
            break
        out.append(query[i + 1:i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    return out


def main():
    listen_port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    drop_label, drop_fraction = None, 0.0
    args = sys.argv[3:]
    while args:
        if args[0] == "--drop-label":
            drop_label = args[1].lower()
        elif args[0] == "--drop-fraction":
            drop_fraction = float(args[1])
        else:
            sys.exit(f"unknown option {args[0]}")
        args = args[2:]
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", listen_port))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.connect(("127.0.0.1", upstream_port))
    waiting = {}  # query id -> client address (bounded below)
    rng = random.Random(1)
    while True:
        ready, _, _ = select.select([front, back], [], [])
        if front in ready:
            query, client = front.recvfrom(4096)
            if len(query) < 12:
                continue
            name = labels(query)
            if (drop_label is not None and drop_label in name) or rng.random() < drop_fraction:
                continue  # lost
            if len(waiting) > 65536:
                waiting.clear()
            waiting[query[:2]] = client
            back.send(query)
        if back in ready:
            answer = back.recv(4096)
            client = waiting.pop(answer[:2], None)
            if client is not None:
                front.sendto(answer, client)


if __name__ == "__main__":
    main()
