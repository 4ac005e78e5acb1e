// The C ABI (sluice.h) over the one engine (bindings/engine/policy_engine.h).
// Thin: every call converts its arguments and calls the C++ API; nothing of
// C++ (exceptions, protobuf, absl) crosses the boundary.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bindings/c/sluice.h"
#include "bindings/engine/message_body.h"
#include "bindings/engine/policy_engine.h"
#include "bindings/engine/smtp_event.h"
#include "bindings/engine/version.h"
#include "ratelimit/config.h"
#include "ratelimit/config.pb.h"
#include "ratelimit/limiter.h"
#include "ratelimit/report.h"
#include "reputation/content/fingerprint.h"

struct sluice_options_t {
  std::string table_path;
  bool leases = true;
};

struct sluice_engine_t {
  std::unique_ptr<sluice::PolicyEngine> engine;
  // The notice callback (sluice_engine_set_notice_callback).
  std::mutex notice_mu;
  sluice_notice_fn notice_fn = nullptr;  // guarded by notice_mu
  void* notice_arg = nullptr;            // guarded by notice_mu
  std::once_flag notice_sink;            // the engine's sink, added at the first set
};

struct sluice_limiter_t {
  std::unique_ptr<sluice::Limiter> limiter;
};

struct sluice_fingerprinter_t {
  sluice::MessageBody body;
};

struct sluice_fingerprint_t {
  sluice::Fingerprint fp;
  std::vector<sluice::UrlHost> urls;
};

namespace {

using sluice::Direction;
using sluice::SmtpEvent;
using sluice::Stage;
using sluice::Verdict;

absl::string_view View(const char* p, size_t n) {
  return p == nullptr ? absl::string_view() : absl::string_view(p, n);
}

// A copy the caller releases with sluice_free (NUL-terminated).
char* Dup(absl::string_view s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) return nullptr;
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  out[s.size()] = 0;
  return out;
}

void SetError(char** errmsg, absl::string_view msg) {
  if (errmsg != nullptr) *errmsg = Dup(msg);
}

sluice_status ToStatus(const absl::Status& s, bool config) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return SLUICE_OK;
    case absl::StatusCode::kInvalidArgument:
      return config ? SLUICE_CONFIG_ERROR : SLUICE_INVALID_ARGUMENT;
    case absl::StatusCode::kNotFound:
      return SLUICE_NOT_FOUND;
    case absl::StatusCode::kPermissionDenied:
      return SLUICE_PERMISSION_DENIED;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kDataLoss:
      return SLUICE_FAILED_PRECONDITION;
    case absl::StatusCode::kResourceExhausted:
      return SLUICE_RESOURCE_EXHAUSTED;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
      return SLUICE_IO_ERROR;
    default:
      return SLUICE_INTERNAL;
  }
}

sluice_status Fail(const absl::Status& s, bool config, char** errmsg) {
  SetError(errmsg, s.message());
  return ToStatus(s, config);
}

absl::Time When(int64_t now_ms) { return now_ms == 0 ? absl::Now() : absl::FromUnixMillis(now_ms); }

// A JSON string literal of s (quotes, backslashes and control bytes
// escaped; other bytes as they are).
std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

void Copy(absl::string_view s, char* out, size_t cap) {
  const size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
  if (n > 0) std::memcpy(out, s.data(), n);
  out[n] = 0;
}

// The fields of an event the caller's struct has (it may be an older,
// shorter one).
__attribute__((always_inline)) inline bool ReadEvent(const sluice_event_t* in, SmtpEvent* e) {
  if (in == nullptr || in->struct_size < offsetof(sluice_event_t, server_port)) return false;
  if (in->stage > SLUICE_STAGE_OTHER || in->direction > SLUICE_DIRECTION_OUTGOING) return false;
  e->stage = static_cast<Stage>(in->stage);
  e->direction = static_cast<Direction>(in->direction);
  e->transaction = View(in->transaction, in->transaction_len);
  e->client_address = View(in->client_address, in->client_address_len);
  e->helo = View(in->helo, in->helo_len);
  e->sasl_username = View(in->sasl_username, in->sasl_username_len);
  e->sender = View(in->sender, in->sender_len);
  e->recipient = View(in->recipient, in->recipient_len);
  e->script = View(in->script, in->script_len);
  e->size = in->size;
  e->recipient_count = in->recipient_count;
  if (in->struct_size >= offsetof(sluice_event_t, server_port) + sizeof(in->server_port)) {
    e->server_port = in->server_port;
  }
  if (in->struct_size >= offsetof(sluice_event_t, fingerprint) + sizeof(in->fingerprint) &&
      in->fingerprint != nullptr) {
    e->fingerprint = &in->fingerprint->fp;
    e->urls = &in->fingerprint->urls;
  }
  return true;
}

