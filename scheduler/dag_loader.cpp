// Loads and validates DAG files (scheduler/dag_loader.hpp, DESIGN.md §4).
//
// The order of the checks is the order of the defences: size, encoding, nesting depth (on
// the raw text, before yaml-cpp's recursive parser sees it), YAML syntax, node count after
// aliases (yaml-cpp shares aliased nodes, so a naive walk of an alias bomb explodes), the
// scalars as YAML 1.2 reads them (re-read from the source where yaml-cpp 0.7 does not: the
// escapes \_ and \N, keep-chomped folded blocks) and valid UTF-8, duplicate keys, then the
// DAG itself. Every check that can go on after an error does, so
// a file's diagnostics come all at once.
#include "scheduler/dag_loader.hpp"

#include <date/tz.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>

#include "common/model_ref.hpp"
#include "common/sha256.hpp"
#include "common/time.hpp"
#include "common/utf8.hpp"
#include "plugins/task_type.hpp"
#include "scheduler/template.hpp"

namespace drover {

namespace {

constexpr int kMaxDepth = 64;  // nesting levels, in the text and after aliases
constexpr size_t kMaxPatternBytes = 1000;

const std::vector<std::string> kTopKeys = {
    "dag",    "description", "schedule", "timezone", "catchup", "max_active_runs", "owner", "tags",
    "params", "defaults",    "sla",      "alerts",   "tasks"};
const std::vector<std::string> kTaskKeys = {
    "type",    "needs",     "run",          "with",        "outputs",
    "env",     "resources", "retries",      "retry_delay", "max_retry_delay",
    "timeout", "queue",     "trigger_rule", "description", "values",
    "uses"};
const std::vector<std::string> kDefaultsKeys = {"retries",   "retry_delay", "max_retry_delay",
                                                "timeout",   "queue",       "env",
                                                "resources", "trigger_rule"};
const std::vector<std::string> kParamKeys = {"type",    "default", "min",        "max",
                                             "pattern", "enum",    "description"};
const std::vector<std::string> kAlertKeys = {"on_failure", "on_drift", "on_sla_miss", "on_success"};
const std::vector<std::string> kResourceKeys = {"gpu", "cpu", "memory"};
const std::vector<std::string> kTriggerRules = {"all_success", "all_done", "one_failed"};

bool all_of_chars(std::string_view s, const std::function<bool(char)>& ok) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), ok);
}
bool is_lower_id(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }
bool is_id(char c) { return is_lower_id(c) || (c >= 'A' && c <= 'Z'); }
bool is_queue_char(char c) { return is_id(c) || c == '-' || c == '.'; }

// ---------------------------------------------------------------------------------------
// Raw-text checks, before yaml-cpp.

struct RawError {
  size_t offset;
  std::string message;
};

// The first byte that is not valid UTF-8 or is a control character YAML does not allow.
std::optional<RawError> check_encoding(std::string_view t) {
  const std::optional<size_t> bad = find_invalid_utf8(t);
  const size_t limit = bad ? *bad : t.size();
  char hex[8];
  for (size_t i = 0; i < limit; ++i) {
    const auto c = static_cast<unsigned char>(t[i]);
    if (c == 0) return RawError{i, "NUL byte (is this a binary file?)"};
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      std::snprintf(hex, sizeof hex, "0x%02x", c);
      return RawError{i, std::string("control character ") + hex + " is not allowed"};
    }
  }
  if (bad) return RawError{*bad, "invalid UTF-8 byte " + byte_hex(t, *bad)};
  return std::nullopt;
}

