// The non-inline parts of DagSpec and ParamSpec (scheduler/dag.hpp): param checking and
// CLI parsing, param resolution for triggers, lookups and ancestry.
#include "scheduler/dag.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <regex>
#include <set>

#include "common/utf8.hpp"

namespace drover {

namespace {

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

// How a value is shown in a message: strings as they are, the rest as JSON.
std::string show(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string show_number(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  json j = d;
  return j.dump();
}

// Values longer than this are not matched against a pattern (std::regex recurses per char).
constexpr size_t kMaxPatternInput = 4096;

}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.size() > 256) return "";
  size_t best = std::max<size_t>(2, word.size() / 3) + 1;
  std::string found;
  for (const auto& c : candidates) {
    if (c.size() > 256) continue;
    size_t d = edit_distance(word, c);
    if (d < best && d < std::max(word.size(), c.size())) {
      best = d;
      found = c;
    }
  }
  return found;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string m = closest_match(word, candidates);
  return m.empty() ? "" : " (did you mean '" + m + "'?)";
}

const char* ParamSpec::type_name(Type t) {
  switch (t) {
    case Type::String:
      return "string";
    case Type::Int:
      return "int";
    case Type::Float:
      return "float";
    case Type::Bool:
      return "bool";
  }
  return "?";
}

namespace {

// Text from a trigger reaches records, logs and commands: it must be UTF-8. The error
// names the first bad byte, never the text itself.
std::optional<Error> not_utf8(const std::string& param, std::string_view text) {
  auto at = find_invalid_utf8(text);
  if (!at) return std::nullopt;
  return make_error("param '" + param + "': value is not valid UTF-8 (byte " + byte_hex(text, *at) +
                        " at offset " + std::to_string(*at) + ")",
                    Errc::Invalid);
}

// A control character other than tab and newline: a NUL would end the argv string that
// runs while the record holds the whole value, and the others reach logs and terminals.
std::optional<Error> has_control(const std::string& param, std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "U+%04X", c);
      return make_error("param '" + param + "': value holds the control character " + hex +
                            " at offset " + std::to_string(i) +
                            " (only tab and newline are allowed)",
                        Errc::Invalid);
    }
  }
  return std::nullopt;
}

}  // namespace

Result<json> ParamSpec::check(const json& value) const {
  auto fail = [&](const std::string& what) {
    return make_error("param '" + name + "': " + what, Errc::Invalid);
  };
  bool type_ok = false;
  switch (type) {
    case Type::String:
      type_ok = value.is_string();
      break;
    case Type::Int:
      type_ok = value.is_number_integer();
      break;
    case Type::Float:
      type_ok = value.is_number();
      break;
    case Type::Bool:
      type_ok = value.is_boolean();
      break;
  }
  if (value.is_string()) {
    if (auto e = not_utf8(name, value.get_ref<const std::string&>())) return *e;
    if (auto e = has_control(name, value.get_ref<const std::string&>())) return *e;
  }
  if (!type_ok)
    return fail(std::string("expected ") + type_name(type) + ", got '" + show(value) + "'");
  json out = value;
  if (type == Type::Float) out = value.get<double>();
  if (type == Type::Int || type == Type::Float) {
    double d = value.get<double>();
    if (min && d < *min) return fail(show(value) + " is below the minimum " + show_number(*min));
    if (max && d > *max) return fail(show(value) + " is above the maximum " + show_number(*max));
  }
  if (type == Type::String && pattern) {
    const std::string& s = value.get_ref<const std::string&>();
    bool matched = false;
    if (s.size() <= kMaxPatternInput) {
      try {
        matched = std::regex_match(s, std::regex(*pattern, std::regex::ECMAScript));
      } catch (const std::exception&) {
        return fail("invalid pattern '" + *pattern + "'");
      }
    }
    if (!matched) return fail("'" + s + "' does not match pattern '" + *pattern + "'");
  }
  if (!choices.empty()) {
    bool found = false;
    for (const auto& c : choices) {
      if (c == out || (c.is_number() && out.is_number() && c.get<double>() == out.get<double>())) {
        found = true;
        break;
      }
    }
    if (!found) {
      std::string list;
      for (const auto& c : choices) list += (list.empty() ? "'" : ", '") + show(c) + "'";
      return fail("'" + show(value) + "' is not one of " + list);
    }
  }
  return out;
}

Result<json> ParamSpec::parse_cli(const std::string& text) const {
  if (auto e = not_utf8(name, text)) return *e;  // never quoted back: errors are UTF-8 too
  auto bad = [&] {
    return make_error("param '" + name + "': expected " + type_name(type) + ", got '" + text + "'",
                      Errc::Invalid);
  };
  const char* b = text.data();
  const char* e = text.data() + text.size();
  switch (type) {
    case Type::String:
      return check(json(text));
    case Type::Int: {
      long long v = 0;
      auto [p, ec] = std::from_chars(b, e, v);
      if (text.empty() || ec != std::errc() || p != e) return bad();
      return check(json(v));
    }
    case Type::Float: {
      double v = 0;
      auto [p, ec] = std::from_chars(b, e, v);
      if (text.empty() || ec != std::errc() || p != e || !std::isfinite(v)) return bad();
      return check(json(v));
    }
    case Type::Bool:
      if (text == "true") return check(json(true));
      if (text == "false") return check(json(false));
      return bad();
  }
  return bad();
}

