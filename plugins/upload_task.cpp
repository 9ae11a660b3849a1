// The `upload` task type (DESIGN.md §6, docs/models.md "Upload targets"): with: {target:
// URL, prefix: NAME, file: PATH, key: COLUMN, keep: 3, format: jsonl|csv}, and for http(s)
// targets {token, batch_size, retries, ca_file}. Streams batch
// predictions (JSON lines, or CSV with a header) keyed by a column into a serving store
// (plugins/upload_targets.hpp) under a new version, then flips the current pointer in one
// atomic step and removes sets beyond `keep`. Bad input (a broken line, a missing key, a
// duplicate key, an empty file) uploads nothing and flips nothing. Reads the file line by
// line: memory does not grow with it. Stateless; thread-safe.
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "common/clock.hpp"
#include "common/time.hpp"
#include "plugins/task_type.hpp"
#include "plugins/upload_targets.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;

// Whether `s` is, in full, a number as JSON spells it.
bool is_json_number(std::string_view s) {
  size_t i = 0, n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (i >= n || !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= n || !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  }
  return i == n;
}

// Whether s[i..] starts a valid UTF-8 sequence (no overlongs, no surrogates, <= U+10FFFF);
// its length in `len`.
bool utf8_sequence(std::string_view s, size_t i, size_t& len) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  if (c < 0x80) return len = 1, true;
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return len = 2, cont(1);
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return false;
    if (c == 0xE0 && b(1) < 0xA0) return false;  // overlong
    if (c == 0xED && b(1) > 0x9F) return false;  // a surrogate
    return len = 3, true;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return false;
    if (c == 0xF0 && b(1) < 0x90) return false;
    if (c == 0xF4 && b(1) > 0x8F) return false;
    return len = 4, true;
  }
  return false;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Validates one JSON text (RFC 8259) and writes it without insignificant whitespace: strings
// and numbers are copied as written, members stay in their order. Also finds the top-level
// member named `key` (its value: a string, unescaped, or a number as written). Faster than
// building a DOM and dumping it, which matters at a million rows.
class CompactJson {
 public:
  static constexpr int kMaxDepth = 256;
  enum class KeyKind { Absent, String, Number, Other };

  // false with error() set on invalid JSON.
  bool run(std::string_view text, std::string_view key, std::string& out) {
    s_ = text;
    i_ = 0;
    out_ = &out;
    key_ = key;
    out.clear();
    kind_ = KeyKind::Absent;
    error_.clear();
    ws();
    if (i_ < s_.size() && s_[i_] != '{')
      object_ = false;
    else
      object_ = true;
    if (!value(0)) return false;
    ws();
    if (i_ != s_.size()) return fail("unexpected '" + shown(s_[i_]) + "' after the value");
    return true;
  }
  bool is_object() const { return object_; }
  KeyKind key_kind() const { return kind_; }
  const std::string& key_text() const { return key_text_; }
  const std::string& key_type() const { return key_type_; }
  const std::string& error() const { return error_; }