// Fills the caller's verdict: every field is written (no memset of its
// 1.2 KB: a hot path), texts NUL-terminated.
// An accepted verdict with nothing tripped, the common case: every field
// written, no text but the identity and the direction's reason.
__attribute__((always_inline)) inline sluice_status WriteAccepted(absl::string_view identity,
                                                                  uint32_t direction,
                                                                  absl::string_view reason,
                                                                  sluice_verdict_t* out) {
  out->action = SLUICE_ACTION_ACCEPT;
  out->admitted = 1;
  out->shadow = out->tripped = out->reserved = 0;
  out->smtp_code = 250;
  std::memcpy(out->enhanced_status, "2.0.0", 6);
  out->text[0] = out->source[0] = out->level[0] = out->entity[0] = 0;
  Copy(identity, out->identity, sizeof(out->identity));
  out->limit = out->usage = 0;
  out->retry_after_ms = 0;
  out->direction = direction;
  Copy(reason, out->direction_reason, sizeof(out->direction_reason));
  return SLUICE_OK;
}

sluice_status WriteVerdict(const Verdict& v, sluice_verdict_t* out) {
  if (out == nullptr || out->struct_size < sizeof(sluice_verdict_t)) {
    return SLUICE_INVALID_ARGUMENT;  // no older layout exists yet
  }
  if (!v.tripped() && v.action == sluice::Action::kAccept) {
    return WriteAccepted(v.identity, static_cast<uint32_t>(v.direction),
                         sluice::DirectionReasonName(v.direction_reason), out);
  }
  out->action = static_cast<uint32_t>(v.action);
  out->admitted = v.admitted() ? 1 : 0;
  out->shadow = v.shadow ? 1 : 0;
  out->tripped = v.tripped() ? 1 : 0;
  out->reserved = 0;
  out->smtp_code = v.smtp_code;
  Copy(v.enhanced_status, out->enhanced_status, sizeof(out->enhanced_status));
  Copy(v.text, out->text, sizeof(out->text));
  Copy(v.source, out->source, sizeof(out->source));
  Copy(v.source == "limit" ? sluice::LevelName(v.level) : "", out->level, sizeof(out->level));
  Copy(v.entity, out->entity, sizeof(out->entity));
  Copy(v.identity, out->identity, sizeof(out->identity));
  out->limit = v.limit;
  out->usage = v.usage;
  out->retry_after_ms =
      v.retry_after == absl::InfiniteDuration() ? -1 : absl::ToInt64Milliseconds(v.retry_after);
  out->direction = static_cast<uint32_t>(v.direction);
  Copy(sluice::DirectionReasonName(v.direction_reason), out->direction_reason,
       sizeof(out->direction_reason));
  return SLUICE_OK;
}

sluice_status Open(absl::StatusOr<sluice::config::Config> config, const sluice_options_t* options,
                   sluice_engine_t** engine, char** errmsg) {
  if (engine == nullptr) return SLUICE_INVALID_ARGUMENT;
  *engine = nullptr;
  if (!config.ok()) return Fail(config.status(), /*config=*/true, errmsg);
  sluice::PolicyEngine::Options eo;
  if (options != nullptr) eo.table_path = options->table_path;
  eo.leases = options == nullptr || options->leases;
  eo.record_activity = eo.leases;  // a forking caller: nothing to report from
  auto e = sluice::PolicyEngine::Create(*config, absl::Now(), eo);
  if (!e.ok()) return Fail(e.status(), /*config=*/false, errmsg);
  auto* out = new (std::nothrow) sluice_engine_t;
  if (out == nullptr) return SLUICE_RESOURCE_EXHAUSTED;
  out->engine = std::move(*e);
  *engine = out;
  return SLUICE_OK;
}

