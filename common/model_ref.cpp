#include "common/model_ref.hpp"

#include <charconv>

namespace drover::models {

namespace {

bool lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || !lower_or_digit(name[0])) return false;
  for (char c : name)
    if (!lower_or_digit(c) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

bool valid_alias(std::string_view alias) {
  if (alias.empty() || alias.size() > 64) return false;
  for (char c : alias)
    if (!lower_or_digit(c) && c != '_' && c != '-') return false;
  return true;
}

bool valid_tag_key(std::string_view key) {
  if (key.empty() || key.size() > 64) return false;
  for (char c : key)
    if (!lower_or_digit(c) && !(c >= 'A' && c <= 'Z') && c != '_' && c != '.' && c != '-')
      return false;
  return true;
}

std::string ModelRef::text() const {
  if (version) return name + "/" + std::to_string(*version);
  if (!alias.empty()) return name + "@" + alias;
  return name;
}

Result<ModelRef> parse_model_ref(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return make_error("model '" + std::string(text.substr(0, 200)) + "': " + why, Errc::Invalid);
  };
  ModelRef ref;
  size_t at = text.find_first_of("/@");
  ref.name = std::string(text.substr(0, at));
  if (!valid_model_name(ref.name))
    return bad("a model name is [a-z0-9][a-z0-9_.-]* (NAME, NAME/VERSION or NAME@ALIAS)");
  if (at == std::string_view::npos) return ref;
  std::string_view rest = text.substr(at + 1);
  if (text[at] == '@') {
    if (!valid_alias(rest)) return bad("an alias is [a-z0-9_-]+");
    ref.alias = std::string(rest);
    return ref;
  }
  int64_t v = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
  if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size() || v < 1 ||
      rest[0] == '+')
    return bad("a version is a number from 1");
  ref.version = v;
  return ref;
}

}  // namespace drover::models