// A conservative scan of the nesting depth: block indentation levels (and "- "/"? "
// indicators) plus open flow brackets outside quotes and comments. Block scalar bodies
// (after "|" or ">") are skipped. Returns where the depth first exceeds kMaxDepth.
std::optional<RawError> check_nesting(std::string_view t) {
  std::vector<size_t> indents;  // block levels, by column
  int flow = 0;
  char quote = 0;          // open quoted scalar: '\'' or '"'
  long block_parent = -1;  // >= 0 while inside a block scalar body
  size_t line_start = 0;
  auto too_deep = [&](size_t off) {
    return RawError{off, "nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
  };
  while (line_start <= t.size()) {
    size_t eol = t.find('\n', line_start);
    if (eol == std::string_view::npos) eol = t.size();
    std::string_view line = t.substr(line_start, eol - line_start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    bool blank = indent == line.size();
    size_t p = 0;
    bool value_start = false;
    if (block_parent >= 0) {
      if (blank || static_cast<long>(indent) > block_parent) goto next_line;
      block_parent = -1;
    }
    if (flow == 0 && quote == 0) {
      if (blank || line[indent] == '#') goto next_line;
      std::vector<size_t> cols = {indent};
      p = indent;
      while (p < line.size() && (line[p] == '-' || line[p] == '?' || line[p] == ':') &&
             (p + 1 == line.size() || line[p + 1] == ' ')) {
        ++p;
        while (p < line.size() && line[p] == ' ') ++p;
        if (p < line.size()) cols.push_back(p);
      }
      while (!indents.empty() && indents.back() >= cols[0]) indents.pop_back();
      for (size_t c : cols) indents.push_back(c);
      if (indents.size() > static_cast<size_t>(kMaxDepth)) return too_deep(line_start + indent);
      value_start = true;
    }
    for (; p < line.size(); ++p) {
      char c = line[p];
      if (quote) {
        if (quote == '"' && c == '\\') {
          ++p;
          continue;
        }
        if (c == quote) {
          if (quote == '\'' && p + 1 < line.size() && line[p + 1] == '\'') {
            ++p;
            continue;
          }
          quote = 0;
        }
        continue;
      }
      if (c == ' ' || c == '\t') continue;
      if (c == '#' && (p == 0 || line[p - 1] == ' ' || line[p - 1] == '\t')) break;
      if (flow > 0) {
        if (c == '[' || c == '{') {
          if (++flow + static_cast<int>(indents.size()) > kMaxDepth)
            return too_deep(line_start + p);
        } else if (c == ']' || c == '}') {
          --flow;
        } else if (c == '"' || c == '\'') {
          size_t q = p;
          while (q > 0 && (line[q - 1] == ' ' || line[q - 1] == '\t')) --q;
          if (q == 0 || std::string_view("[{,:?").find(line[q - 1]) != std::string_view::npos)
            quote = c;
        }
        continue;
      }
      if (value_start) {
        if (c == '[' || c == '{') {
          flow = 1;
          if (flow + static_cast<int>(indents.size()) > kMaxDepth) return too_deep(line_start + p);
          continue;
        }
        if (c == '"' || c == '\'') {
          quote = c;
          value_start = false;
          continue;
        }
        if (c == '|' || c == '>') {
          block_parent = static_cast<long>(indent);
          break;
        }
        if (c == '&' || c == '!' || c == '*') {
          while (p + 1 < line.size() && line[p + 1] != ' ') ++p;
          continue;
        }
        value_start = false;
      }
      if (c == ':' && (p + 1 == line.size() || line[p + 1] == ' ' || line[p + 1] == '\t'))
        value_start = true;
    }
  next_line:
    if (eol == t.size()) break;
    line_start = eol + 1;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Scalars re-read from the source text where yaml-cpp 0.7 departs from YAML 1.2.

// Where a scalar's own text starts, given its node mark: yaml-cpp marks a scalar with
// properties at its anchor or tag ("&a", "!!str"), so skip those (and comments between).
size_t scalar_start(std::string_view t, size_t pos) {
  while (pos < t.size()) {
    char c = t[pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++pos;
    } else if (c == '&' || c == '!') {
      while (pos < t.size() && t[pos] != ' ' && t[pos] != '\t' && t[pos] != '\n' && t[pos] != '\r')
        ++pos;
    } else if (c == '#') {
      while (pos < t.size() && t[pos] != '\n') ++pos;
    } else {
      break;
    }
  }
  return pos;
}

struct Decoded {
  std::string value;
  std::optional<RawError> error;  // an escape that names no character
};

// The double-quoted scalar whose opening quote is t[pos], decoded by YAML 1.2 (section 7.3.1:
// every escape, line folding, escaped line breaks). yaml-cpp 0.7 turns "\_" and "\N" into
// single Latin-1 bytes (invalid UTF-8); this does not, unless `as_yaml_cpp` asks for
// yaml-cpp's reading (to check that the source at `pos` is the scalar yaml-cpp read). nullopt
// when the text there is not a complete double-quoted scalar (yaml-cpp's reading stands).
std::optional<Decoded> decode_double_quoted(std::string_view t, size_t pos, bool as_yaml_cpp) {
  if (pos >= t.size() || t[pos] != '"') return std::nullopt;
  auto white = [](char c) { return c == ' ' || c == '\t'; };
  auto brk = [](char c) { return c == '\n' || c == '\r'; };
  auto skip_break = [&](size_t& j) {
    j += (t[j] == '\r' && j + 1 < t.size() && t[j + 1] == '\n') ? 2 : 1;
  };
  // From just after a line break: counts the empty lines that follow and leaves `j` at the
  // first character of the next line's content.
  auto empty_lines = [&](size_t& j) {
    size_t count = 0;
    while (true) {
      size_t k = j;
      while (k < t.size() && white(t[k])) ++k;
      if (k < t.size() && brk(t[k])) {
        ++count;
        j = k;
        skip_break(j);
      } else {
        j = k;
        return count;
      }
    }
  };
  Decoded d;
  std::string& out = d.value;
  size_t keep = 0;  // out[0, keep) stays at a fold; white space after it is trimmed
  size_t i = pos + 1;
  while (true) {
    if (i >= t.size()) return std::nullopt;
    const char c = t[i];
    if (c == '"') break;
    if (brk(c)) {  // a folded line break
      out.resize(keep);
      size_t j = i;
      skip_break(j);
      size_t empty = empty_lines(j);
      if (empty == 0)
        out += ' ';
      else
        out.append(empty, '\n');
      keep = out.size();
      i = j;
      continue;
    }
    if (c != '\\') {
      out += c;
      if (!white(c)) keep = out.size();
      ++i;
      continue;
    }
    if (i + 1 >= t.size()) return std::nullopt;
    const char e = t[i + 1];
    if (brk(e)) {  // an escaped line break: joins the lines with nothing between
      size_t j = i + 1;
      skip_break(j);
      out.append(empty_lines(j), '\n');
      keep = out.size();
      i = j;
      continue;
    }
    // Single-character escapes and what they stand for (YAML 1.2 section 5.7).
    static constexpr std::string_view kEscapes("0abt\tnvfre \"/\\", 14);
    static constexpr std::string_view kEscaped("\0\a\b\t\t\n\v\f\r\x1b \"/\\", 14);
    const size_t hex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (size_t k = kEscapes.find(e); k != std::string_view::npos) {
      out += kEscaped[k];
    } else if (e == 'N' || e == '_') {
      const char32_t cp = e == 'N' ? 0x85 : 0xa0;
      if (as_yaml_cpp)
        out += static_cast<char>(cp);
      else
        append_utf8(out, cp);
    } else if (e == 'L' || e == 'P') {
      append_utf8(out, e == 'L' ? 0x2028 : 0x2029);
    } else if (hex == 0) {
      return std::nullopt;  // yaml-cpp refuses it before we get here
    }
    if (hex > 0) {
      if (i + 2 + hex > t.size()) return std::nullopt;
      char32_t cp = 0;
      for (size_t k = 0; k < hex; ++k) {
        char h = t[i + 2 + k];
        int v = (h >= '0' && h <= '9')   ? h - '0'
                : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                         : -1;
        if (v < 0) return std::nullopt;
        cp = cp * 16 + static_cast<char32_t>(v);
      }
      if (!append_utf8(out, cp) && !d.error) {
        d.error = RawError{i, "invalid escape '" + std::string(t.substr(i, 2 + hex)) + "' (" +
                                  (cp > 0x10ffff ? "above U+10FFFF, the last code point"
                                                 : "a UTF-16 surrogate, not a character") +
                                  ")"};
      }
    }
    keep = out.size();
    i += 2 + hex;
  }
  return d;
}

// For a folded block scalar with keep chomping (">+") whose indicator is t[pos]: how many
// line breaks its value ends with by YAML 1.2 (section 8.1.1.2: the last content line's break
// and every trailing empty line's). yaml-cpp 0.7 drops one when there are trailing empty
// lines. `parent_indent` is the column of the key or "-" that holds the scalar. nullopt when
// it is not such a scalar or has no content line.
std::optional<size_t> folded_keep_breaks(std::string_view t, size_t pos, int parent_indent) {
  if (pos >= t.size() || t[pos] != '>') return std::nullopt;
  size_t p = pos + 1;
  bool keep = false;
  int explicit_indent = 0;
  for (int k = 0; k < 2 && p < t.size(); ++k, ++p) {
    if (t[p] == '+')
      keep = true;
    else if (t[p] == '-')
      keep = false;
    else if (t[p] >= '1' && t[p] <= '9')
      explicit_indent = t[p] - '0';
    else
      break;
  }
  if (!keep) return std::nullopt;
  size_t eol = t.find('\n', p);
  if (eol == std::string_view::npos) return std::nullopt;
  const size_t body = eol + 1;
  auto line_at = [&](size_t start, size_t& next, bool& has_break) {
    size_t e = t.find('\n', start);
    has_break = e != std::string_view::npos;
    if (!has_break) e = t.size();
    next = e + 1;
    std::string_view line = t.substr(start, e - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  auto indent_of = [](std::string_view line) {
    size_t sp = 0;
    while (sp < line.size() && line[sp] == ' ') ++sp;
    return sp;
  };
  long n = explicit_indent > 0 ? std::max(parent_indent, 0) + explicit_indent : -1;
  if (n < 0) {  // auto-detected: the first non-empty line's indentation
    for (size_t q = body, next = 0; q < t.size(); q = next) {
      bool nl = false;
      std::string_view line = line_at(q, next, nl);
      size_t sp = indent_of(line);
      if (sp < line.size()) {
        n = static_cast<long>(sp);
        break;
      }
      if (!nl) break;
    }
    if (n <= parent_indent) return std::nullopt;
  }
  bool content = false;
  size_t breaks = 0;
  for (size_t q = body, next = 0; q < t.size(); q = next) {
    bool nl = false;
    std::string_view line = line_at(q, next, nl);
    const long sp = static_cast<long>(indent_of(line));
    const bool blank = static_cast<size_t>(sp) == line.size();
    if (blank && sp <= n) {  // an empty line
      if (content && nl) ++breaks;
    } else {
      if (sp < n) break;  // less indented: the scalar has ended
      if (n == 0 && (line.substr(0, 3) == "---" || line.substr(0, 3) == "...")) break;
      content = true;
      breaks = nl ? 1 : 0;
    }
    if (!nl) break;
  }
  if (!content) return std::nullopt;
  return breaks;
}

// ---------------------------------------------------------------------------------------
// YAML helpers.

// Visits every node, aliases included each time they are reached; false when the
// document is deeper than kMaxDepth or has more than `max` nodes.
bool count_nodes(const YAML::Node& n, int depth, size_t max, size_t& count, bool& too_deep) {
  if (++count > max) return false;
  if (depth > kMaxDepth) {
    too_deep = true;
    return false;
  }
  if (n.IsSequence()) {
    for (const auto& c : n)
      if (!count_nodes(c, depth + 1, max, count, too_deep)) return false;
  } else if (n.IsMap()) {
    for (const auto& kv : n) {
      if (!count_nodes(kv.first, depth + 1, max, count, too_deep)) return false;
      if (!count_nodes(kv.second, depth + 1, max, count, too_deep)) return false;
    }
  }
  return true;
}

bool is_quoted(const YAML::Node& n) {
  const std::string& tag = n.Tag();
  return tag == "!" || tag == "tag:yaml.org,2002:str";
}

// A scalar as JSON by the YAML 1.2 core schema: quoted scalars are strings; plain ones
// may be null, bool, int (decimal, 0x hexadecimal, 0o octal) or float. A 0x/0o integer
// beyond 64 bits sets `range_error` (when given) and stays a string.
json scalar_to_json(const YAML::Node& n, std::string* range_error = nullptr) {
  const std::string& s = n.Scalar();
  if (is_quoted(n)) return s;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    const int base = s[1] == 'x' ? 16 : 8;
    bool digits = std::all_of(s.begin() + 2, s.end(), [&](char c) {
      return base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0 : c >= '0' && c <= '7';
    });
    if (digits) {
      long long v = 0;
      auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, base);
      if (ec == std::errc() && p == s.data() + s.size()) return v;
      if (range_error)
        *range_error = "integer '" + s + "' is out of range (the largest is " +
                       (base == 16 ? "0x7fffffffffffffff" : "0o777777777777777777777") + ")";
      return s;
    }
  }
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  const char* digits = b + ((s[0] == '-' || s[0] == '+') ? 1 : 0);
  if (digits < e && std::all_of(digits, e, [](char c) { return c >= '0' && c <= '9'; })) {
    long long v = 0;
    auto [p, ec] = std::from_chars(s[0] == '+' ? b + 1 : b, e, v);
    if (ec == std::errc() && p == e) return v;
  }
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (s.size() < 64 && std::regex_match(s, kFloat)) {
    double v = 0;
    auto [p, ec] = std::from_chars(s[0] == '+' ? b + 1 : b, e, v);
    if (ec == std::errc() && p == e && std::isfinite(v)) return v;
  }
  return s;
}

// `<<: *base` (YAML 1.1 merge keys; not in YAML 1.2, and yaml-cpp reads `<<` as a plain key).
bool is_merge_key(const YAML::Node& k) {
  return k.IsScalar() && !is_quoted(k) && k.Scalar() == "<<";
}
const char* const kMergeKeyError =
    "merge keys ('<<') are not supported (a YAML 1.1 feature, not in YAML 1.2): write the keys "
    "out, or put settings every task shares in 'defaults:'";

const char* kind_name(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.IsNull()) return "nothing";
  return "a scalar";
}

// What a value looks like in "got ..." clauses.
std::string got(const YAML::Node& n) {
  if (n.IsScalar()) {
    std::string s = n.Scalar();
    if (s.size() > 40) s = s.substr(0, 40) + "...";
    return "'" + s + "'";
  }
  return kind_name(n);
}

// Whether a node holds something (a default-constructed YAML::Node is "defined" and null).
bool present(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

struct Entry {
  std::string key;
  YAML::Node k;
  YAML::Node v;
};

std::string names_list(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// "2G", "512M", "1024", "16Gi", "16GB": bytes, binary multiples.
std::optional<long long> parse_size(const std::string& s) {
  size_t p = 0;
  while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
  if (p == 0 || p > 15) return std::nullopt;
  long long n = std::stoll(s.substr(0, p));
  std::string unit = s.substr(p);
  long long mult = 1;
  if (!unit.empty()) {
    char u = static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0])));
    if (u == 'K')
      mult = 1LL << 10;
    else if (u == 'M')
      mult = 1LL << 20;
    else if (u == 'G')
      mult = 1LL << 30;
    else if (u == 'T')
      mult = 1LL << 40;
    else if (u != 'B')
      return std::nullopt;
    std::string rest = unit.substr(1);
    if (u == 'B' ? !rest.empty() : !(rest.empty() || rest == "B" || rest == "i" || rest == "iB"))
      return std::nullopt;
  }
  if (n > (1LL << 62) / mult) return std::nullopt;
  return n * mult;
}

bool safe_relative_path(const std::string& s) {
  if (s.empty() || s[0] == '/') return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string::npos) slash = s.size();
    std::string_view part(s.data() + start, slash - start);
    if (part == "..") return false;
    start = slash + 1;
  }
  return true;
}