 private:
  static std::string shown(char c) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      return buf;
    }
    return std::string(1, c);
  }
  bool fail(std::string message) {
    if (error_.empty()) error_ = "column " + std::to_string(i_ + 1) + ": " + message;
    return false;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return fail("unexpected '" + shown(s_[i_]) + "'");
    out_->append(word);
    i_ += word.size();
    return true;
  }
  bool value(int depth) {
    if (i_ >= s_.size()) return fail("unexpected end of the line");
    switch (s_[i_]) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string(nullptr);
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }
  bool object(int depth) {
    if (depth >= kMaxDepth) return fail("nested deeper than 256");
    ++i_;
    *out_ += '{';
    ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      *out_ += '}';
      return true;
    }
    for (;;) {
      ws();
      if (i_ >= s_.size() || s_[i_] != '"')
        return fail(i_ >= s_.size() ? "unexpected end of the line" : "expected a member name");
      std::string name;
      if (!string(depth == 0 ? &name : nullptr)) return false;
      ws();
      if (i_ >= s_.size() || s_[i_] != ':') return fail("expected ':'");
      ++i_;
      *out_ += ':';
      ws();
      bool is_key = depth == 0 && name == key_;
      size_t start = out_->size();
      if (is_key && i_ < s_.size() && s_[i_] == '"') {
        key_text_.clear();
        if (!string(&key_text_)) return false;
        kind_ = KeyKind::String;
      } else {
        if (!value(depth + 1)) return false;
        if (is_key) {
          char c = (*out_)[start];
          kind_ = (c == '-' || (c >= '0' && c <= '9')) ? KeyKind::Number : KeyKind::Other;
          key_text_ = out_->substr(start);
          key_type_ = c == '{' ? "object" : c == '[' ? "array" : c == 'n' ? "null" : "boolean";
        }
      }
      ws();
      if (i_ >= s_.size()) return fail("unexpected end of the line");
      if (s_[i_] == ',') {
        ++i_;
        *out_ += ',';
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        *out_ += '}';
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }
  bool array(int depth) {
    if (depth >= kMaxDepth) return fail("nested deeper than 256");
    ++i_;
    *out_ += '[';
    ws();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      *out_ += ']';
      return true;
    }
    for (;;) {
      ws();
      if (!value(depth + 1)) return false;
      ws();
      if (i_ >= s_.size()) return fail("unexpected end of the line");
      if (s_[i_] == ',') {
        ++i_;
        *out_ += ',';
        continue;
      }
      if (s_[i_] == ']') {
        ++i_;
        *out_ += ']';
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }
  bool hex4(size_t at, uint32_t& v) {
    if (at + 4 > s_.size()) return false;
    v = 0;
    for (size_t k = at; k < at + 4; ++k) {
      char c = s_[k];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return false;
    }
    return true;
  }
  // A string at s_[i_] == '"', copied as written; decoded into `text` when given.
  bool string(std::string* text) {
    size_t start = i_++;
    for (;;) {
      // A run of plain printable ASCII, nearly all of a prediction's text, in one step.
      size_t run = i_;
      while (run < s_.size()) {
        unsigned char u = static_cast<unsigned char>(s_[run]);
        if (u < 0x20 || u >= 0x80 || u == '"' || u == '\\') break;
        ++run;
      }
      if (run > i_) {
        if (text) text->append(s_.data() + i_, run - i_);
        i_ = run;
      }
      if (i_ >= s_.size()) return fail("a string is not closed by the end of the line");
      char c = s_[i_];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) return fail("a control character in a string");
      if (c == '\\') {
        if (i_ + 1 >= s_.size()) return fail("a string is not closed by the end of the line");
        char e = s_[i_ + 1];
        const char* simple = std::strchr("\"\\/bfnrt", e);
        if (e && simple) {
          if (text) *text += "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
          i_ += 2;
          continue;
        }
        if (e != 'u') return fail("invalid escape '\\" + shown(e) + "'");
        uint32_t cp;
        if (!hex4(i_ + 2, cp)) return fail("invalid \\u escape");
        i_ += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("a lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (i_ + 1 >= s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u' || !hex4(i_ + 2, lo) ||
              lo < 0xDC00 || lo > 0xDFFF)
            return fail("a lone high surrogate");
          i_ += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (text) append_utf8(*text, cp);
        continue;
      }
      size_t len = 1;
      if (!utf8_sequence(s_, i_, len)) return fail("invalid UTF-8");
      if (text) text->append(s_.substr(i_, len));
      i_ += len;
    }
    ++i_;
    out_->append(s_.substr(start, i_ - start));
    return true;
  }
  bool number() {
    size_t start = i_;
    while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E'))
      ++i_;
    std::string_view n = s_.substr(start, i_ - start);
    if (n.empty()) return fail("unexpected '" + shown(s_[start]) + "'");
    if (!is_json_number(n)) {
      i_ = start;
      return fail("invalid number '" + std::string(n) + "'");
    }
    out_->append(n);
    return true;
  }

  std::string_view s_, key_;
  size_t i_ = 0;
  std::string* out_ = nullptr;
  bool object_ = true;
  KeyKind kind_ = KeyKind::Absent;
  std::string key_text_, key_type_, error_;
};