// The fields of a request the caller's struct has.
// Inlined (as WriteDecision): the hot calls then build the Request in place.
__attribute__((always_inline)) inline bool ReadRequest(const sluice_request_t* in,
                                                       sluice::Request* r) {
  if (in == nullptr || in->struct_size < sizeof(sluice_request_t)) return false;
  r->sender = View(in->sender, in->sender_len);
  r->sasl_user = View(in->sasl_user, in->sasl_user_len);
  r->client_ip = View(in->client_ip, in->client_ip_len);
  r->script = View(in->script, in->script_len);
  r->list = View(in->list, in->list_len);
  r->inbound = in->inbound != 0;
  r->messages = in->messages;
  r->recipients = in->recipients;
  r->bytes = in->bytes;
  return true;
}

__attribute__((always_inline)) inline sluice_status WriteDecision(const sluice::Decision& d,
                                                                  sluice_verdict_t* out) {
  if (!d.tripped()) {  // the common case, written directly (no Verdict built)
    return WriteAccepted("", SLUICE_DIRECTION_UNKNOWN, "", out);
  }
  Verdict v;
  sluice::FromDecision(d, &v);
  return WriteVerdict(v, out);
}

bool VerdictOk(const sluice_verdict_t* v) {
  return v != nullptr && v->struct_size >= sizeof(sluice_verdict_t);
}

}  // namespace

static_assert(SLUICE_VERSION_MAJOR == sluice::kVersionMajor &&
                  SLUICE_VERSION_MINOR == sluice::kVersionMinor &&
                  SLUICE_VERSION_PATCH == sluice::kVersionPatch,
              "sluice.h and bindings/engine/version.h disagree on the version");