// Only comments, blank lines and document markers.
bool is_blank(std::string_view t) {
  size_t p = 0;
  while (p < t.size()) {
    size_t eol = t.find('\n', p);
    if (eol == std::string_view::npos) eol = t.size();
    std::string_view line = t.substr(p, eol - p);
    size_t i = line.find_first_not_of(" \t\r");
    if (i != std::string_view::npos && line[i] != '#' && line.substr(i, 3) != "---" &&
        line.substr(i, 3) != "...")
      return false;
    p = eol + 1;
  }
  return true;
}

// True when the document whose root is a block mapping with its first key at `from`, in
// column 0, provably runs to the end of `t`, so that no second document (nor a stray token)
// can follow it. A block mapping in column 0 ends only at a document marker ("---" or "..." at
// the start of a line), a directive ('%') or the end of the text; a token in column 0 that
// cannot continue it is an error in it, which YAML::Load has reported. Conservative: any line
// from `from` on that starts with "---", "...", '%' or a byte order mark answers false (then
// the documents are counted). Checked against the counting parse on 96,000 mutated DAG files.
bool runs_to_end(std::string_view t, size_t from) {
  size_t p = t.rfind('\n', from);
  p = p == std::string_view::npos ? 0 : p + 1;
  while (p < t.size()) {
    std::string_view rest = t.substr(p, 3);
    if (rest == "---" || rest == "..." || rest == "\xEF\xBB\xBF" ||
        (!rest.empty() && rest[0] == '%'))
      return false;
    size_t eol = t.find('\n', p);
    if (eol == std::string_view::npos) break;
    p = eol + 1;
  }
  return true;
}

// Counts documents without building them (the start mark of each).
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  std::vector<YAML::Mark> starts;
};

// Per-task nodes kept for the checks that need the whole graph.
struct TaskNodes {
  YAML::Node key;
  YAML::Node type, run, with, env;
  std::vector<std::pair<std::string, YAML::Node>> needs;
  size_t file_order = 0;
};

// The diagnostic of a file of `size` bytes over limits.max_file_bytes.
std::string too_large(uintmax_t size, const DagLimits& limits) {
  return "file is too large (" + std::to_string(size) + " bytes; the limit is " +
         std::to_string(limits.max_file_bytes) + ")";
}

// ---------------------------------------------------------------------------------------

class Loader {
 public:
  Loader(std::string_view text, std::string file, const DagLimits& limits)
      : text_(text), file_(std::move(file)), limits_(limits) {}

  LoadResult run();

 private:
  void error_at(size_t line, size_t col, std::string message) {
    diags_.push_back(
        Diagnostic{file_, static_cast<int>(line), static_cast<int>(col), std::move(message)});
  }
  void error_at_offset(size_t offset, std::string message) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else
        ++col;
    }
    error_at(line, col, std::move(message));
  }
  void error(const YAML::Mark& m, std::string message) {
    if (m.line < 0 || m.column < 0)
      error_at(1, 1, std::move(message));
    else
      error_at(m.line + 1, m.column + 1, std::move(message));
  }
  void error(const YAML::Node& n, std::string message) { error(n.Mark(), std::move(message)); }
  // The value's position, or its key's when the value is empty (yaml-cpp marks an
  // empty value at the next token).
  void error(const Entry& e, std::string message) {
    error(e.v.IsNull() ? e.k : e.v, std::move(message));
  }
  // A position inside a scalar's text: `offset` bytes into its value.
  void error_in_scalar(const YAML::Node& n, size_t offset, std::string message);

  // Keys of a mapping, first occurrence of each (duplicates are reported by
  // check_duplicates); unknown keys are reported here.
  std::vector<Entry> entries(const YAML::Node& map, const std::vector<std::string>* allowed,
                             const std::string& where);
  void check_duplicates(const YAML::Node& n, const YAML::Node& tasks_node);

  std::optional<std::string> get_string(const Entry& e, const std::string& where);
  std::optional<long long> get_int(const Entry& e, const std::string& where);
  std::optional<double> get_number(const Entry& e, const std::string& where);
  std::optional<bool> get_bool(const Entry& e, const std::string& where);
  std::optional<Micros> get_duration(const Entry& e, const std::string& where);
  std::optional<std::vector<std::string>> get_string_list(const Entry& e, const std::string& where);
  json to_json(const YAML::Node& n);
  // scalar_to_json, reporting an out-of-range 0x/0o integer at the node (then nullopt).
  std::optional<json> scalar_json(const YAML::Node& n);
  // Re-reads scalars where yaml-cpp departs from YAML 1.2 and reports every scalar (keys
  // too) that is not valid UTF-8. `parent_indent`: column of the key or "-" holding `n`.
  void fix_scalars(const YAML::Node& n, int parent_indent, int depth);

  void parse_params(const Entry& e);
  void parse_param(const Entry& e);
  void parse_alerts(const Entry& e);
  // Fields shared by tasks and `defaults:`; `t` starts as the defaults when parsing a task.
  void parse_task_fields(const std::vector<Entry>& fields, TaskSpec& t, TaskNodes& nodes,
                         const std::string& where);
  void parse_resources(const Entry& e, Resources& r, const std::string& where);
  void parse_tasks(const Entry& e);
  void check_graph();
  void check_task_types();
  void check_templates();
  void check_model_tasks();
  void check_template_string(const YAML::Node& n, const std::string& task_id,
                             const std::set<std::string>* ancestors, const std::string& where);
  // `{{ outputs.UPSTREAM.KEY }}`: KEY must be a value the upstream's type publishes.
  void check_published(const YAML::Node& n, size_t offset, const std::string& quoted,
                       const TaskSpec& upstream, const std::string& key);
  void check_templates_in(const YAML::Node& n, const std::string& task_id,
                          const std::set<std::string>* ancestors, const std::string& where,
                          int depth);

  std::string_view text_;
  std::string file_;
  DagLimits limits_;
  std::vector<Diagnostic> diags_;
  DagSpec dag_;
  TaskSpec defaults_;
  TaskNodes defaults_nodes_;
  bool have_defaults_ = false;
  std::vector<TaskNodes> task_nodes_;  // parallel to dag_.tasks before sorting
  std::set<long> fixed_scalars_;       // marks of scalars fix_scalars has seen (aliases repeat)
};

void Loader::fix_scalars(const YAML::Node& n, int parent_indent, int depth) {
  if (depth > kMaxDepth || !n.IsDefined()) return;
  if (n.IsSequence()) {
    const int col = n.Mark().column;
    for (const auto& c : n) fix_scalars(c, col, depth + 1);
    return;
  }
  if (n.IsMap()) {
    for (const auto& kv : n) {
      fix_scalars(kv.first, parent_indent, depth + 1);
      fix_scalars(kv.second, kv.first.Mark().column, depth + 1);
    }
    return;
  }
  if (!n.IsScalar()) return;
  const YAML::Mark m = n.Mark();
  if (m.pos < 0 || !fixed_scalars_.insert(m.pos).second) return;
  YAML::Node node = n;  // a handle: assigning changes the shared node, aliases included
  const size_t start = scalar_start(text_, static_cast<size_t>(m.pos));
  // Each fix applies only where the source, read yaml-cpp's way, gives yaml-cpp's value: so
  // it is this scalar's text, and the difference is the known fault and nothing else.
  if (start < text_.size() && text_[start] == '"') {
    auto d = decode_double_quoted(text_, start, false);
    auto as_read = decode_double_quoted(text_, start, true);
    if (d && as_read && as_read->value == node.Scalar()) {
      if (d->error) error_at_offset(d->error->offset, d->error->message);
      if (d->value != node.Scalar()) node = d->value;
    }
  } else if (start < text_.size() && text_[start] == '>') {
    if (auto breaks = folded_keep_breaks(text_, start, parent_indent)) {
      std::string v = node.Scalar();
      size_t have = 0;
      while (have < v.size() && v[v.size() - 1 - have] == '\n') ++have;
      // yaml-cpp 0.7 drops one break when the scalar has trailing empty lines.
      if (have + 1 == *breaks && have < v.size())
        node = v.substr(0, v.size() - have) + std::string(*breaks, '\n');
    }
  }
  const std::string& value = node.Scalar();
  if (auto bad = find_invalid_utf8(value)) {
    error(n, "invalid UTF-8 byte " + byte_hex(value, *bad) +
                 " in this text after parsing (at byte " + std::to_string(*bad) + " of its value)");
  }
}

