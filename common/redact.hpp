// Redactor: replaces every occurrence of any secret value with "***" in text that arrives in
// arbitrary pieces (a log stream), so a secret cut across two reads is still caught. Values
// shorter than kMinLength are not masked (Airflow's rule: masking "a" or "on" everywhere
// would wreck every log while protecting nothing). Not thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace drover {

// A URL as it may be shown (listings, warnings, errors): scheme, host and port, with any
// user:password@ and everything after the host replaced by "***" — webhook URLs carry their
// credential in the path (https://hooks.slack.com/services/T0/B0/SECRET) or the query.
// "https://hooks.example.com/services/T/B/x" -> "https://hooks.example.com/***".
std::string masked_url(std::string_view url);

class Redactor {
 public:
  static constexpr size_t kMinLength = 5;
  static constexpr std::string_view kMask = "***";

  explicit Redactor(const std::vector<std::string>& secrets);
  bool empty() const { return secrets_.empty(); }
  // Takes the next piece; returns what may be written now (a possible start of a secret at
  // the end is held back until the next piece shows whether it is one).
  std::string feed(std::string_view piece);
  // The held-back rest, at the end of the stream.
  std::string finish();
  // One whole text at once.
  static std::string redact(std::string_view text, const std::vector<std::string>& secrets);

 private:
  std::string scan(bool final);
  std::vector<std::string> secrets_;  // longest first, so a longer secret wins
  std::array<bool, 256> first_{};     // bytes that start some secret
  std::string pending_;
};

}  // namespace drover