extern "C" {

unsigned sluice_version_number(void) { return SLUICE_VERSION_NUMBER; }

const char* sluice_version_string(void) {
  static const std::string v =
      absl::StrCat(SLUICE_VERSION_MAJOR, ".", SLUICE_VERSION_MINOR, ".", SLUICE_VERSION_PATCH);
  return v.c_str();
}

const char* sluice_status_name(sluice_status s) {
  switch (s) {
    case SLUICE_OK:
      return "SLUICE_OK";
    case SLUICE_INVALID_ARGUMENT:
      return "SLUICE_INVALID_ARGUMENT";
    case SLUICE_CONFIG_ERROR:
      return "SLUICE_CONFIG_ERROR";
    case SLUICE_NOT_FOUND:
      return "SLUICE_NOT_FOUND";
    case SLUICE_PERMISSION_DENIED:
      return "SLUICE_PERMISSION_DENIED";
    case SLUICE_FAILED_PRECONDITION:
      return "SLUICE_FAILED_PRECONDITION";
    case SLUICE_RESOURCE_EXHAUSTED:
      return "SLUICE_RESOURCE_EXHAUSTED";
    case SLUICE_IO_ERROR:
      return "SLUICE_IO_ERROR";
    case SLUICE_INTERNAL:
      return "SLUICE_INTERNAL";
  }
  return "SLUICE_UNKNOWN_STATUS";
}

void sluice_free(void* p) { std::free(p); }

sluice_options_t* sluice_options_create(void) { return new (std::nothrow) sluice_options_t; }

void sluice_options_destroy(sluice_options_t* o) { delete o; }

void sluice_options_set_table_path(sluice_options_t* o, const char* path, size_t len) {
  if (o != nullptr) o->table_path = std::string(View(path, len));
}

void sluice_options_set_leases(sluice_options_t* o, uint8_t on) {
  if (o != nullptr) o->leases = on != 0;
}

sluice_status sluice_engine_open(const char* config, size_t config_len,
                                 const sluice_options_t* options, sluice_engine_t** engine,
                                 char** errmsg) {
  if (config == nullptr && config_len != 0) return SLUICE_INVALID_ARGUMENT;
  return Open(sluice::ParseConfigText(View(config, config_len), "<config>"), options, engine,
              errmsg);
}

sluice_status sluice_engine_open_file(const char* path, size_t path_len,
                                      const sluice_options_t* options, sluice_engine_t** engine,
                                      char** errmsg) {
  if (path == nullptr || path_len == 0) return SLUICE_INVALID_ARGUMENT;
  auto config = sluice::LoadConfigFile(std::string(path, path_len));
  if (!config.ok() && absl::IsNotFound(config.status())) {
    if (engine != nullptr) *engine = nullptr;
    return Fail(config.status(), false, errmsg);
  }
  return Open(std::move(config), options, engine, errmsg);
}

void sluice_engine_close(sluice_engine_t* engine) { delete engine; }

sluice_status sluice_engine_set_notice_callback(sluice_engine_t* engine, sluice_notice_fn fn,
                                                void* arg) {
  if (engine == nullptr) return SLUICE_INVALID_ARGUMENT;
  // The sink is added outside notice_mu (a delivery holds the sinks' lock,
  // then takes notice_mu).
  std::call_once(engine->notice_sink, [engine] {
    engine->engine->AddNoticeSink([engine](const sluice::Notice& n) {
      std::lock_guard<std::mutex> lock(engine->notice_mu);
      if (engine->notice_fn == nullptr) return;
      sluice_notice_t out;
      std::memset(&out, 0, sizeof(out));
      out.struct_size = sizeof(out);
      out.time_ms = absl::ToUnixMillis(n.time);
      out.action = static_cast<uint32_t>(n.action);
      out.shadow = n.shadow ? 1 : 0;
      Copy(n.source, out.source, sizeof(out.source));
      Copy(n.source == "limit" ? sluice::LevelName(n.level) : "", out.level, sizeof(out.level));
      Copy(n.entity, out.entity, sizeof(out.entity));
      Copy(n.source == "limit" ? sluice::MetricName(n.metric) : "", out.metric, sizeof(out.metric));
      out.window_seconds = n.window_seconds;
      out.limit = n.limit;
      out.usage = n.usage;
      Copy(n.text, out.text, sizeof(out.text));
      engine->notice_fn(engine->notice_arg, &out);
    });
  });
  std::lock_guard<std::mutex> lock(engine->notice_mu);
  engine->notice_fn = fn;
  engine->notice_arg = arg;
  return SLUICE_OK;
}

sluice_status sluice_engine_reload(sluice_engine_t* engine, const char* config, size_t config_len,
                                   char** errmsg) {
  if (engine == nullptr || (config == nullptr && config_len != 0)) return SLUICE_INVALID_ARGUMENT;
  auto c = sluice::ParseConfigText(View(config, config_len), "<config>");
  if (!c.ok()) return Fail(c.status(), true, errmsg);
  absl::Status s = engine->engine->Reload(*c, absl::Now());
  return s.ok() ? SLUICE_OK : Fail(s, false, errmsg);
}

sluice_status sluice_engine_evaluate(sluice_engine_t* engine, const sluice_event_t* event,
                                     int64_t now_ms, sluice_verdict_t* verdict) {
  SmtpEvent e;
  if (engine == nullptr || verdict == nullptr || !ReadEvent(event, &e)) {
    return SLUICE_INVALID_ARGUMENT;
  }
  if (verdict->struct_size < sizeof(sluice_verdict_t)) return SLUICE_INVALID_ARGUMENT;
  return WriteVerdict(engine->engine->Evaluate(e, When(now_ms)), verdict);
}

sluice_status sluice_engine_abort(sluice_engine_t* engine, const char* transaction,
                                  size_t transaction_len, int64_t now_ms) {
  if (engine == nullptr || transaction == nullptr) return SLUICE_INVALID_ARGUMENT;
  engine->engine->Abort(View(transaction, transaction_len), When(now_ms));
  return SLUICE_OK;
}

sluice_status sluice_engine_auth(sluice_engine_t* engine, const char* client_address,
                                 size_t client_address_len, const char* user, size_t user_len,
                                 uint8_t ok, int64_t now_ms, sluice_verdict_t* verdict) {
  if (engine == nullptr || verdict == nullptr || verdict->struct_size < sizeof(sluice_verdict_t)) {
    return SLUICE_INVALID_ARGUMENT;
  }
  return WriteVerdict(engine->engine->Auth(View(client_address, client_address_len),
                                           View(user, user_len), ok != 0, When(now_ms)),
                      verdict);
}

sluice_status sluice_engine_maintain(sluice_engine_t* engine, int64_t now_ms) {
  if (engine == nullptr) return SLUICE_INVALID_ARGUMENT;
  engine->engine->Maintain(When(now_ms));
  return SLUICE_OK;
}

sluice_status sluice_engine_usage_json(sluice_engine_t* engine, const char* entity,
                                       size_t entity_len, int64_t now_ms, char** json,
                                       char** errmsg) {
  if (engine == nullptr || json == nullptr) return SLUICE_INVALID_ARGUMENT;
  *json = nullptr;
  sluice::Level level;
  std::string name;
  if (!sluice::ParseEntityName(View(entity, entity_len), &level, &name)) {
    SetError(errmsg, "an entity is a mailbox, a domain, an address or LEVEL:NAME");
    return SLUICE_INVALID_ARGUMENT;
  }
  *json = Dup(sluice::ToJson(engine->engine->limiter().Usage(level, name, When(now_ms))));
  return *json == nullptr ? SLUICE_RESOURCE_EXHAUSTED : SLUICE_OK;
}

sluice_status sluice_engine_top_json(sluice_engine_t* engine, const char* level, size_t level_len,
                                     const char* metric, size_t metric_len, const char* window,
                                     size_t window_len, uint32_t n, int64_t now_ms, char** json,
                                     char** errmsg) {
  if (engine == nullptr || json == nullptr) return SLUICE_INVALID_ARGUMENT;
  *json = nullptr;
  sluice::Level lv;
  if (!sluice::ParseLevel(View(level, level_len), &lv)) {
    SetError(errmsg, absl::StrCat("unknown level \"", View(level, level_len), "\""));
    return SLUICE_INVALID_ARGUMENT;
  }
  const absl::string_view m = View(metric, metric_len);
  sluice::Metric mt;
  if (m == "messages" || m.empty()) {
    mt = sluice::Metric::kMessages;
  } else if (m == "recipients") {
    mt = sluice::Metric::kRecipients;
  } else if (m == "bytes") {
    mt = sluice::Metric::kBytes;
  } else {
    SetError(errmsg, absl::StrCat("unknown metric \"", m, "\" (messages, recipients, bytes)"));
    return SLUICE_INVALID_ARGUMENT;
  }
  int64_t window_s = 0;
  if (window_len > 0) {
    auto w = sluice::ParseWindow(View(window, window_len));
    if (!w.ok()) return Fail(w.status(), false, errmsg);
    window_s = *w;
  }
  *json = Dup(sluice::ToJson(engine->engine->limiter().Top(lv, mt, window_s, n, When(now_ms))));
  return *json == nullptr ? SLUICE_RESOURCE_EXHAUSTED : SLUICE_OK;
}

sluice_status sluice_engine_explain_json(sluice_engine_t* engine, const sluice_event_t* event,
                                         int64_t now_ms, char** json, char** errmsg) {
  SmtpEvent e;
  if (engine == nullptr || json == nullptr || !ReadEvent(event, &e)) {
    SetError(errmsg, "a NULL engine, result or event, or an event of a bad size or stage");
    return SLUICE_INVALID_ARGUMENT;
  }
  sluice::config::UsageReport usage;
  const sluice::PolicyEngine::Explanation x = engine->engine->Explain(e, When(now_ms), &usage);
  const std::string out = absl::StrCat("{\"direction\":\"", sluice::DirectionName(x.direction),
                                       "\",\"reason\":\"", sluice::DirectionReasonName(x.reason),
                                       "\",\"identity\":", JsonString(x.identity),
                                       ",\"usage\":", sluice::ToJson(usage), "}");
  *json = Dup(out);
  return *json == nullptr ? SLUICE_RESOURCE_EXHAUSTED : SLUICE_OK;
}

sluice_status sluice_limiter_open(const char* config, size_t config_len,
                                  const sluice_options_t* options, sluice_limiter_t** limiter,
                                  char** errmsg) {
  if (limiter == nullptr || (config == nullptr && config_len != 0)) {
    return SLUICE_INVALID_ARGUMENT;
  }
  *limiter = nullptr;
  auto c = sluice::ParseConfigText(View(config, config_len), "<config>");
  if (!c.ok()) return Fail(c.status(), true, errmsg);
  sluice::Limiter::Options lo;
  if (options != nullptr) {
    lo.lease = options->leases;
    lo.table.huge_pages = options->leases;  // a short-lived process: no huge pages
    if (!options->table_path.empty()) c->mutable_table()->set_path(options->table_path);
  }
  auto l = sluice::Limiter::Create(*c, absl::Now(), lo);
  if (!l.ok()) return Fail(l.status(), false, errmsg);
  auto* out = new (std::nothrow) sluice_limiter_t;
  if (out == nullptr) return SLUICE_RESOURCE_EXHAUSTED;
  out->limiter = std::move(*l);
  *limiter = out;
  return SLUICE_OK;
}

void sluice_limiter_close(sluice_limiter_t* limiter) { delete limiter; }

sluice_status sluice_limiter_check_and_charge(sluice_limiter_t* limiter,
                                              const sluice_request_t* request, int64_t now_ms,
                                              sluice_verdict_t* verdict) {
  sluice::Request r;
  if (limiter == nullptr || !VerdictOk(verdict) || !ReadRequest(request, &r)) {
    return SLUICE_INVALID_ARGUMENT;
  }
  return WriteDecision(limiter->limiter->CheckAndCharge(r, When(now_ms)), verdict);
}

sluice_status sluice_limiter_reserve(sluice_limiter_t* limiter, const char* transaction,
                                     size_t transaction_len, const char* item, size_t item_len,
                                     const sluice_request_t* request, int64_t now_ms,
                                     sluice_verdict_t* verdict) {
  sluice::Request r;
  if (limiter == nullptr || transaction == nullptr || !VerdictOk(verdict) ||
      !ReadRequest(request, &r)) {
    return SLUICE_INVALID_ARGUMENT;
  }
  return WriteDecision(limiter->limiter->Reserve(View(transaction, transaction_len),
                                                 View(item, item_len), r, When(now_ms)),
                       verdict);
}

sluice_status sluice_limiter_commit(sluice_limiter_t* limiter, const char* transaction,
                                    size_t transaction_len, uint64_t bytes, int64_t now_ms,
                                    sluice_verdict_t* verdict) {
  if (limiter == nullptr || transaction == nullptr || !VerdictOk(verdict)) {
    return SLUICE_INVALID_ARGUMENT;
  }
  return WriteDecision(
      limiter->limiter->Commit(View(transaction, transaction_len), bytes, When(now_ms)), verdict);
}

sluice_status sluice_limiter_release(sluice_limiter_t* limiter, const char* transaction,
                                     size_t transaction_len, int64_t now_ms) {
  if (limiter == nullptr || transaction == nullptr) return SLUICE_INVALID_ARGUMENT;
  limiter->limiter->Release(View(transaction, transaction_len), When(now_ms));
  return SLUICE_OK;
}

sluice_fingerprinter_t* sluice_fingerprinter_create(void) {
  return new (std::nothrow) sluice_fingerprinter_t;
}

void sluice_fingerprinter_destroy(sluice_fingerprinter_t* f) { delete f; }

void sluice_fingerprinter_begin(sluice_fingerprinter_t* f) {
  if (f != nullptr) f->body.Begin();
}

void sluice_fingerprinter_feed(sluice_fingerprinter_t* f, const char* chunk, size_t len) {
  if (f != nullptr && chunk != nullptr) f->body.Feed(absl::string_view(chunk, len));
}

sluice_fingerprint_t* sluice_fingerprinter_finish(sluice_fingerprinter_t* f) {
  if (f == nullptr) return nullptr;
  auto* out = new (std::nothrow) sluice_fingerprint_t;
  if (out == nullptr) return nullptr;
  f->body.Finish();
  out->fp = f->body.fingerprint();
  out->urls = f->body.urls();
  return out;
}

void sluice_fingerprint_destroy(sluice_fingerprint_t* fp) { delete fp; }

const char* sluice_fingerprint_link_host(const sluice_fingerprint_t* fp, size_t i) {
  if (fp == nullptr || i >= fp->urls.size()) return nullptr;
  return fp->urls[i].host.c_str();
}

void sluice_fingerprint_digest(const sluice_fingerprint_t* fp, uint8_t digest[16]) {
  if (digest == nullptr) return;
  std::memset(digest, 0, 16);
  if (fp == nullptr) return;
  for (int i = 0; i < 8; ++i) {  // big-endian: hi, then lo
    digest[i] = static_cast<uint8_t>(fp->fp.digest_hi >> (56 - 8 * i));
    digest[8 + i] = static_cast<uint8_t>(fp->fp.digest_lo >> (56 - 8 * i));
  }
}

double sluice_fingerprint_similarity(const sluice_fingerprint_t* a, const sluice_fingerprint_t* b) {
  if (a == nullptr || b == nullptr) return 0;
  return sluice::Fingerprint::Similarity(a->fp, b->fp);
}

uint8_t sluice_fingerprint_same_template(const sluice_fingerprint_t* a,
                                         const sluice_fingerprint_t* b) {
  return a != nullptr && b != nullptr && a->fp.SameTemplate(b->fp) ? 1 : 0;
}

}  // extern "C"