std::optional<json> Loader::scalar_json(const YAML::Node& n) {
  std::string range_error;
  json j = scalar_to_json(n, &range_error);
  if (!range_error.empty()) {
    error(n, range_error);
    return std::nullopt;
  }
  return j;
}

void Loader::error_in_scalar(const YAML::Node& n, size_t offset, std::string message) {
  YAML::Mark m = n.Mark();
  const std::string& value = n.Scalar();
  if (m.pos < 0 || static_cast<size_t>(m.pos) >= text_.size() || offset > value.size())
    return error(n, std::move(message));
  const size_t start = scalar_start(text_, static_cast<size_t>(m.pos));
  char first = start < text_.size() ? text_[start] : ' ';
  if (first == '|' || first == '>') {
    // Block scalar: the body starts on the next line; each value line is one text line.
    size_t value_line = std::count(value.begin(), value.begin() + offset, '\n');
    size_t line_begin = value.rfind('\n', offset == 0 ? 0 : offset - 1);
    size_t col_in_line =
        (line_begin == std::string::npos || offset == 0) ? offset : offset - line_begin - 1;
    size_t body = text_.find('\n', start);
    if (body == std::string_view::npos) return error(n, std::move(message));
    ++body;
    // Indentation of the first non-blank body line.
    size_t p = body, indent = 0;
    while (p < text_.size()) {
      size_t q = p;
      while (q < text_.size() && text_[q] == ' ') ++q;
      if (q < text_.size() && text_[q] != '\n' && text_[q] != '\r') {
        indent = q - p;
        break;
      }
      p = text_.find('\n', q);
      if (p == std::string_view::npos) break;
      ++p;
    }
    return error_at(m.line + 2 + value_line, indent + col_in_line + 1, std::move(message));
  }
  if (value.find('\n') != std::string::npos) return error(n, std::move(message));
  size_t shift = (first == '"' || first == '\'') ? 1 : 0;
  // Behind an anchor or tag the text starts after them.
  if (start != static_cast<size_t>(m.pos))
    return error_at_offset(start + shift + offset, std::move(message));
  error_at(m.line + 1, m.column + 1 + shift + offset, std::move(message));
}

std::vector<Entry> Loader::entries(const YAML::Node& map, const std::vector<std::string>* allowed,
                                   const std::string& where) {
  std::vector<Entry> out;
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      error(kv.first, "keys must be plain strings, got " + std::string(kind_name(kv.first)) +
                          (where.empty() ? "" : where));
      continue;
    }
    std::string key = kv.first.Scalar();
    if (!seen.insert(key).second) continue;
    if (is_merge_key(kv.first)) {
      error(kv.first, kMergeKeyError);
      continue;
    }
    if (allowed && std::find(allowed->begin(), allowed->end(), key) == allowed->end()) {
      error(kv.first, "unknown key '" + key + "'" + where + did_you_mean(key, *allowed));
      continue;
    }
    out.push_back(Entry{key, kv.first, kv.second});
  }
  return out;
}

void Loader::check_duplicates(const YAML::Node& n, const YAML::Node& tasks_node) {
  if (n.IsSequence()) {
    for (const auto& c : n) check_duplicates(c, tasks_node);
    return;
  }
  if (!n.IsMap()) return;
  bool is_tasks = tasks_node.IsDefined() && n.is(tasks_node);
  std::map<std::string, int> first_line;
  for (const auto& kv : n) {
    if (kv.first.IsScalar()) {
      auto [it, inserted] = first_line.emplace(kv.first.Scalar(), kv.first.Mark().line + 1);
      if (!inserted) {
        error(kv.first, std::string(is_tasks ? "duplicate task '" : "duplicate key '") +
                            kv.first.Scalar() + "' (first at line " + std::to_string(it->second) +
                            ")");
      }
    }
    check_duplicates(kv.first, tasks_node);
    check_duplicates(kv.second, tasks_node);
  }
}

std::optional<std::string> Loader::get_string(const Entry& e, const std::string& where) {
  if (!e.v.IsScalar() || e.v.IsNull()) {
    error(e, "'" + e.key + "'" + where + " must be a string, got " + got(e.v));
    return std::nullopt;
  }
  return e.v.Scalar();
}

std::optional<long long> Loader::get_int(const Entry& e, const std::string& where) {
  std::optional<json> j = e.v.IsScalar() ? scalar_json(e.v) : json();
  if (!j) return std::nullopt;
  if (!j->is_number_integer()) {
    error(e, "'" + e.key + "'" + where + " must be an integer, got " + got(e.v));
    return std::nullopt;
  }
  return j->get<long long>();
}

std::optional<double> Loader::get_number(const Entry& e, const std::string& where) {
  std::optional<json> j = e.v.IsScalar() ? scalar_json(e.v) : json();
  if (!j) return std::nullopt;
  if (!j->is_number()) {
    error(e, "'" + e.key + "'" + where + " must be a number, got " + got(e.v));
    return std::nullopt;
  }
  return j->get<double>();
}

std::optional<bool> Loader::get_bool(const Entry& e, const std::string& where) {
  std::optional<json> j = e.v.IsScalar() ? scalar_json(e.v) : json();
  if (!j) return std::nullopt;
  if (!j->is_boolean()) {
    error(e, "'" + e.key + "'" + where + " must be true or false, got " + got(e.v));
    return std::nullopt;
  }
  return j->get<bool>();
}

std::optional<Micros> Loader::get_duration(const Entry& e, const std::string& where) {
  auto s = get_string(e, where);
  if (!s) return std::nullopt;
  auto d = parse_duration(*s);
  if (!d.ok()) {
    error(e, "'" + e.key + "'" + where + ": " + d.message());
    return std::nullopt;
  }
  return *d;
}

std::optional<std::vector<std::string>> Loader::get_string_list(const Entry& e,
                                                                const std::string& where) {
  if (!e.v.IsSequence()) {
    error(e, "'" + e.key + "'" + where + " must be a list of strings, got " + got(e.v));
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const auto& item : e.v) {
    if (!item.IsScalar()) {
      error(item, "'" + e.key + "'" + where + " must hold strings, got " + got(item));
      ok = false;
      continue;
    }
    out.push_back(item.Scalar());
  }
  if (!ok) return std::nullopt;
  return out;
}

json Loader::to_json(const YAML::Node& n) {
  if (n.IsScalar()) return scalar_json(n).value_or(json(n.Scalar()));
  if (n.IsSequence()) {
    json a = json::array();
    for (const auto& c : n) a.push_back(to_json(c));
    return a;
  }
  if (n.IsMap()) {
    json o = json::object();
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) {
        error(kv.first, "keys must be plain strings, got " + std::string(kind_name(kv.first)));
        continue;
      }
      if (is_merge_key(kv.first)) {
        error(kv.first, kMergeKeyError);
        continue;
      }
      if (!o.contains(kv.first.Scalar())) o[kv.first.Scalar()] = to_json(kv.second);
    }
    return o;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------

void Loader::parse_param(const Entry& e) {
  ParamSpec p;
  p.name = e.key;
  p.loc = {e.k.Mark().line + 1, e.k.Mark().column + 1};
  const std::string pre = "param '" + p.name + "': ";
  if (!all_of_chars(p.name, is_id) || (p.name[0] >= '0' && p.name[0] <= '9')) {
    error(e.k, "invalid param name '" + p.name + "' (use A-Z, a-z, 0-9 and _, not first a digit)");
    return;
  }
  std::optional<ParamSpec::Type> type;
  YAML::Node default_node, enum_node;
  json default_value;
  if (e.v.IsScalar()) {  // shorthand: `name: 14` declares an int with default 14
    default_node = e.v;
    default_value = scalar_json(e.v).value_or(json());
  } else if (e.v.IsMap()) {
    const std::string where = " in param '" + p.name + "'";
    for (const Entry& f : entries(e.v, &kParamKeys, where)) {
      if (f.key == "type") {
        auto s = get_string(f, where);
        if (!s) continue;
        if (*s == "string")
          type = ParamSpec::Type::String;
        else if (*s == "int")
          type = ParamSpec::Type::Int;
        else if (*s == "float")
          type = ParamSpec::Type::Float;
        else if (*s == "bool")
          type = ParamSpec::Type::Bool;
        else
          error(f, pre + "unknown type '" + *s + "' (use string, int, float or bool)");
      } else if (f.key == "default") {
        default_node = f.v;
        if (!f.v.IsNull() && !f.v.IsScalar()) {
          error(f, pre + "default must be a single value, got " + got(f.v));
          default_node = YAML::Node();
        } else {
          default_value = f.v.IsNull() ? json() : scalar_json(f.v).value_or(json());
        }
      } else if (f.key == "min") {
        p.min = get_number(f, where);
      } else if (f.key == "max") {
        p.max = get_number(f, where);
      } else if (f.key == "pattern") {
        auto s = get_string(f, where);
        if (!s) continue;
        if (s->size() > kMaxPatternBytes) {
          error(f, pre + "pattern is longer than " + std::to_string(kMaxPatternBytes) + " bytes");
          continue;
        }
        int depth = 0, max_depth = 0;
        for (char c : *s) {
          if (c == '(')
            max_depth = std::max(max_depth, ++depth);
          else if (c == ')')
            --depth;
        }
        bool ok = max_depth <= 16;
        if (ok) {
          try {
            std::regex re(*s, std::regex::ECMAScript);
          } catch (const std::exception&) {
            ok = false;
          }
        }
        if (!ok)
          error(f, pre + "invalid pattern '" + *s + "'");
        else
          p.pattern = *s;
      } else if (f.key == "enum") {
        if (!f.v.IsSequence() || f.v.size() == 0) {
          error(f, pre + "enum must be a non-empty list of values, got " + got(f.v));
          continue;
        }
        enum_node = f.v;
        for (const auto& item : f.v) {
          if (!item.IsScalar())
            error(item, pre + "enum values must be scalars, got " + got(item));
          else
            p.choices.push_back(scalar_json(item).value_or(json(item.Scalar())));
        }
      } else if (f.key == "description") {
        if (auto s = get_string(f, where)) p.description = *s;
      }
    }
  } else {
    error(e, pre + "expected a mapping like {type: int, default: 1}, got " + got(e.v));
    return;
  }
  if (!type) {
    if (default_value.is_boolean())
      type = ParamSpec::Type::Bool;
    else if (default_value.is_number_integer())
      type = ParamSpec::Type::Int;
    else if (default_value.is_number())
      type = ParamSpec::Type::Float;
    else
      type = ParamSpec::Type::String;
  }
  p.type = *type;
  // YAML reads `default: 14` as an int; a string param takes the text as written.
  auto coerce = [&](json& v, const YAML::Node& n) {
    if (p.type == ParamSpec::Type::String && !v.is_string() && !v.is_null() && n.IsScalar())
      v = n.Scalar();
  };
  if (p.type != ParamSpec::Type::Int && p.type != ParamSpec::Type::Float && (p.min || p.max))
    error(e.k, pre + "min and max apply only to int and float params");
  if (p.type != ParamSpec::Type::String && p.pattern)
    error(e.k, pre + "pattern applies only to string params");
  if (p.min && p.max && *p.min > *p.max) error(e.k, pre + "min is above max");
  if (!p.choices.empty()) {
    size_t i = 0;
    std::vector<json> checked;
    for (const auto& item : enum_node) {
      if (!item.IsScalar()) continue;
      json v = p.choices[i++];
      coerce(v, item);
      ParamSpec bare = p;
      bare.choices.clear();
      auto r = bare.check(v);
      if (!r.ok())
        error(item, "enum value: " + r.message());
      else
        checked.push_back(*r);
    }
    p.choices = checked;
  }
  if (!default_value.is_null()) {
    coerce(default_value, default_node);
    auto r = p.check(default_value);
    if (!r.ok())
      error(default_node, "default: " + r.message());
    else
      p.default_value = *r;
  }
  dag_.params.push_back(std::move(p));
}

