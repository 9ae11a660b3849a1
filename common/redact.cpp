#include "common/redact.hpp"

#include <algorithm>

namespace drover {

std::string masked_url(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(Redactor::kMask);
  std::string_view rest = url.substr(scheme + 3);
  auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string out(url.substr(0, scheme + 3));
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    out += Redactor::kMask;
    out += '@';
    authority = authority.substr(at + 1);
  }
  out += authority;
  if (end != std::string_view::npos && rest.substr(end) != "/") {
    out += '/';
    out += Redactor::kMask;
  }
  return out;
}

Redactor::Redactor(const std::vector<std::string>& secrets) {
  for (const auto& s : secrets)
    if (s.size() >= kMinLength) secrets_.push_back(s);
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  secrets_.erase(std::unique(secrets_.begin(), secrets_.end()), secrets_.end());
  for (const auto& s : secrets_) first_[static_cast<unsigned char>(s[0])] = true;
}

std::string Redactor::feed(std::string_view piece) {
  pending_.append(piece);
  return scan(false);
}

std::string Redactor::finish() { return scan(true); }

std::string Redactor::scan(bool final) {
  std::string out;
  out.reserve(pending_.size());
  size_t i = 0, n = pending_.size();
  std::string_view text(pending_);
  while (i < n) {
    if (!first_[static_cast<unsigned char>(text[i])]) {
      out += text[i++];
      continue;
    }
    bool matched = false, maybe = false;
    for (const auto& s : secrets_) {
      if (text.compare(i, s.size(), s) == 0) {
        out += kMask;
        i += s.size();
        matched = true;
        break;
      }
      // The piece ends inside what could still become this secret.
      if (!final && n - i < s.size() && s.compare(0, n - i, text.substr(i)) == 0) maybe = true;
    }
    if (matched) continue;
    if (maybe) break;
    out += text[i++];
  }
  pending_.erase(0, i);
  return out;
}

std::string Redactor::redact(std::string_view text, const std::vector<std::string>& secrets) {
  Redactor r(secrets);
  if (r.empty()) return std::string(text);
  std::string out = r.feed(text);
  return out + r.finish();
}

}  // namespace drover
