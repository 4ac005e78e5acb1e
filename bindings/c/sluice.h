/* sluice.h: the C ABI of sluice, a rate-limit and reputation library for
 * mail servers. C11; no C++ type, exception or protobuf crosses it.
 *
 * Conventions (as LevelDB's c.h and zstd):
 *   - Opaque handles with create/destroy pairs: sluice_options_t,
 *     sluice_engine_t.
 *   - Strings are a pointer and a length (need not be NUL-terminated);
 *     booleans are uint8_t (0 or 1).
 *   - Functions that can fail return a sluice_status; on failure, if errmsg
 *     is not NULL, *errmsg receives a message owned by the caller (release
 *     it with sluice_free). Config errors keep their "FILE:LINE:COLUMN: ".
 *   - Result structs are the caller's and begin with their own size
 *     (struct_size): set it to sizeof the struct you compiled against (the
 *     SLUICE_INIT_* macros do); newer libraries fill only what you know.
 *   - Memory the library hands out (messages, JSON) is released with
 *     sluice_free.
 *   - Time: `now_ms` is Unix time in milliseconds; 0 takes the clock.
 *
 * Thread safety: every sluice_engine_* function is thread-safe (one engine
 * serves all threads). Options objects are not: set them up in one thread.
 * Fork safety: an engine may be opened before fork() only if no other
 * thread runs meanwhile; a process that forks per connection (Exim) should
 * open its engine in each child, with leases off (sluice_options_set_leases
 * 0), so counts on the shared table stay exact.
 *
 * Values of every enum below are pinned forever: new ones are only added.
 */
#ifndef SLUICE_H_
#define SLUICE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SLUICE_EXPORT __attribute__((visibility("default")))
#else
#define SLUICE_EXPORT
#endif

#define SLUICE_VERSION_MAJOR 0
#define SLUICE_VERSION_MINOR 1
#define SLUICE_VERSION_PATCH 0
#define SLUICE_VERSION_NUMBER \
  (SLUICE_VERSION_MAJOR * 10000 + SLUICE_VERSION_MINOR * 100 + SLUICE_VERSION_PATCH)

/* The library's version (that of libsluice.so, which may be newer than the
 * header you compiled against). Thread-safe. */
SLUICE_EXPORT unsigned sluice_version_number(void);
SLUICE_EXPORT const char* sluice_version_string(void); /* static storage */

typedef enum sluice_status {
  SLUICE_OK = 0,
  SLUICE_INVALID_ARGUMENT = 1,    /* a NULL handle, a bad size, a bad value */
  SLUICE_CONFIG_ERROR = 2,        /* the config does not parse or validate */
  SLUICE_NOT_FOUND = 3,           /* a file that does not exist */
  SLUICE_PERMISSION_DENIED = 4,   /* a file that may not be used */
  SLUICE_FAILED_PRECONDITION = 5, /* e.g. a table of another size, locked */
  SLUICE_RESOURCE_EXHAUSTED = 6,  /* out of memory or disk */
  SLUICE_IO_ERROR = 7,            /* a system call failed */
  SLUICE_INTERNAL = 8
} sluice_status;

/* A status's name ("SLUICE_CONFIG_ERROR"); static storage. */
SLUICE_EXPORT const char* sluice_status_name(sluice_status s);

/* Releases memory the library handed out (messages, JSON). NULL is fine. */
SLUICE_EXPORT void sluice_free(void* p);

/* ---- Options --------------------------------------------------------------- */

typedef struct sluice_options_t sluice_options_t;

SLUICE_EXPORT sluice_options_t* sluice_options_create(void);
SLUICE_EXPORT void sluice_options_destroy(sluice_options_t* o);
/* The counter table file (overrides the config's table path). */
SLUICE_EXPORT void sluice_options_set_table_path(sluice_options_t* o, const char* path, size_t len);
/* Per-thread leases on busy counters (default 1). Processes that live for
 * one message or connection set 0: counts stay exact. */
SLUICE_EXPORT void sluice_options_set_leases(sluice_options_t* o, uint8_t on);

/* ---- The engine ------------------------------------------------------------ */

typedef struct sluice_engine_t sluice_engine_t;

/* Opens an engine from config text (protobuf text format; see
 * ratelimit/config.proto) or from a file. options may be NULL. */
SLUICE_EXPORT sluice_status sluice_engine_open(const char* config, size_t config_len,
                                               const sluice_options_t* options,
                                               sluice_engine_t** engine, char** errmsg);
