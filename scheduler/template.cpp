// Strict "{{ name }}" templates (scheduler/template.hpp).
#include "scheduler/template.hpp"

#include <optional>

namespace drover {

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One reference: [open, close) spans "{{ ... }}".
struct Span {
  size_t open = 0;
  size_t close = 0;
  std::string name;
};

Result<std::vector<Span>> scan(std::string_view text) {
  std::vector<Span> out;
  size_t p = 0;
  while ((p = text.find("{{", p)) != std::string_view::npos) {
    size_t end = text.find("}}", p + 2);
    if (end == std::string_view::npos)
      return make_error("unterminated '{{' (no closing '}}')", Errc::Invalid);
    std::string_view inner = text.substr(p + 2, end - p - 2);
    std::string_view name = trim(inner);
    if (name.empty())
      return make_error("empty template reference '{{" + std::string(inner) + "}}'", Errc::Invalid);
    for (char c : name) {
      if (!is_name_char(c))
        return make_error("invalid template name '" + std::string(name) +
                              "' (names use A-Z, a-z, 0-9, '_', '.' and '-')",
                          Errc::Invalid);
    }
    out.push_back(Span{p, end + 2, std::string(name)});
    p = end + 2;
  }
  return out;
}

}  // namespace

Result<std::vector<TemplateRef>> parse_template(std::string_view text) {
  auto spans = scan(text);
  if (!spans.ok()) return spans.error();
  std::vector<TemplateRef> refs;
  refs.reserve(spans->size());
  for (auto& s : *spans) refs.push_back(TemplateRef{s.name, s.open});
  return refs;
}

Result<std::string> render_template(std::string_view text, const TemplateLookup& lookup,
                                    bool quote) {
  auto spans = scan(text);
  if (!spans.ok()) return spans.error();
  std::string out;
  out.reserve(text.size());
  size_t p = 0;
  for (auto& s : *spans) {
    out.append(text.substr(p, s.open - p));
    std::optional<std::string> v = lookup(s.name);
    if (!v) return make_error("unknown template name '" + s.name + "'", Errc::Invalid);
    out += quote ? shell_quote(*v) : *v;
    p = s.close;
  }
  out.append(text.substr(p));
  return out;
}

std::string shell_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += '\'';
  return out;
}

const std::vector<std::string>& fixed_template_names() {
  static const std::vector<std::string> names = {"run.id", "run.logical_date", "run.interval_start",
                                                 "run.interval_end", "project_dir"};
  return names;
}

TemplateName classify_template_name(std::string_view name) {
  using K = TemplateName::Kind;
  TemplateName t;
  if (name == "run.id") t.kind = K::RunId;
  if (name == "run.logical_date") t.kind = K::LogicalDate;
  if (name == "run.interval_start") t.kind = K::IntervalStart;
  if (name == "run.interval_end") t.kind = K::IntervalEnd;
  if (name == "project_dir") t.kind = K::ProjectDir;
  if (t.kind != K::Unknown) return t;
  auto after = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (name.substr(0, prefix.size()) != prefix || name.size() == prefix.size())
      return std::nullopt;
    return name.substr(prefix.size());
  };
  if (auto rest = after("params.")) {
    t.kind = K::Param;
    t.subject = std::string(*rest);
  } else if (auto rest = after("secrets.")) {
    if (rest->find('.') == std::string_view::npos) {
      t.kind = K::Secret;
      t.subject = std::string(*rest);
    }
  } else if (auto rest = after("inputs.")) {
    auto dot = rest->find('.');
    if (dot != std::string_view::npos && dot > 0 && rest->substr(dot + 1) == "path") {
      t.kind = K::InputPath;
      t.subject = std::string(rest->substr(0, dot));
    }
  } else if (auto rest = after("outputs.")) {
    auto dot = rest->find('.');
    if (dot != std::string_view::npos && dot > 0 && dot + 1 < rest->size()) {
      t.kind = K::Output;
      t.subject = std::string(rest->substr(0, dot));
      t.key = std::string(rest->substr(dot + 1));
    }
  }
  return t;
}

}  // namespace drover
