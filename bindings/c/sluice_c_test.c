/* The C ABI from C11: every function and every error code. A tiny
 * harness (no C++ test framework on this side of the boundary). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings/c/sluice.h"

static int failures = 0;
#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                       \
    }                                                                   \
  } while (0)

#define S(lit) lit, sizeof(lit) - 1
static const int64_t kT0 = 1700000000000; /* ms */

static const char kConfig[] =
    "level { name: \"domain\" limit { window: \"1h\" max: 100 } }\n"
    "level { name: \"mailbox\" limit { window: \"1h\" max: 2 } }\n"
    "level { name: \"client_ip\" limit { window: \"1h\" max: 3 } }\n"
    "entity { level: \"domain\" name: \"acme.example\" }\n"
    "policy { trusted_network: \"192.0.2.0/24\" }\n";

static sluice_event_t Rcpt(const char* txn, const char* client, const char* sender) {
  sluice_event_t e = SLUICE_INIT_EVENT;
  e.stage = SLUICE_STAGE_RCPT;
  e.transaction = txn;
  e.transaction_len = strlen(txn);
  e.client_address = client;
  e.client_address_len = strlen(client);
  e.sender = sender;
  e.sender_len = strlen(sender);
  e.recipient = "r@remote.example";
  e.recipient_len = strlen(e.recipient);
  return e;
}

static void TestVersionAndStatus(void) {
  CHECK(sluice_version_number() == SLUICE_VERSION_NUMBER);
  CHECK(strcmp(sluice_version_string(), "0.1.0") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_OK), "SLUICE_OK") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_INVALID_ARGUMENT), "SLUICE_INVALID_ARGUMENT") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_CONFIG_ERROR), "SLUICE_CONFIG_ERROR") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_NOT_FOUND), "SLUICE_NOT_FOUND") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_PERMISSION_DENIED), "SLUICE_PERMISSION_DENIED") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_FAILED_PRECONDITION), "SLUICE_FAILED_PRECONDITION") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_RESOURCE_EXHAUSTED), "SLUICE_RESOURCE_EXHAUSTED") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_IO_ERROR), "SLUICE_IO_ERROR") == 0);
  CHECK(strcmp(sluice_status_name(SLUICE_INTERNAL), "SLUICE_INTERNAL") == 0);
  CHECK(strcmp(sluice_status_name((sluice_status)99), "SLUICE_UNKNOWN_STATUS") == 0);
  /* Pinned values. */
  CHECK(SLUICE_CONFIG_ERROR == 2 && SLUICE_INTERNAL == 8 && SLUICE_STAGE_END_OF_MESSAGE == 5);
  CHECK(SLUICE_ACTION_DEFER == 1 && SLUICE_DIRECTION_OUTGOING == 2);
  sluice_free(NULL);
}

static void TestOpenErrors(void) {
  sluice_engine_t* e = (sluice_engine_t*)1;
  char* err = NULL;
  /* A config error keeps its position. */
  CHECK(sluice_engine_open(S("level { name: \"mailbox\"\n limit { window: \"1q\" max: 1 } }"), NULL,
                           &e, &err) == SLUICE_CONFIG_ERROR);
  CHECK(e == NULL);
  CHECK(err != NULL && strstr(err, "<config>:2:") != NULL);
  sluice_free(err);
  err = NULL;
  CHECK(sluice_engine_open(S("level {"), NULL, &e, &err) == SLUICE_CONFIG_ERROR);
  sluice_free(err);
  CHECK(sluice_engine_open(S(kConfig), NULL, NULL, NULL) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_open(NULL, 5, NULL, &e, NULL) == SLUICE_INVALID_ARGUMENT);
  /* Files. */
  err = NULL;
  CHECK(sluice_engine_open_file(S("/nonexistent/sluice.conf"), NULL, &e, &err) == SLUICE_NOT_FOUND);
  CHECK(e == NULL && err != NULL);
  sluice_free(err);
  CHECK(sluice_engine_open_file(NULL, 0, NULL, &e, NULL) == SLUICE_INVALID_ARGUMENT);
  /* A table path that is a directory cannot be used. */
  sluice_options_t* o = sluice_options_create();
  sluice_options_set_table_path(o, S("/tmp"));
  err = NULL;
  sluice_status st = sluice_engine_open(S(kConfig), o, &e, &err);
  CHECK(st == SLUICE_FAILED_PRECONDITION || st == SLUICE_IO_ERROR);
  CHECK(err != NULL);
  sluice_free(err);
  sluice_options_destroy(o);
  sluice_options_destroy(NULL);
  sluice_options_set_leases(NULL, 0);
  sluice_options_set_table_path(NULL, S("x"));
}