SLUICE_EXPORT sluice_status sluice_engine_open_file(const char* path, size_t path_len,
                                                    const sluice_options_t* options,
                                                    sluice_engine_t** engine, char** errmsg);
/* Closes an engine (NULL is fine). No call on it may run meanwhile. */
SLUICE_EXPORT void sluice_engine_close(sluice_engine_t* engine);
/* Swaps in a new config; on error the running one stays. */
SLUICE_EXPORT sluice_status sluice_engine_reload(sluice_engine_t* engine, const char* config,
                                                 size_t config_len, char** errmsg);

/* SMTP stages (pinned values). */
typedef enum sluice_stage {
  SLUICE_STAGE_CONNECT = 0,
  SLUICE_STAGE_HELO = 1,
  SLUICE_STAGE_MAIL = 2,
  SLUICE_STAGE_RCPT = 3,
  SLUICE_STAGE_DATA = 4,
  SLUICE_STAGE_END_OF_MESSAGE = 5,
  SLUICE_STAGE_OTHER = 6
} sluice_stage;

/* Whose mail it is (pinned values). */
typedef enum sluice_direction {
  SLUICE_DIRECTION_UNKNOWN = 0, /* in an event: let the engine decide */
  SLUICE_DIRECTION_INBOUND = 1,
  SLUICE_DIRECTION_OUTGOING = 2 /* in an event: local submission */
} sluice_direction;

/* What to do (pinned values). */
typedef enum sluice_action {
  SLUICE_ACTION_ACCEPT = 0,
  SLUICE_ACTION_DEFER = 1,  /* 4xx */
  SLUICE_ACTION_REJECT = 2, /* 5xx */
  SLUICE_ACTION_HOLD = 3,
  SLUICE_ACTION_DISCARD = 4,
  SLUICE_ACTION_NOTIFY = 5 /* accept; an event only */
} sluice_action;

/* One SMTP stage of one transaction. Strings: pointer + length, read only
 * during the call. */
typedef struct sluice_event_t {
  size_t struct_size; /* sizeof(sluice_event_t) */
  uint32_t stage;     /* sluice_stage */
  uint32_t direction; /* sluice_direction: the door's word, or UNKNOWN */
  const char* transaction;
  size_t transaction_len;
  const char* client_address;
  size_t client_address_len;
  const char* helo;
  size_t helo_len;
  const char* sasl_username;
  size_t sasl_username_len;
  const char* sender;
  size_t sender_len;
  const char* recipient;
  size_t recipient_len;
  const char* script; /* X-PHP-Originating-Script or similar */
  size_t script_len;
  uint64_t size;            /* at END_OF_MESSAGE: the message's bytes */
  uint64_t recipient_count; /* at END_OF_MESSAGE: recipients accepted (0: unknown) */
  uint32_t server_port;     /* the port the client connected to (0: unknown) */
  /* At END_OF_MESSAGE: the body's fingerprint (sluice_fingerprinter_*), for
   * the near-duplicate and campaign detectors, with the hosts of its links
   * for the domain lists that check BODY_URLS; NULL: the size alone. */
  const struct sluice_fingerprint_t* fingerprint;
} sluice_event_t;

/* C: sluice_event_t e = SLUICE_INIT_EVENT; (C++: value-initialize, then set
 * struct_size.) */
#ifndef __cplusplus
#define SLUICE_INIT_EVENT \
  { .struct_size = sizeof(sluice_event_t), .stage = SLUICE_STAGE_OTHER }
#endif

/* The engine's answer. Texts are NUL-terminated and cut to fit. */
typedef struct sluice_verdict_t {
  size_t struct_size; /* sizeof(sluice_verdict_t) */
  uint32_t action;    /* sluice_action */
  uint8_t admitted;   /* the message may go (accept, notify, shadow) */
  uint8_t shadow;     /* a shadow or notify rule tripped */
  uint8_t tripped;    /* something tripped (source is set) */
  uint8_t reserved;   /* 0 */
  int32_t smtp_code;  /* 250, 451, 550, ... */
  char enhanced_status[16];
  char text[512];
  char source[32];  /* "limit", a detector's name, "dnsbl", ...; "" if none */
  char level[16];   /* for "limit": "server", "mailbox", ... */
  char entity[256]; /* what tripped: mailbox, domain, IP, user */
  char identity[256];
  uint64_t limit;
  uint64_t usage;
  int64_t retry_after_ms; /* -1: never (the request can never pass) */
  uint32_t direction;     /* sluice_direction the engine gave the message */
  char direction_reason[32];
} sluice_verdict_t;

