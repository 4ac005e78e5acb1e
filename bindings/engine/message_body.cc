#include "bindings/engine/message_body.h"

#include <algorithm>

namespace sluice {

MessageBody::MessageBody() {
  raw_hosts_.reserve(kMaxHosts);
  urls_.reserve(kMaxHosts);
  fingerprinter_.CollectLinkHosts(&raw_hosts_, kMaxHosts);
}

void MessageBody::Begin() noexcept {
  fingerprinter_.Begin();
  urls_.clear();
  bytes_ = 0;
}

void MessageBody::Feed(absl::string_view chunk) noexcept {
  bytes_ += chunk.size();
  fingerprinter_.Feed(chunk);
}

void MessageBody::Finish() {
  fingerprinter_.Finish(&fingerprint_);
  urls_.clear();
  for (const std::string& raw : raw_hosts_) {
    UrlHost h;
    if (!UrlExtractor::NormalizeHost(raw, &h)) continue;
    if (std::find(urls_.begin(), urls_.end(), h) == urls_.end()) urls_.push_back(std::move(h));
  }
}

void MessageBody::AttachTo(SmtpEvent* event) const {
  event->fingerprint = &fingerprint_;
  event->urls = &urls_;
}

}  // namespace sluice