// Appends `s` as a JSON string; false when it is not valid UTF-8.
bool append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        }
      }
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      size_t len = 1;
      if (!utf8_sequence(s, i, len)) return false;
      out.append(s.substr(i, len));
      i += len;
      continue;
    }
    ++i;
  }
  out += '"';
  return true;
}

bool blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

// One row: its key, its value (compact JSON) and the line it starts on.
struct Row {
  std::string key, value;
  int64_t line = 0;
};

// Reads rows one at a time from a JSONL or CSV file. Errors are "FILE:LINE: message".
class RowReader {
 public:
  RowReader(std::string name, std::string key, bool csv)
      : name_(std::move(name)), key_(std::move(key)), csv_(csv) {}
  ~RowReader() {
    if (f_) std::fclose(f_);
    std::free(buf_);
  }

  Status open(const fs::path& path) {
    f_ = std::fopen(path.c_str(), "rb");
    if (!f_) return make_error(name_ + ": " + std::strerror(errno));
    if (!csv_) return Status::Ok();
    std::vector<std::string> cells;
    auto got = read_record(cells);
    if (!got) return got.error();
    if (!*got) return make_error(name_ + ":1: empty file: no header and no rows to upload");
    header_line_ = line_;
    header_ = std::move(cells);
    key_index_ = header_.size();
    for (size_t i = 0; i < header_.size(); ++i) {
      for (size_t j = 0; j < i; ++j)
        if (header_[j] == header_[i])
          return at(line_, "column '" + header_[i] + "' appears twice in the header");
      if (header_[i] == key_) key_index_ = i;
      std::string h;
      if (!append_json_string(h, header_[i]))
        return at(line_, "column " + std::to_string(i + 1) + " of the header: not valid UTF-8");
      header_json_.push_back(std::move(h));
    }
    if (key_index_ == header_.size()) {
      std::string cols;
      for (auto& h : header_) cols += (cols.empty() ? "" : ", ") + h;
      return at(line_, "no key column '" + key_ + "' in the header (columns: " + cols + ")");
    }
    return Status::Ok();
  }

  // The next row into `row`; false at the end of the file.
  Result<bool> next(Row& row) { return csv_ ? next_csv(row) : next_jsonl(row); }

  // Where the file ended, for "no rows" (the header's line for a CSV).
  int64_t header_line() const { return header_line_; }

 private:
  Error at(int64_t line, const std::string& message) const {
    return make_error(name_ + ":" + std::to_string(line) + ": " + message, Errc::Invalid);
  }

  // The next physical line into buf_ (without its "\n" or "\r\n"); false at the end.
  Result<bool> read_line(std::string_view& out) {
    errno = 0;
    ssize_t n = ::getline(&buf_, &cap_, f_);
    if (n < 0) {
      if (std::ferror(f_)) return make_error(name_ + ": " + std::strerror(errno));
      return false;
    }
    ++line_;
    size_t len = static_cast<size_t>(n);
    if (len && buf_[len - 1] == '\n') --len;
    if (len && buf_[len - 1] == '\r') --len;
    out = std::string_view(buf_, len);
    return true;
  }

  Result<bool> next_jsonl(Row& row) {
    std::string_view text;
    for (;;) {
      auto got = read_line(text);
      if (!got || !*got) return got;
      if (!blank(text)) break;
    }
    row.line = line_;
    if (!scanner_.run(text, key_, row.value)) {
      if (!scanner_.is_object()) return at(line_, "not a JSON object");
      return at(line_, "not valid JSON: " + scanner_.error());
    }
    if (!scanner_.is_object()) return at(line_, "not a JSON object");
    switch (scanner_.key_kind()) {
      case CompactJson::KeyKind::Absent:
        return at(line_, "no key column '" + key_ + "' in this row");
      case CompactJson::KeyKind::Other:
        return at(line_, "key column '" + key_ + "' must be a string or a number, not " +
                             scanner_.key_type());
      default:
        break;
    }
    row.key = scanner_.key_text();
    if (row.key.empty()) return at(line_, "empty key");
    return true;
  }