void Loader::parse_params(const Entry& e) {
  if (e.v.IsNull()) return;
  if (!e.v.IsMap()) {
    error(e, "'params' must be a mapping of NAME: {type: ..., default: ...}, got " + got(e.v));
    return;
  }
  for (const Entry& p : entries(e.v, nullptr, " in params")) parse_param(p);
}

void Loader::parse_alerts(const Entry& e) {
  if (e.v.IsNull()) return;
  if (!e.v.IsMap()) {
    error(e, "'alerts' must be a mapping like {on_failure: [channel]}, got " + got(e.v));
    return;
  }
  for (const Entry& a : entries(e.v, &kAlertKeys, " in alerts")) {
    if (auto list = get_string_list(a, " in alerts")) dag_.alerts[a.key] = *list;
  }
}

void Loader::parse_resources(const Entry& e, Resources& r, const std::string& where) {
  if (!e.v.IsMap()) {
    error(e, "'resources'" + where + " must be a mapping like {gpu: 1, cpu: 4, memory: 16G}, got " +
                 got(e.v));
    return;
  }
  const std::string rwhere = " in resources" + (where.empty() ? "" : " of" + where.substr(3));
  for (const Entry& f : entries(e.v, &kResourceKeys, rwhere)) {
    if (f.key == "gpu") {
      if (auto v = get_int(f, rwhere)) {
        if (*v < 0 || *v > 1024)
          error(f, "'gpu'" + rwhere + " must be between 0 and 1024, got " + std::to_string(*v));
        else
          r.gpu = static_cast<int>(*v);
      }
    } else if (f.key == "cpu") {
      if (auto v = get_number(f, rwhere)) {
        if (*v < 0 || *v > 1e6)
          error(f, "'cpu'" + rwhere + " must be 0 or more, got " + got(f.v));
        else
          r.cpu = *v;
      }
    } else if (f.key == "memory") {
      if (!f.v.IsScalar() || f.v.IsNull()) {
        error(f, "'memory'" + rwhere + " must be a size like 16G, got " + got(f.v));
        continue;
      }
      auto v = parse_size(f.v.Scalar());
      if (!v) {
        error(f, "'memory'" + rwhere + ": invalid size '" + f.v.Scalar() +
                     "' (use a number and K, M, G or T, e.g. 16G)");
      } else {
        r.memory_bytes = *v;
      }
    }
  }
}

void Loader::parse_task_fields(const std::vector<Entry>& fields, TaskSpec& t, TaskNodes& nodes,
                               const std::string& where) {
  for (const Entry& f : fields) {
    const std::string& k = f.key;
    if (k == "type") {
      if (auto s = get_string(f, where)) {
        t.type = *s;
        nodes.type = f.v;
      }
    } else if (k == "description") {
      (void)get_string(f, where);
    } else if (k == "needs") {
      if (!f.v.IsSequence()) {
        error(f, "'needs'" + where + " must be a list of task names, got " + got(f.v));
        continue;
      }
      for (const auto& item : f.v) {
        if (!item.IsScalar() || item.IsNull()) {
          error(item, "'needs'" + where + " must hold task names, got " + got(item));
          continue;
        }
        nodes.needs.emplace_back(item.Scalar(), item);
      }
    } else if (k == "run") {
      nodes.run = f.v;
      t.run_shell.reset();
      t.run_argv.clear();
      if (f.v.IsScalar() && !f.v.IsNull()) {
        if (f.v.Scalar().empty())
          error(f, "'run'" + where + " must not be empty");
        else
          t.run_shell = f.v.Scalar();
      } else if (f.v.IsSequence()) {
        for (const auto& item : f.v) {
          if (!item.IsScalar() || item.IsNull())
            error(item, "'run'" + where + " must hold strings, got " + got(item));
          else
            t.run_argv.push_back(item.Scalar());
        }
        if (f.v.size() == 0) error(f, "'run'" + where + " must not be empty");
      } else {
        error(f, "'run'" + where + " must be a string (a shell command) or a list (an argv), got " +
                     got(f.v));
        nodes.run = YAML::Node();
      }
    } else if (k == "with") {
      if (f.v.IsNull()) continue;
      if (!f.v.IsMap()) {
        error(f, "'with'" + where + " must be a mapping, got " + got(f.v));
        continue;
      }
      nodes.with = f.v;
      t.with = to_json(f.v);
    } else if (k == "outputs") {
      auto list = get_string_list(f, where);
      if (!list) continue;
      size_t i = 0;
      for (const auto& item : f.v) {
        const std::string& path = (*list)[i++];
        if (!safe_relative_path(path))
          error(item,
                "output '" + path + "'" + where + " must be a relative path inside the work dir");
      }
      t.outputs = *list;
    } else if (k == "uses") {
      if (!f.v.IsMap()) {
        error(f, "'uses'" + where + " must be a mapping {model: NAME@ALIAS}, got " + got(f.v));
        continue;
      }
      for (const Entry& u : entries(f.v, nullptr, where)) {
        if (u.key != "model") {
          error(u.k, "unknown key '" + u.key + "' in 'uses'" + where + " (it takes model: REF)");
          continue;
        }
        auto text = get_string(u, where);
        if (!text) continue;
        if (text->find("{{") != std::string::npos) {
          error(u, "'uses: model'" + where +
                       " is fixed text (NAME@ALIAS, NAME/V or NAME): it is pinned when a run is "
                       "created, before any template could be rendered");
          continue;
        }
        auto ref = models::parse_model_ref(*text);
        if (!ref)
          error(u, "'uses: model'" + where + ": " + ref.message());
        else
          t.uses_model = *text;
      }
    } else if (k == "values") {
      auto list = get_string_list(f, where);
      if (!list) continue;
      size_t i = 0;
      for (const auto& item : f.v) {
        const std::string& key = (*list)[i++];
        if (!is_value_key(key))
          error(item, "value '" + key + "'" + where +
                          " must be a name of letters, digits, '_', '-' and '.', starting with a "
                          "letter or '_'");
      }
      t.values = *list;
    } else if (k == "env") {
      if (!f.v.IsMap()) {
        error(f, "'env'" + where + " must be a mapping of NAME: value, got " + got(f.v));
        continue;
      }
      nodes.env = f.v;
      for (const Entry& v : entries(f.v, nullptr, where)) {
        if (!all_of_chars(v.key, is_id) || (v.key[0] >= '0' && v.key[0] <= '9')) {
          error(v.k, "invalid env name '" + v.key + "'" + where);
          continue;
        }
        if (!v.v.IsScalar()) {
          error(v, "env '" + v.key + "'" + where + " must be a string, got " + got(v.v));
          continue;
        }
        t.env[v.key] = v.v.Scalar();
      }
    } else if (k == "resources") {
      parse_resources(f, t.resources, where);
    } else if (k == "retries") {
      if (auto v = get_int(f, where)) {
        if (*v < 0)
          error(f, "'retries'" + where + " must be 0 or more, got " + std::to_string(*v));
        else if (*v > 1000)
          error(f, "'retries'" + where + " must be at most 1000, got " + std::to_string(*v));
        else
          t.retries = static_cast<int>(*v);
      }
    } else if (k == "retry_delay") {
      if (auto d = get_duration(f, where)) t.retry_delay = *d;
    } else if (k == "max_retry_delay") {
      if (auto d = get_duration(f, where)) t.max_retry_delay = *d;
    } else if (k == "timeout") {
      if (auto d = get_duration(f, where)) {
        if (d->count() <= 0)
          error(f, "'timeout'" + where + " must be more than 0");
        else
          t.timeout = *d;
      }
    } else if (k == "queue") {
      if (auto s = get_string(f, where)) {
        if (!all_of_chars(*s, is_queue_char))
          error(f, "invalid queue name '" + *s + "'" + where + " (use A-Z, a-z, 0-9, _, - and .)");
        else
          t.queue = *s;
      }
    } else if (k == "trigger_rule") {
      if (auto s = get_string(f, where)) {
        if (*s == "all_success")
          t.trigger_rule = TriggerRule::AllSuccess;
        else if (*s == "all_done")
          t.trigger_rule = TriggerRule::AllDone;
        else if (*s == "one_failed")
          t.trigger_rule = TriggerRule::OneFailed;
        else
          error(f, "unknown trigger_rule '" + *s + "'" + where + did_you_mean(*s, kTriggerRules) +
                       "; use " + names_list(kTriggerRules));
      }
    }
  }
}

