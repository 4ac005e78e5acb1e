#!/usr/bin/env bash
# Writes a day of a shared hosting server's Postfix log (the embedded
# default config's customers) to stdout: ordinary mailboxes sending in
# office hours, acme's newsletter at 09:00, and from 14:00 to 16:59 the
# mailbox mark@consult.example, its password stolen, sending about 300
# messages an hour from an address abroad. Deterministic (awk's srand).
#
#   tests/report/demo_log.sh [DAY]   DAY as syslog writes it, default "Dec  6"
set -euo pipefail
day="${1:-Dec  6}"
awk -v day="$day" 'BEGIN {
  srand(11);
  split("info@acme.example sales@acme.example jo@acme.example orders@acme-shop.example " \
        "hello@bakery.example anna@bakery.example mark@consult.example lee@consult.example", box, " ");
  split("8 6 4 10 3 2 3 2", rate, " ");  # messages an hour in office hours
  q = 0;
  for (h = 0; h < 24; h++) {
    office = (h >= 8 && h < 18) ? 1 : (h >= 6 && h < 22 ? 0.3 : 0.05);
    for (b = 1; b <= 8; b++) {
      n = int(rate[b] * office * (0.6 + rand() * 0.8) + 0.5);
      for (k = 0; k < n; k++) msg(h, int(rand() * 3600), box[b], 1 + int(rand() * 3), "198.51.100." (10 + b));
    }
    if (h == 9) for (k = 0; k < 600; k++) msg(h, int(k * 5.5), "newsletter@acme.example", 1, "198.51.100.50");
    if (h >= 14 && h < 17) for (k = 0; k < 300; k++) msg(h, int(rand() * 3600), "mark@consult.example", 20, "203.0.113.66");
  }
}
function msg(h, s, who, nrcpt, ip,    t, id, i) {
  q++;
  t = sprintf("%s %02d:%02d:%02d", day, h, int(s / 60), s % 60);
  id = sprintf("4Q%07X", q);
  printf "%s mx1 postfix/submission/smtpd[2101]: %s: client=client.example[%s], sasl_method=PLAIN, sasl_username=%s\n", t, id, ip, who;
  printf "%s mx1 postfix/cleanup[2102]: %s: message-id=<%d.%s>\n", t, id, q, who;
  printf "%s mx1 postfix/qmgr[2103]: %s: from=<%s>, size=%d, nrcpt=%d (queue active)\n", t, id, who, 2000 + int(rand() * 30000), nrcpt;
  for (i = 0; i < nrcpt; i++)
    printf "%s mx1 postfix/smtp[2104]: %s: to=<r%d@remote.example>, relay=mx.remote.example[192.0.2.25]:25, delay=0.4, status=sent (250 2.0.0 Ok)\n", t, id, i;
  printf "%s mx1 postfix/qmgr[2103]: %s: removed\n", t, id;
}' | sort -s -k3,3