  // One CSV record (RFC 4180: quoted cells may hold commas, "" and line breaks); false at
  // the end. Blank lines between records are skipped.
  Result<bool> read_record(std::vector<std::string>& cells) {
    cells.clear();
    std::string_view text;
    for (;;) {
      auto got = read_line(text);
      if (!got || !*got) return got;
      if (!blank(text)) break;
    }
    start_ = line_;
    std::string cell;
    bool quoted = false, was_quoted = false;
    for (;;) {
      for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (quoted) {
          if (c == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              cell += '"';
              ++i;
            } else {
              quoted = false;
            }
          } else {
            cell += c;
          }
        } else if (c == ',') {
          cells.push_back(std::move(cell));
          cell.clear();
          was_quoted = false;
        } else if (c == '"' && cell.empty() && !was_quoted) {
          quoted = was_quoted = true;
        } else if (was_quoted) {
          return at(line_, "text after a closing quote in a cell");
        } else {
          cell += c;
        }
      }
      if (!quoted) break;
      cell += '\n';
      auto got = read_line(text);
      if (!got) return got;
      if (!*got) return at(start_, "a quoted cell is not closed by the end of the file");
    }
    cells.push_back(std::move(cell));
    return true;
  }

  Result<bool> next_csv(Row& row) {
    auto got = read_record(cells_);
    if (!got || !*got) return got;
    row.line = start_;
    if (cells_.size() != header_.size())
      return at(start_, std::to_string(cells_.size()) + " cells, the header has " +
                            std::to_string(header_.size()));
    row.key = cells_[key_index_];
    if (row.key.empty()) return at(start_, "empty key");
    std::string& v = row.value;
    v.assign(1, '{');
    for (size_t i = 0; i < header_.size(); ++i) {
      if (i) v += ',';
      v += header_json_[i];
      v += ':';
      const std::string& c = cells_[i];
      if (is_json_number(c))
        v += c;
      else if (!append_json_string(v, c))
        return at(start_, "column '" + header_[i] + "': not valid UTF-8");
    }
    v += '}';
    return true;
  }

  std::string name_, key_;
  bool csv_;
  FILE* f_ = nullptr;
  char* buf_ = nullptr;
  size_t cap_ = 0;
  int64_t line_ = 0, start_ = 0, header_line_ = 0;
  std::vector<std::string> header_, header_json_, cells_;
  CompactJson scanner_;
  size_t key_index_ = 0;
};

// "jsonl" or "csv" from `format:` or the file's extension; "" when neither tells.
std::string format_of(const json& with) {
  if (with.contains("format") && with["format"].is_string()) return with["format"];
  if (!with.contains("file") || !with["file"].is_string()) return "";
  std::string f = with["file"];
  if (f.ends_with(".jsonl") || f.ends_with(".json")) return "jsonl";
  if (f.ends_with(".csv")) return "csv";
  return "";
}

class UploadTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "upload"; }

  void validate(const json& with, std::vector<ConfigError>& errors) const override {
    if (!with.is_object()) {
      errors.push_back(
          {"", "upload task needs 'with: {target: URL, prefix: NAME, file: PATH, key: COLUMN}'"});
      return;
    }
    check_known_keys(with,
                     {"target", "prefix", "file", "key", "keep", "format", "token", "batch_size",
                      "retries", "ca_file"},
                     "upload", errors);
    for (const char* k : {"target", "prefix", "file", "key"}) {
      if (!with.contains(k))
        errors.push_back({"", std::string("upload task needs '") + k + "'"});
      else if (!with[k].is_string() || with[k].get<std::string>().empty())
        errors.push_back({k, std::string("'") + k + "' must be a non-empty string"});
    }
    std::optional<bool> http;  // whether the target is http(s); nullopt: not known yet
    if (with.contains("target") && with["target"].is_string() && !is_template(with["target"])) {
      auto t = parse_target_url(with["target"].get<std::string>());
      if (!t)
        errors.push_back({"target", t.message()});
      else
        http = t->scheme == "http" || t->scheme == "https";
    }
    for (const char* k : {"token", "ca_file"})
      if (with.contains(k) && (!with[k].is_string() || with[k].get<std::string>().empty()))
        errors.push_back({k, std::string("'") + k + "' must be a non-empty string"});
    auto whole = [&](const char* k, int64_t lo, int64_t hi, const std::string& message) {
      if (!with.contains(k) || is_template(with[k])) return;
      const json& v = with[k];
      if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
        errors.push_back({k, message});
    };
    whole("batch_size", 1, 100000, "'batch_size' must be a whole number of rows, 1..100000");
    whole("retries", 0, 100, "'retries' must be a whole number, 0..100");
    if (http && !*http)
      for (const char* k : {"token", "batch_size", "retries", "ca_file"})
        if (with.contains(k))
          errors.push_back({k, std::string("'") + k + "' is only for http(s):// targets"});
    if (with.contains("prefix") && with["prefix"].is_string() && !is_template(with["prefix"]) &&
        !valid_upload_prefix(with["prefix"].get<std::string>()))
      errors.push_back({"prefix", "'prefix' must be 1..128 of [A-Za-z0-9_.-]"});
    if (with.contains("keep") && !is_template(with["keep"])) {
      const json& k = with["keep"];
      if (!k.is_number_integer() || k.get<int64_t>() < 1 || k.get<int64_t>() > 1000)
        errors.push_back({"keep", "'keep' must be a whole number of sets, 1..1000"});
    }
    if (with.contains("format")) {
      const json& f = with["format"];
      if (!f.is_string() || (!is_template(f) && f != "jsonl" && f != "csv"))
        errors.push_back({"format", "'format' must be jsonl or csv"});
    } else if (with.contains("file") && with["file"].is_string() && format_of(with).empty() &&
               !is_template(with["file"])) {
      errors.push_back(
          {"file", "cannot tell the format of '" + with["file"].get<std::string>() +
                       "' from its extension (.jsonl, .json, .csv): give 'format: jsonl' "
                       "or 'format: csv'"});
    }
  }

  std::vector<std::string> published_keys(const json&) const override {
    return {"version", "rows", "bytes", "previous_version", "target"};
  }

  int run(TaskContext& ctx) const override {
    auto t0 = std::chrono::steady_clock::now();
    const json& w = ctx.spec.with;
    std::vector<ConfigError> errors;
    validate(w, errors);
    std::string format = format_of(w);
    if (errors.empty() && format.empty())
      errors.push_back({"file", "cannot tell the format of the file: give 'format'"});
    if (!errors.empty()) {
      for (auto& e : errors) std::fprintf(stderr, "upload: %s\n", e.message.c_str());
      return 1;
    }
    std::string file = w["file"], key = w["key"], prefix = w["prefix"];
    int keep = w.contains("keep") ? w["keep"].get<int>() : 3;
    fs::path path(file);
    if (path.is_relative()) path = ctx.spec.work_dir() / path;

    RowReader reader(file, key, format == "csv");
    if (auto s = reader.open(path); !s) {
      std::fprintf(stderr, "upload: %s\n", s.message().c_str());
      return 1;
    }
    // The URL holds the password: only the target's display form is ever printed.
    UploadTargetOptions options;
    options.keep = keep;
    options.spool_dir = ctx.spec.work_dir().string();
    if (w.contains("token")) {
      options.token = w["token"];
      bool secret = false;
      for (const std::string& r : ctx.spec.redact)
        secret |= !r.empty() && options.token.find(r) != std::string::npos;
      if (!secret)
        std::printf(
            "upload: warning: 'token' does not come from {{ secrets.NAME }}, so logs do not "
            "mask it\n");
    }
    if (w.contains("batch_size")) options.batch_size = w["batch_size"].get<int>();
    if (w.contains("retries")) options.retries = w["retries"].get<int>();
    if (w.contains("ca_file")) options.ca_file = w["ca_file"];
    auto target = open_upload_target(w["target"].get<std::string>(), prefix, options);
    if (!target) {
      std::fprintf(stderr, "upload: %s\n", target.message().c_str());
      return 1;
    }
    UploadTarget& t = **target;
    UploadVersion v;
    v.id = new_upload_version();
    v.created_us = SystemClock().now().time_since_epoch().count();
    if (auto s = t.begin(v.id); !s) {
      std::fprintf(stderr, "upload: %s: %s\n", t.display().c_str(), s.message().c_str());
      t.abort();
      return 1;
    }
    auto fail = [&](const std::string& message) {
      std::fprintf(stderr, "upload: %s\n", message.c_str());
      std::fprintf(stderr, "upload: nothing uploaded; prefix '%s' still names the set it named\n",
                   prefix.c_str());
      t.abort();
      return 1;
    };
    auto store_error = [&](const Status& s) {
      if (s.error().code == Errc::Conflict && t.duplicate())
        return fail(file + ":" + std::to_string(t.duplicate()->first) + ": duplicate key '" +
                    t.duplicate()->second + "'");
      return fail(s.message());
    };
    Row row;
    for (;;) {
      auto got = reader.next(row);
      if (!got) return fail(got.message());
      if (!*got) break;
      ++v.rows;
      v.bytes += static_cast<int64_t>(row.value.size());
      if (auto s = t.put(row.key, row.value, row.line); !s) return store_error(s);
    }
    if (auto s = t.finish(); !s) return store_error(s);
    if (v.rows == 0)
      return fail(format == "csv" ? file + ":" + std::to_string(reader.header_line()) +
                                        ": a header but no rows to upload"
                                  : file + ":1: empty file: no rows to upload");
    v.created_at = format_iso_utc(TimePoint(Micros(v.created_us)));
    auto flip = t.commit(v, "run " + ctx.spec.run_id, "task " + ctx.spec.task);
    if (!flip) return fail(flip.message());
    auto ms = [](std::chrono::steady_clock::time_point since) {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
          .count();
    };
    std::printf(
        "upload: %lld rows (%lld bytes) to %s prefix %s, version %s, in %.0f ms; "
        "flipped from %s in %.3f ms\n",
        static_cast<long long>(v.rows), static_cast<long long>(v.bytes), t.display().c_str(),
        prefix.c_str(), v.id.c_str(), ms(t0), flip->from ? flip->from->c_str() : "(none)",
        flip->flip_ms);
    auto t_prune = std::chrono::steady_clock::now();
    auto removed = t.prune(keep);
    if (!removed) {
      std::printf("upload: warning: could not remove sets beyond keep %d: %s\n", keep,
                  removed.message().c_str());
    } else {
      for (auto& id : *removed)
        std::printf("upload: removed old set %s (keep %d)\n", id.c_str(), keep);
      if (!removed->empty()) std::printf("upload: removal took %.0f ms\n", ms(t_prune));
    }
    std::fflush(stdout);
    double duration_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ctx.publish.value("version", v.id);
    ctx.publish.value("rows", v.rows);
    ctx.publish.value("bytes", v.bytes);
    ctx.publish.value("previous_version", flip->from ? json(*flip->from) : json(""));
    ctx.publish.value("target", t.display());
    ctx.publish.metric("rows", static_cast<double>(v.rows));
    ctx.publish.metric("bytes", static_cast<double>(v.bytes));
    ctx.publish.metric("flip_ms", flip->flip_ms);
    ctx.publish.metric("duration_ms", duration_ms);
    return 0;
  }
};

}  // namespace

std::unique_ptr<TaskType> make_upload_task_type() { return std::make_unique<UploadTaskType>(); }

}  // namespace drover