void Loader::parse_tasks(const Entry& e) {
  if (e.v.IsNull() || (e.v.IsMap() && e.v.size() == 0)) {
    error(e.k, "DAG has no tasks");
    return;
  }
  if (!e.v.IsMap()) {
    error(e, "'tasks' must be a mapping of TASK_ID: {...}, got " + got(e.v));
    return;
  }
  size_t order = 0;
  for (const Entry& te : entries(e.v, nullptr, " in tasks")) {
    TaskSpec t = defaults_;
    TaskNodes nodes;
    if (have_defaults_) nodes.env = defaults_nodes_.env;
    nodes.key = te.k;
    nodes.file_order = order++;
    t.id = te.key;
    t.loc = {te.k.Mark().line + 1, te.k.Mark().column + 1};
    if (!all_of_chars(t.id, is_id)) {
      error(te.k, "invalid task id '" + t.id + "' (use only A-Z, a-z, 0-9 and _)");
      continue;
    }
    if (!te.v.IsMap()) {
      error(te, "task '" + t.id + "' must be a mapping of keys (type:, run:, needs: ...), got " +
                    got(te.v));
      continue;
    }
    const std::string where = " in task '" + t.id + "'";
    parse_task_fields(entries(te.v, &kTaskKeys, where), t, nodes, where);
    dag_.tasks.push_back(std::move(t));
    task_nodes_.push_back(std::move(nodes));
  }
}

// Needs targets, self dependencies, cycles; then sorts the tasks topologically.
void Loader::check_graph() {
  const size_t n = dag_.tasks.size();
  std::map<std::string, size_t> index;
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i) {
    index[dag_.tasks[i].id] = i;
    ids.push_back(dag_.tasks[i].id);
  }
  // edges[i]: indices task i needs, with the node naming each.
  std::vector<std::vector<std::pair<size_t, YAML::Node>>> edges(n);
  for (size_t i = 0; i < n; ++i) {
    TaskSpec& t = dag_.tasks[i];
    std::set<std::string> seen;
    for (auto& [name, node] : task_nodes_[i].needs) {
      if (name == t.id) {
        error(node, "task '" + t.id + "' needs itself");
        continue;
      }
      auto it = index.find(name);
      if (it == index.end()) {
        error(node,
              "task '" + t.id + "' needs unknown task '" + name + "'" + did_you_mean(name, ids));
        continue;
      }
      if (!seen.insert(name).second) continue;
      t.needs.push_back(name);
      edges[i].emplace_back(it->second, node);
    }
  }
  // Kahn's algorithm; ties in file order, so the sort is stable and readable.
  std::vector<size_t> pending(n, 0);
  std::vector<std::vector<size_t>> dependents(n);
  for (size_t i = 0; i < n; ++i) {
    pending[i] = edges[i].size();
    for (auto& [j, node] : edges[i]) dependents[j].push_back(i);
  }
  std::set<size_t> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.insert(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t d : dependents[i])
      if (--pending[d] == 0) ready.insert(d);
  }
  if (order.size() < n) {
    // Every task left is on a cycle or downstream of one. Name each cycle once: start
    // from the earliest remaining task, walk needs (within the remaining set) until a
    // task repeats.
    std::vector<bool> left(n, false), reported(n, false);
    for (size_t i = 0; i < n; ++i) left[i] = pending[i] > 0;
    for (size_t s = 0; s < n; ++s) {
      if (!left[s] || reported[s]) continue;
      std::vector<size_t> path;
      std::vector<long> pos_in_path(n, -1);
      size_t cur = s;
      while (pos_in_path[cur] < 0) {
        pos_in_path[cur] = static_cast<long>(path.size());
        path.push_back(cur);
        size_t next = n;
        for (auto& [j, node] : edges[cur])
          if (left[j]) {
            next = j;
            break;
          }
        if (next == n) break;  // cannot happen: a left task needs a left task
        cur = next;
      }
      if (pos_in_path[cur] < 0 || path.back() == cur) continue;
      std::vector<size_t> cycle(path.begin() + pos_in_path[cur], path.end());
      bool already = false;
      for (size_t c : cycle) already = already || reported[c];
      for (size_t c : cycle) reported[c] = true;
      if (already) continue;
      // Start the cycle at its earliest task in the file.
      auto first = std::min_element(cycle.begin(), cycle.end());
      std::rotate(cycle.begin(), first, cycle.end());
      std::string text = "cycle: ";
      for (size_t c : cycle) text += dag_.tasks[c].id + " -> ";
      text += dag_.tasks[cycle[0]].id;
      size_t to = cycle.size() > 1 ? cycle[1] : cycle[0];
      YAML::Node at = task_nodes_[cycle[0]].key;
      for (auto& [j, node] : edges[cycle[0]])
        if (j == to) {
          at = node;
          break;
        }
      error(at, text);
    }
    return;  // tasks stay unsorted; the DAG is not returned anyway
  }
  std::vector<TaskSpec> sorted;
  std::vector<TaskNodes> sorted_nodes;
  for (size_t i : order) {
    sorted.push_back(std::move(dag_.tasks[i]));
    sorted_nodes.push_back(std::move(task_nodes_[i]));
  }
  dag_.tasks = std::move(sorted);
  task_nodes_ = std::move(sorted_nodes);
}

void Loader::check_task_types() {
  auto& registry = TaskTypeRegistry::instance();
  for (size_t i = 0; i < dag_.tasks.size(); ++i) {
    const TaskSpec& t = dag_.tasks[i];
    const TaskNodes& nodes = task_nodes_[i];
    const TaskType* type = registry.find(t.type);
    if (!type) {
      error(present(nodes.type) ? nodes.type : nodes.key,
            "unknown task type '" + t.type + "' in task '" + t.id + "'" +
                did_you_mean(t.type, registry.names()));
      continue;
    }
    bool has_run = t.run_shell.has_value() || !t.run_argv.empty() || present(nodes.run);
    if (type->run_field() == TaskType::RunField::Required && !has_run)
      error(nodes.key, "task '" + t.id + "' (type '" + t.type + "') needs 'run'");
    if (type->run_field() == TaskType::RunField::Forbidden && has_run)
      error(present(nodes.run) ? nodes.run : nodes.key,
            "task '" + t.id + "' (type '" + t.type + "') does not take 'run'");
    std::vector<ConfigError> errors;
    try {
      type->validate(t.with, errors);
    } catch (const std::exception& ex) {
      errors.push_back(ConfigError{"", ex.what()});
    }
    for (const auto& ce : errors) {
      YAML::Node at = nodes.key;
      if (present(nodes.with) && nodes.with.IsMap()) {
        at = nodes.with;
        for (const auto& kv : nodes.with) {
          if (!ce.key.empty() && kv.first.IsScalar() && kv.first.Scalar() == ce.key) {
            at = kv.first;
            break;
          }
        }
      }
      error(at, "task '" + t.id + "': " + ce.message);
    }
  }
}

