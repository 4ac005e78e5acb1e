// MessageBody: what a door that sees a message's content (the milter, the
// Exim module, the C ABI) hands the engine at END-OF-MESSAGE: the content
// fingerprint (burst and campaign detectors) and the hosts of the body's
// links (domain lists such as SURBL, URIBL, DBL), both from one streaming
// pass of the normaliser over the raw message fed in chunks of any size.
// No copy of the message is kept.
//
// Thread safety: an instance is not thread-safe; use one per connection or
// per thread.
#ifndef SLUICE_BINDINGS_ENGINE_MESSAGE_BODY_H_
#define SLUICE_BINDINGS_ENGINE_MESSAGE_BODY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "bindings/engine/smtp_event.h"
#include "reputation/content/fingerprint.h"
#include "reputation/content/url_extractor.h"

namespace sluice {

class MessageBody {
 public:
  MessageBody();
  MessageBody(const MessageBody&) = delete;
  MessageBody& operator=(const MessageBody&) = delete;

  // Starts a message (forgets the previous one).
  void Begin() noexcept;
  // The next bytes of the raw message: headers (at least the MIME ones:
  // Content-Type, Content-Transfer-Encoding), the blank line, the body.
  void Feed(absl::string_view chunk) noexcept;
  // Ends the message: fingerprint() and urls() are ready.
  void Finish();
  // Points event->fingerprint and event->urls here (valid until the next
  // Begin or the end of *this). REQUIRES: Finish.
  void AttachTo(SmtpEvent* event) const;

  const Fingerprint& fingerprint() const { return fingerprint_; }
  // Distinct link hosts (normalised: IP literals in any base, IDN to
  // punycode), at most kMaxHosts.
  const std::vector<UrlHost>& urls() const { return urls_; }
  uint64_t bytes() const { return bytes_; }

  static constexpr size_t kMaxHosts = 16;

 private:
  Fingerprinter fingerprinter_;
  std::vector<std::string> raw_hosts_;
  Fingerprint fingerprint_;
  std::vector<UrlHost> urls_;
  uint64_t bytes_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_BINDINGS_ENGINE_MESSAGE_BODY_H_