static void TestEngine(void) {
  sluice_options_t* o = sluice_options_create();
  CHECK(o != NULL);
  sluice_options_set_leases(o, 0);
  sluice_engine_t* e = NULL;
  char* err = NULL;
  CHECK(sluice_engine_open(S(kConfig), o, &e, &err) == SLUICE_OK);
  CHECK(e != NULL && err == NULL);
  sluice_options_destroy(o);

  /* Outgoing mail (a trusted client): the mailbox allows 2 an hour. */
  sluice_verdict_t v = SLUICE_INIT_VERDICT;
  sluice_event_t ev = Rcpt("t1", "192.0.2.10", "a@acme.example");
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &v) == SLUICE_OK);
  CHECK(v.admitted == 1 && v.action == SLUICE_ACTION_ACCEPT && v.tripped == 0);
  CHECK(v.direction == SLUICE_DIRECTION_OUTGOING);
  CHECK(strcmp(v.direction_reason, "trusted_network") == 0);
  CHECK(strcmp(v.identity, "a@acme.example") == 0);
  ev = Rcpt("t2", "192.0.2.10", "a@acme.example");
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &v) == SLUICE_OK && v.admitted == 1);
  ev = Rcpt("t3", "192.0.2.10", "a@acme.example");
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &v) == SLUICE_OK);
  CHECK(v.admitted == 0 && v.action == SLUICE_ACTION_DEFER && v.tripped == 1);
  CHECK(v.smtp_code == 451 && strcmp(v.enhanced_status, "4.7.1") == 0);
  CHECK(strcmp(v.source, "limit") == 0 && strcmp(v.level, "mailbox") == 0);
  CHECK(strcmp(v.entity, "a@acme.example") == 0);
  CHECK(v.limit == 2 && v.usage == 2 && v.retry_after_ms > 0);
  CHECK(strstr(v.text, "mailbox messages limit 2/1h exceeded") != NULL);

  /* Abort gives a transaction back. */
  ev = Rcpt("t4", "192.0.2.10", "b@acme.example");
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(sluice_engine_abort(e, S("t4"), kT0) == SLUICE_OK);
  char* json = NULL;
  CHECK(sluice_engine_usage_json(e, S("b@acme.example"), kT0, &json, NULL) == SLUICE_OK);
  CHECK(json != NULL && strstr(json, "\"usage\":\"0\"") != NULL); /* given back */
  sluice_free(json);
  /* End of message with bytes: committed. */
  ev = Rcpt("t5", "192.0.2.10", "b@acme.example");
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &v) == SLUICE_OK && v.admitted);
  ev.stage = SLUICE_STAGE_END_OF_MESSAGE;
  ev.size = 1234;
  ev.recipient_count = 1;
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &v) == SLUICE_OK && v.admitted);
  json = NULL;
  CHECK(sluice_engine_usage_json(e, S("b@acme.example"), kT0, &json, NULL) == SLUICE_OK);
  CHECK(json != NULL && strstr(json, "\"usage\":\"1\"") != NULL);
  sluice_free(json);

  /* Inbound mail: only the client counts it, whatever its sender. */
  ev = Rcpt("i1", "203.0.113.9", "a@acme.example");
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(v.direction == SLUICE_DIRECTION_INBOUND);
  CHECK(strcmp(v.direction_reason, "untrusted_client") == 0);
  /* A door's word: local submission is outgoing. */
  ev = Rcpt("l1", "203.0.113.9", "c@acme.example");
  ev.direction = SLUICE_DIRECTION_OUTGOING;
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &v) == SLUICE_OK);
  CHECK(v.direction == SLUICE_DIRECTION_OUTGOING && strcmp(v.direction_reason, "door") == 0);

  /* Top senders of a level. */
  json = NULL;
  CHECK(sluice_engine_top_json(e, S("mailbox"), S("messages"), S("1h"), 5, kT0, &json, NULL) ==
        SLUICE_OK);
  CHECK(json != NULL && strstr(json, "\"entity\":\"a@acme.example\"") != NULL);
  sluice_free(json);
  err = NULL;
  CHECK(sluice_engine_top_json(e, S("nope"), S(""), S(""), 5, kT0, &json, &err) ==
        SLUICE_INVALID_ARGUMENT);
  CHECK(err != NULL && strstr(err, "unknown level") != NULL);
  sluice_free(err);
  err = NULL;
  CHECK(sluice_engine_top_json(e, S("mailbox"), S("apples"), S(""), 5, kT0, &json, &err) ==
        SLUICE_INVALID_ARGUMENT);
  sluice_free(err);
  err = NULL;
  CHECK(sluice_engine_top_json(e, S("mailbox"), S(""), S("1q"), 5, kT0, &json, &err) ==
        SLUICE_INVALID_ARGUMENT);
  sluice_free(err);
  CHECK(sluice_engine_top_json(NULL, S("mailbox"), S(""), S(""), 5, kT0, &json, NULL) ==
        SLUICE_INVALID_ARGUMENT);

  /* Explain counts nothing. */
  ev = Rcpt("x1", "203.0.113.9", "a@acme.example");
  json = NULL;
  CHECK(sluice_engine_explain_json(e, &ev, kT0, &json, NULL) == SLUICE_OK);
  CHECK(json != NULL && strstr(json, "\"direction\":\"inbound\"") != NULL);
  CHECK(strstr(json, "\"identity\":\"203.0.113.9\"") != NULL);
  CHECK(strstr(json, "client_ip") != NULL);
  sluice_free(json);

  /* AUTH results. */
  CHECK(sluice_engine_auth(e, S("198.51.100.1"), S("alice"), 1, kT0, &v) == SLUICE_OK);
  CHECK(v.admitted == 1);
  CHECK(sluice_engine_auth(e, S("198.51.100.1"), S("alice"), 0, kT0, &v) == SLUICE_OK);

  /* Reload: a bad config is refused with its position; a good one applies. */
  err = NULL;
  CHECK(sluice_engine_reload(e, S("level { name: \"nope\" }"), &err) == SLUICE_CONFIG_ERROR);
  CHECK(err != NULL && strstr(err, "<config>:1:") != NULL);
  sluice_free(err);
  CHECK(sluice_engine_reload(e, S(kConfig), NULL) == SLUICE_OK);
  CHECK(sluice_engine_maintain(e, kT0) == SLUICE_OK);
  CHECK(sluice_engine_maintain(e, 0) == SLUICE_OK); /* the clock */

  /* Bad arguments. */
  sluice_event_t bad = Rcpt("b1", "192.0.2.10", "a@acme.example");
  bad.struct_size = 8;
  CHECK(sluice_engine_evaluate(e, &bad, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  bad = Rcpt("b1", "192.0.2.10", "a@acme.example");
  bad.stage = 42;
  CHECK(sluice_engine_evaluate(e, &bad, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  sluice_verdict_t small = SLUICE_INIT_VERDICT;
  small.struct_size = 4;
  ev = Rcpt("b2", "192.0.2.10", "a@acme.example");
  CHECK(sluice_engine_evaluate(e, &ev, kT0, &small) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_evaluate(NULL, &ev, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_evaluate(e, NULL, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_evaluate(e, &ev, kT0, NULL) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_abort(NULL, S("t"), kT0) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_auth(NULL, S("1.2.3.4"), S("u"), 1, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_maintain(NULL, kT0) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_reload(NULL, S(kConfig), NULL) == SLUICE_INVALID_ARGUMENT);
  err = NULL;
  CHECK(sluice_engine_usage_json(e, S(""), kT0, &json, &err) == SLUICE_INVALID_ARGUMENT);
  CHECK(err != NULL);
  sluice_free(err);
  CHECK(sluice_engine_usage_json(e, S("a@acme.example"), kT0, NULL, NULL) ==
        SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_engine_explain_json(e, NULL, kT0, &json, NULL) == SLUICE_INVALID_ARGUMENT);
  sluice_engine_close(e);
  sluice_engine_close(NULL);
}

static sluice_request_t Msg(const char* sender) {
  sluice_request_t r = SLUICE_INIT_REQUEST;
  r.sender = sender;
  r.sender_len = strlen(sender);
  return r;
}

static void TestLimiter(void) {
  sluice_limiter_t* l = NULL;
  char* err = NULL;
  CHECK(sluice_limiter_open(S("level {"), NULL, &l, &err) == SLUICE_CONFIG_ERROR);
  CHECK(l == NULL && err != NULL);
  sluice_free(err);
  CHECK(sluice_limiter_open(S(kConfig), NULL, NULL, NULL) == SLUICE_INVALID_ARGUMENT);
  sluice_options_t* o = sluice_options_create();
  sluice_options_set_leases(o, 0);
  CHECK(sluice_limiter_open(S(kConfig), o, &l, NULL) == SLUICE_OK && l != NULL);
  sluice_options_destroy(o);

  sluice_verdict_t v = SLUICE_INIT_VERDICT;
  sluice_request_t r = Msg("m@acme.example");
  CHECK(sluice_limiter_check_and_charge(l, &r, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(sluice_limiter_check_and_charge(l, &r, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(sluice_limiter_check_and_charge(l, &r, kT0, &v) == SLUICE_OK);
  CHECK(!v.admitted && strcmp(v.level, "mailbox") == 0 && v.usage == 2 && v.limit == 2);
  CHECK(strstr(v.text, "(m@acme.example)") != NULL);
  /* Inbound: only the client_ip level (3 an hour). */
  r.inbound = 1;
  r.client_ip = "203.0.113.9";
  r.client_ip_len = strlen(r.client_ip);
  for (int i = 0; i < 3; ++i) {
    CHECK(sluice_limiter_check_and_charge(l, &r, kT0, &v) == SLUICE_OK && v.admitted);
  }
  CHECK(sluice_limiter_check_and_charge(l, &r, kT0, &v) == SLUICE_OK);
  CHECK(!v.admitted && strcmp(v.level, "client_ip") == 0);

  /* Transactions: reserve twice the same recipient (one charge), commit. */
  sluice_request_t t = Msg("t@acme.example");
  CHECK(sluice_limiter_reserve(l, S("x1"), S("r1"), &t, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(sluice_limiter_reserve(l, S("x1"), S("r1"), &t, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(sluice_limiter_commit(l, S("x1"), 100, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(sluice_limiter_reserve(l, S("x2"), S("r1"), &t, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(sluice_limiter_release(l, S("x2"), kT0) == SLUICE_OK);
  CHECK(sluice_limiter_reserve(l, S("x3"), S("r1"), &t, kT0, &v) == SLUICE_OK && v.admitted);
  CHECK(sluice_limiter_reserve(l, S("x4"), S("r1"), &t, kT0, &v) == SLUICE_OK && !v.admitted);

  /* Bad arguments. */
  sluice_request_t bad = Msg("a@b");
  bad.struct_size = 3;
  CHECK(sluice_limiter_check_and_charge(l, &bad, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_limiter_check_and_charge(NULL, &r, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_limiter_check_and_charge(l, &r, kT0, NULL) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_limiter_reserve(l, NULL, 0, S("r"), &t, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_limiter_commit(NULL, S("x"), 1, kT0, &v) == SLUICE_INVALID_ARGUMENT);
  CHECK(sluice_limiter_release(l, NULL, 0, kT0) == SLUICE_INVALID_ARGUMENT);
  sluice_limiter_close(l);
  sluice_limiter_close(NULL);
}

static void TestFingerprints(void) {
  static const char kA[] =
      "Subject: offer\r\n\r\nDear Alice, your invoice 12345 is ready at "
      "https://pay.example.com/x?id=1 today. Best regards, the billing team of example.";
  static const char kB[] =
      "Subject: offer\r\n\r\nDear Bob, your invoice 67890 is ready at "
      "https://pay.example.com/x?id=2 today. Best regards, the billing team of example.";
  static const char kC[] =
      "Subject: hi\r\n\r\nLunch on Friday? The new place near the station has good "
      "noodles and we could walk there after the meeting.";
  sluice_fingerprinter_t* f = sluice_fingerprinter_create();
  CHECK(f != NULL);
  sluice_fingerprinter_begin(f);
  sluice_fingerprinter_feed(f, kA, 20); /* in chunks */
  sluice_fingerprinter_feed(f, kA + 20, sizeof(kA) - 1 - 20);
  sluice_fingerprint_t* a = sluice_fingerprinter_finish(f);
  sluice_fingerprinter_begin(f);
  sluice_fingerprinter_feed(f, S(kB));
  sluice_fingerprint_t* b = sluice_fingerprinter_finish(f);
  sluice_fingerprinter_begin(f);
  sluice_fingerprinter_feed(f, S(kC));
  sluice_fingerprint_t* c = sluice_fingerprinter_finish(f);
  CHECK(a != NULL && b != NULL && c != NULL);
  CHECK(sluice_fingerprint_same_template(a, b) == 1);
  CHECK(sluice_fingerprint_same_template(a, c) == 0);
  CHECK(sluice_fingerprint_similarity(a, b) > 0.9);
  CHECK(sluice_fingerprint_similarity(a, c) < 0.3);
  uint8_t da[16], db[16], dc[16];
  sluice_fingerprint_digest(a, da);
  sluice_fingerprint_digest(b, db);
  sluice_fingerprint_digest(c, dc);
  CHECK(memcmp(da, db, 16) == 0 && memcmp(da, dc, 16) != 0);
  sluice_fingerprint_digest(NULL, dc);
  CHECK(dc[0] == 0 && dc[15] == 0);
  CHECK(sluice_fingerprint_link_host(a, 0) != NULL &&
        strcmp(sluice_fingerprint_link_host(a, 0), "pay.example.com") == 0);
  CHECK(sluice_fingerprint_link_host(a, 1) == NULL);
  CHECK(sluice_fingerprint_link_host(c, 0) == NULL);
  CHECK(sluice_fingerprint_link_host(NULL, 0) == NULL);
  CHECK(sluice_fingerprint_similarity(NULL, a) == 0);
  CHECK(sluice_fingerprint_same_template(a, NULL) == 0);
  CHECK(sluice_fingerprinter_finish(NULL) == NULL);
  sluice_fingerprinter_feed(NULL, S("x"));
  sluice_fingerprinter_begin(NULL);
  sluice_fingerprint_destroy(a);
  sluice_fingerprint_destroy(b);
  sluice_fingerprint_destroy(c);
  sluice_fingerprint_destroy(NULL);
  sluice_fingerprinter_destroy(f);
  sluice_fingerprinter_destroy(NULL);
}

/* Notices: one per entity, rule and window, with what tripped; none
 * after the callback is removed. */
typedef struct {
  int count;
  sluice_notice_t last;
} NoticeLog;

static void OnNotice(void* arg, const sluice_notice_t* n) {
  NoticeLog* log = (NoticeLog*)arg;
  log->count++;
  log->last = *n;
}

static void TestNotices(void) {
  sluice_engine_t* e = NULL;
  CHECK(sluice_engine_open(S(kConfig), NULL, &e, NULL) == SLUICE_OK);
  CHECK(sluice_engine_set_notice_callback(NULL, OnNotice, NULL) == SLUICE_INVALID_ARGUMENT);
  NoticeLog log;
  memset(&log, 0, sizeof(log));
  CHECK(sluice_engine_set_notice_callback(e, OnNotice, &log) == SLUICE_OK);
  sluice_verdict_t v = SLUICE_INIT_VERDICT;
  char txn[16];
  for (int i = 0; i < 5; ++i) { /* limit 2: three refusals, one notice */
    snprintf(txn, sizeof(txn), "n%d", i);
    sluice_event_t ev = Rcpt(txn, "192.0.2.7", "b@acme.example");
    CHECK(sluice_engine_evaluate(e, &ev, kT0 + i, &v) == SLUICE_OK);
    CHECK(v.admitted == (i < 2));
  }
  CHECK(log.count == 1);
  CHECK(log.last.struct_size == sizeof(sluice_notice_t));
  CHECK(strcmp(log.last.source, "limit") == 0 && strcmp(log.last.level, "mailbox") == 0);
  CHECK(strcmp(log.last.entity, "b@acme.example") == 0);
  CHECK(strcmp(log.last.metric, "messages") == 0 && log.last.window_seconds == 3600);
  CHECK(log.last.limit == 2 && log.last.action == SLUICE_ACTION_DEFER && log.last.shadow == 0);
  CHECK(log.last.time_ms == kT0 + 2);
  CHECK(strstr(log.last.text, "b@acme.example") != NULL);
  /* Another mailbox trips: a second notice. Removed: no more. */
  for (int i = 0; i < 3; ++i) {
    snprintf(txn, sizeof(txn), "m%d", i);
    sluice_event_t ev = Rcpt(txn, "192.0.2.8", "c@acme.example");
    CHECK(sluice_engine_evaluate(e, &ev, kT0 + i, &v) == SLUICE_OK);
  }
  CHECK(log.count == 2 && strcmp(log.last.entity, "c@acme.example") == 0);
  CHECK(sluice_engine_set_notice_callback(e, NULL, NULL) == SLUICE_OK);
  for (int i = 0; i < 3; ++i) {
    snprintf(txn, sizeof(txn), "k%d", i);
    sluice_event_t ev = Rcpt(txn, "192.0.2.9", "d@acme.example");
    CHECK(sluice_engine_evaluate(e, &ev, kT0 + i, &v) == SLUICE_OK);
  }
  CHECK(log.count == 2);
  sluice_engine_close(e);
}

int main(void) {
  TestVersionAndStatus();
  TestOpenErrors();
  TestEngine();
  TestLimiter();
  TestFingerprints();
  TestNotices();
  if (failures == 0) printf("sluice_c_test: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