#ifndef __cplusplus
#define SLUICE_INIT_VERDICT \
  { .struct_size = sizeof(sluice_verdict_t) }
#endif

/* Evaluates one stage and fills *verdict. Thread-safe; may wait for DNS at
 * most the config's reputation budget. */
SLUICE_EXPORT sluice_status sluice_engine_evaluate(sluice_engine_t* engine,
                                                   const sluice_event_t* event, int64_t now_ms,
                                                   sluice_verdict_t* verdict);
/* The client aborted the transaction: its reservations go back. */
SLUICE_EXPORT sluice_status sluice_engine_abort(sluice_engine_t* engine, const char* transaction,
                                                size_t transaction_len, int64_t now_ms);
/* An AUTH result (brute force, compromised-account signs). */
SLUICE_EXPORT sluice_status sluice_engine_auth(sluice_engine_t* engine, const char* client_address,
                                               size_t client_address_len, const char* user,
                                               size_t user_len, uint8_t ok, int64_t now_ms,
                                               sluice_verdict_t* verdict);
/* Housekeeping to call now and then (a minute): ends stale transactions,
 * sweeps expired counters, frees replaced configs. */
SLUICE_EXPORT sluice_status sluice_engine_maintain(sluice_engine_t* engine, int64_t now_ms);

/* Reports as JSON (a NUL-terminated string; release with sluice_free).
 * Usage of an entity: "a@b.example", "b.example" or "LEVEL:NAME". */
SLUICE_EXPORT sluice_status sluice_engine_usage_json(sluice_engine_t* engine, const char* entity,
                                                     size_t entity_len, int64_t now_ms, char** json,
                                                     char** errmsg);
/* The top entities of a level ("mailbox", "domain", "subscription", ...)
 * by a metric ("messages", "recipients", "bytes") over a window ("1h"; empty:
 * the level's first window), at most n of them: `top` of sluice's CLI. */
SLUICE_EXPORT sluice_status sluice_engine_top_json(sluice_engine_t* engine, const char* level,
                                                   size_t level_len, const char* metric,
                                                   size_t metric_len, const char* window,
                                                   size_t window_len, uint32_t n, int64_t now_ms,
                                                   char** json, char** errmsg);
/* What the engine makes of a message (counts nothing): direction, why,
 * identity and the rules on its path with their usage. */
SLUICE_EXPORT sluice_status sluice_engine_explain_json(sluice_engine_t* engine,
                                                       const sluice_event_t* event, int64_t now_ms,
                                                       char** json, char** errmsg);

/* ---- Notices ----------------------------------------------------------------
 * What the engine reports beside its verdicts: a limit or an abuse
 * detector tripped (once per entity, rule and window, however many
 * messages it refuses), or a DNS list was suspended. For notifications
 * (e-mail to the administrator, a hosting panel's alert). */

typedef struct sluice_notice_t {
  size_t struct_size; /* sizeof the library's struct: read only fields below it */
  int64_t time_ms;    /* Unix time in milliseconds */
  uint32_t action;    /* the rule's sluice_action */
  uint8_t shadow;     /* the rule is in shadow mode (mail passed) */
  uint8_t reserved[3];
  char source[32]; /* "limit", a detector's name ("auth_failures_per_ip", ...), "dnsbl" */
  char level[16];  /* for "limit": "mailbox", "domain", ... */
  char entity[256];
  char metric[16]; /* for "limit": "messages", "recipients", "bytes" */
  int64_t window_seconds;
  uint64_t limit;
  uint64_t usage;
  char text[512]; /* one line for a person */
} sluice_notice_t;

/* A notice callback: `notice` is valid only during the call. */
typedef void (*sluice_notice_fn)(void* arg, const sluice_notice_t* notice);

/* Sets the callback that receives the engine's notices (fn NULL: none),
 * replacing the previous one. It runs on the thread whose call tripped,
 * during that call, one notice at a time across threads; it should return
 * quickly (queue the work) and must not call
 * sluice_engine_set_notice_callback. Thread-safe. */
SLUICE_EXPORT sluice_status sluice_engine_set_notice_callback(sluice_engine_t* engine,
                                                              sluice_notice_fn fn, void* arg);

/* ---- The limiter alone ------------------------------------------------------
 * The hierarchical limits without the engine's direction, abuse detectors
 * and DNS lists: for callers that decide whose mail it is themselves. */

typedef struct sluice_limiter_t sluice_limiter_t;

SLUICE_EXPORT sluice_status sluice_limiter_open(const char* config, size_t config_len,
                                                const sluice_options_t* options,
                                                sluice_limiter_t** limiter, char** errmsg);