void Loader::check_template_string(const YAML::Node& n, const std::string& task_id,
                                   const std::set<std::string>* ancestors,
                                   const std::string& where) {
  const std::string& text = n.Scalar();
  if (text.find("{{") == std::string::npos) return;
  auto refs = parse_template(text);
  if (!refs.ok()) {
    // Find the offending "{{" the way parse_template does.
    size_t p = 0, at = 0;
    while ((p = text.find("{{", p)) != std::string::npos) {
      size_t end = text.find("}}", p + 2);
      at = p;
      if (end == std::string::npos) break;
      auto one = parse_template(std::string_view(text).substr(p, end + 2 - p));
      if (!one.ok()) break;
      p = end + 2;
    }
    error_in_scalar(n, at, refs.message() + where);
    return;
  }
  std::vector<std::string> known = fixed_template_names();
  for (const auto& p : dag_.params) known.push_back("params." + p.name);
  if (ancestors)
    for (const auto& a : *ancestors) known.push_back("inputs." + a + ".path");
  const TaskSpec* self = dag_.task(task_id);
  const bool uses_model = self && !self->uses_model.empty();
  if (uses_model) known.push_back("inputs.model.path");
  std::vector<std::string> ids;
  for (const auto& t : dag_.tasks) ids.push_back(t.id);
  using K = TemplateName::Kind;
  for (const auto& ref : *refs) {
    const std::string& name = ref.name;
    auto quoted = "'{{ " + name + " }}'" + where;
    TemplateName what = classify_template_name(name);
    switch (what.kind) {
      case K::RunId:
      case K::LogicalDate:
      case K::IntervalStart:
      case K::IntervalEnd:
      case K::ProjectDir:
      case K::Secret:
        continue;
      case K::Param:
        if (dag_.param(what.subject)) continue;
        break;
      case K::InputPath:
      case K::Output: {
        const std::string& task = what.subject;
        if (what.kind == K::InputPath && task == "model" && uses_model) continue;
        if (!dag_.task(task)) {
          error_in_scalar(n, ref.offset,
                          quoted + " names unknown task '" + task + "'" + did_you_mean(task, ids));
        } else if (ancestors && !ancestors->count(task)) {
          error_in_scalar(n, ref.offset,
                          quoted + " names task '" + task + "', which is not upstream of '" +
                              task_id + "' (add it to needs)");
        } else if (what.kind == K::Output) {  // in defaults (no ancestors) any task will do
          check_published(n, ref.offset, quoted, *dag_.task(task), what.key);
        }
        continue;
      }
      case K::Unknown:
        break;
    }
    error_in_scalar(n, ref.offset,
                    "unknown template name '" + name + "'" + where + did_you_mean(name, known));
  }
}

// Whether `key` is one of `keys` or falls under a "PREFIX.*" entry.
static bool publishes(const std::vector<std::string>& keys, const std::string& key) {
  for (const auto& k : keys) {
    if (k == key) return true;
    if (k.size() >= 2 && k.compare(k.size() - 2, 2, ".*") == 0 && key.size() > k.size() - 1 &&
        key.compare(0, k.size() - 1, k, 0, k.size() - 1) == 0)
      return true;
  }
  return false;
}

void Loader::check_published(const YAML::Node& n, size_t offset, const std::string& quoted,
                             const TaskSpec& upstream, const std::string& key) {
  const TaskType* type = TaskTypeRegistry::instance().find(upstream.type);
  if (!type) return;  // reported as an unknown type
  std::vector<std::string> keys;
  try {
    keys = type->published_keys(upstream.with);
  } catch (const std::exception&) {
    return;  // a malformed `with:` is the type's validate() to report
  }
  // Those it lists in `values:` (written to DROVER_VALUES_FILE) are published too.
  keys.insert(keys.end(), upstream.values.begin(), upstream.values.end());
  if (publishes(keys, key)) return;
  std::string hint = did_you_mean(key, keys);
  if (hint.empty())
    hint = keys.empty() ? " (it publishes none; list the keys it writes to DROVER_VALUES_FILE "
                          "under its 'values')"
                        : " (it publishes " + names_list(keys) + ")";
  error_in_scalar(n, offset,
                  quoted + ": task '" + upstream.id + "' (type '" + upstream.type +
                      "') publishes no value '" + key + "'" + hint);
}

void Loader::check_templates_in(const YAML::Node& n, const std::string& task_id,
                                const std::set<std::string>* ancestors, const std::string& where,
                                int depth) {
  if (depth > kMaxDepth) return;
  if (n.IsScalar()) {
    check_template_string(n, task_id, ancestors, where);
  } else if (n.IsSequence()) {
    for (const auto& c : n) check_templates_in(c, task_id, ancestors, where, depth + 1);
  } else if (n.IsMap()) {
    for (const auto& kv : n) check_templates_in(kv.second, task_id, ancestors, where, depth + 1);
  }
}

// True when a scalar under `n` holds "{{" (bounded by the loader's depth limit).
static bool has_template(const YAML::Node& n, int depth) {
  if (!n.IsDefined() || n.IsNull() || depth > 64) return false;
  if (n.IsScalar()) return n.Scalar().find("{{") != std::string::npos;
  if (n.IsSequence())
    for (const auto& c : n)
      if (has_template(c, depth + 1)) return true;
  if (n.IsMap())
    for (const auto& kv : n)
      if (has_template(kv.second, depth + 1)) return true;
  return false;
}

// The first template ("{{") of shell command `cmd` that stands inside the author's own
// quotes, and the quote: drover single-quotes every value it puts in a shell string, which is
// safe where the template stands bare and breaks inside quotes: in "...", a value's quotes are
// literal and the shell expands $(...) and `...` in it; in '...', its quotes end the author's.
// A plain scan: backslash escapes (outside '...'), comments from a '#' that starts a word.
std::optional<std::pair<size_t, char>> template_in_quotes(std::string_view cmd) {
  char quote = 0;
  for (size_t i = 0; i < cmd.size(); ++i) {
    char c = cmd[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0;
    } else if (c == '\\') {
      ++i;
      continue;
    } else if (quote == '"') {
      if (c == '"') quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
      continue;
    } else if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(cmd[i - 1])))) {
      size_t eol = cmd.find('\n', i);
      if (eol == std::string_view::npos) break;
      i = eol;
      continue;
    }
    if (quote && c == '{' && i + 1 < cmd.size() && cmd[i + 1] == '{') return std::pair{i, quote};
  }
  return std::nullopt;
}

void Loader::check_templates() {
  // Index for ancestors() (the tasks may be unsorted when there is a cycle).
  dag_.task_index.clear();
  for (size_t i = 0; i < dag_.tasks.size(); ++i) dag_.task_index[dag_.tasks[i].id] = i;
  if (have_defaults_ && present(defaults_nodes_.env))
    check_templates_in(defaults_nodes_.env, "", nullptr, " in defaults", 0);
  for (size_t i = 0; i < dag_.tasks.size(); ++i) {
    const TaskSpec& t = dag_.tasks[i];
    const TaskNodes& nodes = task_nodes_[i];
    // Ancestors cost O(tasks) per task: compute them only for tasks with templates.
    bool templated =
        has_template(nodes.run, 0) || has_template(nodes.with, 0) || has_template(nodes.env, 0);
    if (!templated) continue;
    auto list = dag_.ancestors(t.id);
    std::set<std::string> anc(list.begin(), list.end());
    const std::string where = " in task '" + t.id + "'";
    if (present(nodes.run)) check_templates_in(nodes.run, t.id, &anc, where, 0);
    if (present(nodes.run) && nodes.run.IsScalar()) {
      if (auto q = template_in_quotes(nodes.run.Scalar())) {
        bool dq = q->second == '"';
        error_in_scalar(nodes.run, q->first,
                        std::string("a template inside ") + (dq ? "double" : "single") +
                            " quotes in a shell command: drover quotes the value itself, and " +
                            (dq ? "inside \"...\" the shell would still run $(...) and `...` in it"
                                : "the value's own quotes would end yours") +
                            "; drop the quotes around it (" + (dq ? "\"" : "'") + "{{ ... }}" +
                            (dq ? "\"" : "'") + " -> {{ ... }})");
      }
    }
    if (present(nodes.with)) check_templates_in(nodes.with, t.id, &anc, where, 0);
    if (present(nodes.env) && !(have_defaults_ && nodes.env.is(defaults_nodes_.env)))
      check_templates_in(nodes.env, t.id, &anc, where, 0);
  }
}

// The model steps find what they work on upstream: a validate its train, a promote its
// validate (DagSpec::upstream_of_type); a task's `uses:` model is its input "model".
// Run on a graph without errors (no cycles).
void Loader::check_model_tasks() {
  dag_.task_index.clear();
  for (size_t i = 0; i < dag_.tasks.size(); ++i) dag_.task_index[dag_.tasks[i].id] = i;
  static const struct {
    const char* type;
    const char* upstream;
    const char* key;
  } kSteps[] = {{"validate", "train", "candidate"}, {"promote", "validate", "validation"}};
  for (size_t i = 0; i < dag_.tasks.size(); ++i) {
    const TaskSpec& t = dag_.tasks[i];
    if (!t.uses_model.empty()) {
      auto up = dag_.ancestors(t.id);
      if (std::find(up.begin(), up.end(), "model") != up.end())
        error(task_nodes_[i].key, "task '" + t.id +
                                      "' uses a model, read as {{ inputs.model.path }}, and has "
                                      "a task named 'model' upstream: rename that task");
    }
    for (const auto& step : kSteps) {
      if (t.type != step.type) continue;
      auto up = dag_.upstream_of_type(t.id, step.upstream, step.key);
      if (up) continue;
      const TaskNodes& nodes = task_nodes_[i];
      YAML::Node at = nodes.key;
      if (present(nodes.with) && nodes.with.IsMap()) {
        at = nodes.with;
        for (const auto& kv : nodes.with)
          if (kv.first.IsScalar() && kv.first.Scalar() == step.key) at = kv.first;
      }
      error(at, "task '" + t.id + "': " + up.message());
    }
  }
}