const TaskSpec* DagSpec::task(const std::string& id) const {
  if (task_index.size() == tasks.size()) {
    auto it = task_index.find(id);
    if (it != task_index.end() && it->second < tasks.size() && tasks[it->second].id == id)
      return &tasks[it->second];
    if (it == task_index.end()) return nullptr;
  }
  for (const auto& t : tasks)
    if (t.id == id) return &t;
  return nullptr;
}

void index_graph(DagSpec& dag) {
  dag.task_index.clear();
  dag.queues.clear();
  std::map<std::string, uint32_t, std::less<>> queue_ids;
  for (size_t i = 0; i < dag.tasks.size(); ++i) {
    TaskSpec& t = dag.tasks[i];
    dag.task_index[t.id] = i;
    t.index = static_cast<uint32_t>(i);
    t.upstream.clear();
    t.downstream.clear();
    auto [q, fresh] = queue_ids.try_emplace(t.queue, static_cast<uint32_t>(dag.queues.size()));
    if (fresh) dag.queues.push_back(t.queue);
    t.queue_index = q->second;
  }
  for (size_t i = 0; i < dag.tasks.size(); ++i) {
    TaskSpec& t = dag.tasks[i];
    for (const auto& n : t.needs) {
      auto it = dag.task_index.find(n);
      if (it == dag.task_index.end()) continue;
      t.upstream.push_back(static_cast<uint32_t>(it->second));
    }
    std::sort(t.upstream.begin(), t.upstream.end());
    t.upstream.erase(std::unique(t.upstream.begin(), t.upstream.end()), t.upstream.end());
    for (uint32_t u : t.upstream) dag.tasks[u].downstream.push_back(static_cast<uint32_t>(i));
  }
  dag.graph_indexed = true;
}

const ParamSpec* DagSpec::param(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

Result<json> DagSpec::resolve_params(const json& given) const {
  if (!given.is_null() && !given.is_object())
    return make_error("params must be an object of NAME: value", Errc::Invalid);
  json out = json::object();
  std::vector<std::string> names;
  for (const auto& p : params) names.push_back(p.name);
  if (given.is_object()) {
    for (auto it = given.begin(); it != given.end(); ++it) {
      const ParamSpec* p = param(it.key());
      if (!p)
        return make_error("unknown param '" + it.key() + "'" + did_you_mean(it.key(), names),
                          Errc::Invalid);
      auto v = p->check(it.value());
      if (!v.ok()) return v.error();
      out[it.key()] = *v;
    }
  }
  for (const auto& p : params) {
    if (out.contains(p.name)) continue;
    if (p.default_value.is_null())
      return make_error(
          "missing required param '" + p.name + "' (" + ParamSpec::type_name(p.type) + ")",
          Errc::Invalid);
    out[p.name] = p.default_value;
  }
  return out;
}

std::vector<std::string> DagSpec::ancestors(const std::string& id) const {
  std::set<std::string, std::less<>> seen;
  std::vector<const TaskSpec*> stack;
  if (const TaskSpec* t = task(id)) stack.push_back(t);
  while (!stack.empty()) {
    const TaskSpec* t = stack.back();
    stack.pop_back();
    for (const auto& n : t->needs) {
      if (!seen.insert(n).second) continue;
      if (const TaskSpec* u = task(n)) stack.push_back(u);
    }
  }
  seen.erase(id);
  std::vector<std::string> out;
  for (const auto& t : tasks)
    if (seen.count(t.id)) out.push_back(t.id);
  return out;
}

Result<std::string> DagSpec::upstream_of_type(const std::string& id, std::string_view type,
                                              std::string_view key) const {
  const TaskSpec* t = task(id);
  if (!t) return make_error("no task '" + id + "'", Errc::NotFound);
  auto upstream = ancestors(id);
  const std::string kind(type), k(key);
  if (t->with.is_object())
    if (auto it = t->with.find(k); it != t->with.end()) {
      if (!it->is_string())
        return make_error("'" + k + "' must name a " + kind + " task upstream", Errc::Invalid);
      std::string name = it->get<std::string>();
      const TaskSpec* u = task(name);
      if (!u || std::find(upstream.begin(), upstream.end(), name) == upstream.end())
        return make_error("'" + k + "' names '" + name + "', which is not a task upstream of '" +
                              id + "' (add it to needs)",
                          Errc::Invalid);
      if (u->type != type)
        return make_error(
            "'" + k + "' names '" + name + "', a " + u->type + " task, not a " + kind + " task",
            Errc::Invalid);
      return name;
    }
  std::vector<std::string> found;
  for (auto& a : upstream)
    if (const TaskSpec* u = task(a); u && u->type == type) found.push_back(a);
  if (found.empty())
    return make_error("no " + kind + " task upstream of '" + id + "' (add one to needs)",
                      Errc::Invalid);
  if (found.size() > 1) {
    std::string list;
    for (auto& f : found) list += (list.empty() ? "" : ", ") + f;
    return make_error(std::to_string(found.size()) + " " + kind + " tasks upstream of '" + id +
                          "' (" + list + "): name one with '" + k + ": TASK'",
                      Errc::Invalid);
  }
  return found.front();
}

}  // namespace drover