SLUICE_EXPORT void sluice_limiter_close(sluice_limiter_t* limiter);

/* One message (or one recipient, with reserve). */
typedef struct sluice_request_t {
  size_t struct_size; /* sizeof(sluice_request_t) */
  const char* sender; /* the mailbox */
  size_t sender_len;
  const char* sasl_user;
  size_t sasl_user_len;
  const char* client_ip;
  size_t client_ip_len;
  const char* script;
  size_t script_len;
  const char* list;
  size_t list_len;
  uint8_t inbound; /* mail from the internet: only the client_ip level counts it */
  uint64_t messages;
  uint64_t recipients;
  uint64_t bytes; /* 0: unknown yet */
} sluice_request_t;

#ifndef __cplusplus
#define SLUICE_INIT_REQUEST \
  { .struct_size = sizeof(sluice_request_t), .messages = 1, .recipients = 1 }
#endif

/* All-or-nothing over every level of the request's path. Thread-safe,
 * lock-free; *verdict says what tripped (source "limit") if anything. */
SLUICE_EXPORT sluice_status sluice_limiter_check_and_charge(sluice_limiter_t* limiter,
                                                            const sluice_request_t* request,
                                                            int64_t now_ms,
                                                            sluice_verdict_t* verdict);
/* Transactions: reserve an item (a recipient; repeating one charges
 * nothing), commit with the bytes, or release. Thread-safe. */
SLUICE_EXPORT sluice_status sluice_limiter_reserve(sluice_limiter_t* limiter,
                                                   const char* transaction, size_t transaction_len,
                                                   const char* item, size_t item_len,
                                                   const sluice_request_t* request, int64_t now_ms,
                                                   sluice_verdict_t* verdict);
SLUICE_EXPORT sluice_status sluice_limiter_commit(sluice_limiter_t* limiter,
                                                  const char* transaction, size_t transaction_len,
                                                  uint64_t bytes, int64_t now_ms,
                                                  sluice_verdict_t* verdict);
SLUICE_EXPORT sluice_status sluice_limiter_release(sluice_limiter_t* limiter,
                                                   const char* transaction, size_t transaction_len,
                                                   int64_t now_ms);

/* ---- Fingerprints ------------------------------------------------------------
 * A message's content fingerprint (normalised body: template digest and
 * MinHash sketch), fed in chunks. A fingerprinter is for one thread at a
 * time; fingerprints are values (thread-safe to read). */

typedef struct sluice_fingerprinter_t sluice_fingerprinter_t;
typedef struct sluice_fingerprint_t sluice_fingerprint_t;

SLUICE_EXPORT sluice_fingerprinter_t* sluice_fingerprinter_create(void);
SLUICE_EXPORT void sluice_fingerprinter_destroy(sluice_fingerprinter_t* f);
/* Starts a message; feed its raw bytes (headers and body) in any chunks. */
SLUICE_EXPORT void sluice_fingerprinter_begin(sluice_fingerprinter_t* f);
SLUICE_EXPORT void sluice_fingerprinter_feed(sluice_fingerprinter_t* f, const char* chunk,
                                             size_t len);
/* Ends the message: a new fingerprint (release with
 * sluice_fingerprint_destroy), or NULL when out of memory. */
SLUICE_EXPORT sluice_fingerprint_t* sluice_fingerprinter_finish(sluice_fingerprinter_t* f);
SLUICE_EXPORT void sluice_fingerprint_destroy(sluice_fingerprint_t* fp);
/* The 128-bit template digest (equal for messages that differ only in
 * per-recipient tokens); digest[16] is written. */
SLUICE_EXPORT void sluice_fingerprint_digest(const sluice_fingerprint_t* fp, uint8_t digest[16]);
/* Estimated Jaccard similarity of two messages' contents, in [0, 1]. */
SLUICE_EXPORT double sluice_fingerprint_similarity(const sluice_fingerprint_t* a,
                                                   const sluice_fingerprint_t* b);
/* 1 if both have the same template (and are not empty). */
SLUICE_EXPORT uint8_t sluice_fingerprint_same_template(const sluice_fingerprint_t* a,
                                                       const sluice_fingerprint_t* b);
/* The i-th distinct host of the message's links (decoded from
 * quoted-printable and base64, text and HTML; IP literals in any base as
 * dotted IPv4, IDN as punycode; at most 16), NUL-terminated and valid while
 * fp lives; NULL past the last. */
SLUICE_EXPORT const char* sluice_fingerprint_link_host(const sluice_fingerprint_t* fp, size_t i);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLUICE_H_ */