LoadResult Loader::run() {
  dag_.file = file_;
  auto fail = [&]() {
    std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.line, a.col) < std::tie(b.line, b.col);
    });
    diags_.erase(std::unique(diags_.begin(), diags_.end(),
                             [](const Diagnostic& a, const Diagnostic& b) {
                               return a.line == b.line && a.col == b.col && a.message == b.message;
                             }),
                 diags_.end());
    return LoadResult{nullptr, std::move(diags_)};
  };
  if (text_.size() > limits_.max_file_bytes) {
    error_at(1, 1, too_large(text_.size(), limits_));
    return fail();
  }
  if (auto e = check_encoding(text_)) {
    error_at_offset(e->offset, e->message);
    return fail();
  }
  if (auto e = check_nesting(text_)) {
    error_at_offset(e->offset, e->message);
    return fail();
  }
  // YAML::LoadAll loops forever on a stray token at the top level (yaml-cpp #1040, fixed
  // after 0.7): load the first document, then count documents with a bounded loop.
  YAML::Node root;
  std::vector<YAML::Mark> doc_starts;
  try {
    root = YAML::Load(std::string(text_));
    // Counting the documents parses the text again: skipped when the first one provably
    // runs to the end (a DAG file's usual shape), which halves the time a load takes.
    // A mapping's indentation is its first key's column (an anchor or tag before it may
    // stand further left).
    bool one = false;
    if (root.IsMap() && root.Style() == YAML::EmitterStyle::Block && root.size() > 0) {
      const YAML::Mark k = root.begin()->first.Mark();
      one = k.column == 0 && k.pos >= 0 && runs_to_end(text_, static_cast<size_t>(k.pos));
    }
    if (!one) {
      std::istringstream in{std::string(text_)};
      YAML::Parser parser(in);
      DocumentCounter counter;
      while (counter.starts.size() < 3 && parser.HandleNextDocument(counter)) {
      }
      doc_starts = counter.starts;
    }
  } catch (const YAML::Exception& ex) {
    std::string msg = ex.msg.empty() ? std::string("malformed YAML") : ex.msg;
    const std::string kBadCodePoint = "invalid unicode: ";
    if (msg.rfind(kBadCodePoint, 0) == 0) {  // "\ud800", "\U00110000"
      unsigned long long cp = 0;
      std::from_chars(msg.data() + kBadCodePoint.size(), msg.data() + msg.size(), cp);
      char hex[32];
      std::snprintf(hex, sizeof hex, "U+%04llX", cp);
      msg = std::string("an escape names ") + hex + ", which is not a character (" +
            (cp > 0x10ffff ? "above U+10FFFF" : "a UTF-16 surrogate") + ")";
    }
    error(ex.mark, "invalid YAML: " + msg);
    return fail();
  } catch (const std::exception& ex) {
    error_at(1, 1, std::string("invalid YAML: ") + ex.what());
    return fail();
  }
  if (doc_starts.size() > 1) {
    const YAML::Mark& m = doc_starts[1];
    bool stuck = doc_starts.size() > 2 && doc_starts[2].pos == m.pos;  // a stray token
    if (stuck && m.pos >= 0 && static_cast<size_t>(m.pos) < text_.size()) {
      error(m, std::string("invalid YAML: unexpected '") + text_[m.pos] + "'");
      return fail();
    }
    error(m, "a DAG file holds one YAML document; found another here");
  }
  if (!root.IsDefined() || root.IsNull()) {
    if (is_blank(text_))
      error_at(1, 1, "empty DAG file");
    else
      error(root, "a DAG file must be a mapping of keys (dag:, tasks: ...), got nothing");
    return fail();
  }
  size_t count = 0;
  bool too_deep = false;
  if (!count_nodes(root, 0, limits_.max_yaml_nodes, count, too_deep)) {
    error_at(1, 1,
             too_deep ? "nesting deeper than " + std::to_string(kMaxDepth) +
                            " levels (after expanding aliases)"
                      : "too many YAML nodes (more than " + std::to_string(limits_.max_yaml_nodes) +
                            " after expanding aliases)");
    return fail();
  }
  if (!root.IsMap()) {
    error(root, "a DAG file must be a mapping of keys (dag:, tasks: ...), got " + got(root));
    return fail();
  }
  try {
    fix_scalars(root, -1, 0);
    if (!diags_.empty()) return fail();
    YAML::Node tasks_node;
    for (const auto& kv : root)
      if (kv.first.IsScalar() && kv.first.Scalar() == "tasks") {
        tasks_node = kv.second;
        break;
      }
    check_duplicates(root, tasks_node);

    std::vector<Entry> top = entries(root, &kTopKeys, "");
    auto find = [&](const std::string& k) -> const Entry* {
      for (const auto& e : top)
        if (e.key == k) return &e;
      return nullptr;
    };
    // `defaults:` first: tasks start from it.
    if (const Entry* d = find("defaults")) {
      if (d->v.IsMap()) {
        have_defaults_ = true;
        parse_task_fields(entries(d->v, &kDefaultsKeys, " in defaults"), defaults_, defaults_nodes_,
                          " in defaults");
      } else if (!d->v.IsNull()) {
        error(*d, "'defaults' must be a mapping, got " + got(d->v));
      }
    }
    if (const Entry* p = find("params")) parse_params(*p);
    for (const Entry& e : top) {
      const std::string& k = e.key;
      if (k == "dag") {
        if (auto s = get_string(e, "")) {
          if (!all_of_chars(*s, is_lower_id))
            error(e, "invalid dag id '" + *s + "' (use only a-z, 0-9 and _)");
          else
            dag_.id = *s;
          dag_.id_loc = {e.k.Mark().line + 1, e.k.Mark().column + 1};
        }
      } else if (k == "description") {
        if (auto s = get_string(e, "")) dag_.description = *s;
      } else if (k == "owner") {
        if (auto s = get_string(e, "")) dag_.owner = *s;
      } else if (k == "schedule") {
        if (e.v.IsNull()) continue;  // manual only
        auto s = get_string(e, "");
        if (!s) continue;
        int col = 0;
        auto sched = cron::Schedule::parse(*s, &col);
        if (!sched.ok())
          error_in_scalar(e.v, col > 0 ? col - 1 : 0, sched.message());
        else
          dag_.schedule = *sched;
      } else if (k == "timezone") {
        auto s = get_string(e, "");
        if (!s) continue;
        if (!find_zone(*s).ok()) {
          std::vector<std::string> zones;
          try {
            for (const auto& z : date::get_tzdb().zones) zones.push_back(z.name());
          } catch (const std::exception&) {
          }
          error(e, "unknown time zone '" + *s + "'" + did_you_mean(*s, zones));
        } else {
          dag_.timezone = *s;
        }
      } else if (k == "catchup") {
        if (auto b = get_bool(e, "")) dag_.catchup = *b;
      } else if (k == "max_active_runs") {
        if (auto v = get_int(e, "")) {
          if (*v < 1 || *v > 1000000)
            error(e, "'max_active_runs' must be at least 1, got " + std::to_string(*v));
          else
            dag_.max_active_runs = static_cast<int>(*v);
        }
      } else if (k == "tags") {
        if (auto list = get_string_list(e, "")) dag_.tags = *list;
      } else if (k == "sla") {
        if (auto d = get_duration(e, "")) dag_.sla = *d;
      } else if (k == "alerts") {
        parse_alerts(e);
      } else if (k == "tasks") {
        parse_tasks(e);
      }
    }
    if (!find("dag")) error_at(1, 1, "missing required key 'dag'");
    if (!find("tasks")) error_at(1, 1, "DAG has no tasks");
    check_graph();
    check_task_types();
    check_templates();
    if (diags_.empty()) check_model_tasks();
  } catch (const std::exception& ex) {
    // yaml-cpp conversions should not throw after the checks above; never let one escape.
    error_at(1, 1, std::string("internal error while loading: ") + ex.what());
  }
  if (!diags_.empty()) return fail();
  dag_.task_index.clear();
  for (size_t i = 0; i < dag_.tasks.size(); ++i) dag_.task_index[dag_.tasks[i].id] = i;
  index_graph(dag_);
  dag_.content = std::string(text_);
  dag_.file_hash = sha256_hex(text_);
  return LoadResult{std::make_shared<const DagSpec>(std::move(dag_)), {}};
}

}  // namespace

LoadResult load_dag_text(std::string_view text, const std::string& filename,
                         const DagLimits& limits) {
  Loader loader(text, filename, limits);
  return loader.run();
}

LoadResult load_dag_file(const std::filesystem::path& path, const DagLimits& limits) {
  const std::string name = path.string();
  auto fail = [&](std::string msg) {
    return LoadResult{nullptr, {Diagnostic{name, 1, 1, std::move(msg)}}};
  };
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec) return fail("cannot read: " + ec.message());
  if (!std::filesystem::is_regular_file(status)) return fail("cannot read: not a regular file");
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return fail("cannot read: " + ec.message());
  if (size > limits.max_file_bytes) return fail(too_large(size, limits));
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read: " + std::string(std::strerror(errno)));
  // The size stat gave, and one byte more; a file that grew since is read on, up to one byte
  // past the limit (which load_dag_text refuses). A high limit costs nothing for small files.
  std::string content(static_cast<size_t>(size) + 1, '\0');
  size_t got = 0;
  while (true) {
    in.read(content.data() + got, static_cast<std::streamsize>(content.size() - got));
    got += static_cast<size_t>(in.gcount());
    if (got < content.size() || content.size() > limits.max_file_bytes) break;
    content.resize(std::min(content.size() * 2, limits.max_file_bytes + 1));
  }
  content.resize(got);
  return load_dag_text(content, name, limits);
}

std::vector<std::filesystem::path> find_dag_files(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) return out;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    std::string base = p.filename().string();
    if (!base.empty() && base[0] == '.') {  // .git, .drover and other hidden things
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    auto ext = p.extension().string();
    if (ext == ".yaml" || ext == ".yml") out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace drover
