// Streaming CSV/TSV and JSON-lines readers (see table_reader.hpp). Input is read in 1 MiB
// chunks; only the current record is held in memory.
#include "plugins/drift/table_reader.hpp"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace drover::drift {
namespace {

constexpr size_t kChunk = 1 << 20;

// Bytes from a file or from memory, in chunks.
class Source {
 public:
  explicit Source(FILE* f) : file_(f) {}
  explicit Source(std::string text) : text_(std::move(text)) {}
  ~Source() {
    if (file_) std::fclose(file_);
  }
  // Fills buf_ with the next chunk; false at the end (or on a read error, see error()).
  bool fill() {
    pos_ = 0;
    if (file_) {
      buf_.resize(kChunk);
      size_t n = std::fread(buf_.data(), 1, kChunk, file_);
      buf_.resize(n);
      if (n == 0 && std::ferror(file_)) error_ = errno ? errno : EIO;
      return n > 0;
    }
    if (text_done_) {
      buf_.clear();
      return false;
    }
    buf_ = std::move(text_);
    text_done_ = true;
    return !buf_.empty();
  }
  // The next byte, or -1 at the end.
  int get() {
    if (pos_ >= buf_.size() && !fill()) return -1;
    return static_cast<unsigned char>(buf_[pos_++]);
  }
  int peek() {
    if (pos_ >= buf_.size() && !fill()) return -1;
    return static_cast<unsigned char>(buf_[pos_]);
  }
  // Fast path: the run of bytes from the current position up to (not including) the first
  // byte for which stop[b] is set, within the current chunk.
  std::string_view run(const bool* stop) {
    if (pos_ >= buf_.size() && !fill()) return {};
    size_t start = pos_;
    const char* p = buf_.data();
    size_t n = buf_.size();
    while (pos_ < n && !stop[static_cast<unsigned char>(p[pos_])]) ++pos_;
    return std::string_view(p + start, pos_ - start);
  }
  // The unread bytes of the current chunk (filling the next one when it is used up); empty
  // at the end of the input. skip(n) consumes n of them.
  std::string_view rest() {
    if (pos_ >= buf_.size() && !fill()) return {};
    return std::string_view(buf_.data() + pos_, buf_.size() - pos_);
  }
  void skip(size_t n) { pos_ += n; }
  int error() const { return error_; }

 private:
  FILE* file_ = nullptr;
  std::string text_;
  bool text_done_ = false;
  std::string buf_;
  size_t pos_ = 0;
  int error_ = 0;
};

Error line_error(const std::string& name, long long line, const std::string& msg) {
  return make_error(name + ":" + std::to_string(line) + ": " + msg, Errc::Invalid);
}

class CsvReader final : public TableReader {
 public:
  CsvReader(std::unique_ptr<Source> src, char delim, TableFormat fmt, std::string name)
      : src_(std::move(src)), delim_(delim), format_(fmt), name_(std::move(name)) {
    std::memset(stop_, 0, sizeof(stop_));
    stop_[static_cast<unsigned char>(delim_)] = true;
    stop_['"'] = stop_['\r'] = stop_['\n'] = true;
    std::memset(qstop_, 0, sizeof(qstop_));
    qstop_['"'] = qstop_['\n'] = true;
  }

  Status read_header() {
    auto r = read_record();
    if (!r.ok()) return r.error();
    if (!*r) return make_error(name_ + ": empty file (no header line)", Errc::Invalid);
    // Strip a UTF-8 byte order mark from the first name.
    if (rec_.size() >= 3 && rec_.compare(0, 3, "\xEF\xBB\xBF") == 0) {
      rec_.erase(0, 3);
      for (auto& e : ends_) e -= 3;
    }
    size_t start = 0;
    for (size_t e : ends_) {
      std::string col = rec_.substr(start, e - start);
      for (auto& c : columns_) {
        if (c == col) return line_error(name_, line_, "duplicate column \"" + col + "\"");
      }
      columns_.push_back(std::move(col));
      start = e;
    }
    return {};
  }

  const std::vector<std::string>& columns() const override { return columns_; }
  long long line() const override { return line_; }
  TableFormat format() const override { return format_; }

  Result<bool> next(std::vector<Field>& fields) override {
    auto r = read_record();
    if (!r.ok()) return r.error();
    if (!*r) return false;
    if (ends_.size() != columns_.size()) {
      return line_error(name_, line_,
                        "expected " + std::to_string(columns_.size()) + " fields, found " +
                            std::to_string(ends_.size()));
    }
    fields.resize(ends_.size());
    size_t start = 0;
    for (size_t i = 0; i < ends_.size(); ++i) {
      fields[i].text = std::string_view(rec_).substr(start, ends_[i] - start);
      fields[i].missing = false;
      start = ends_[i];
    }
    return true;
  }

 private:
  // Reads one record into rec_ (field texts back to back) and ends_ (end offsets); skips
  // blank lines. False at the end of input.
  // Fast path: a whole non-empty line inside the current chunk with no quote and no CR is
  // one record whose fields are the texts between delimiters. Same result as the general
  // path below, which handles everything else.
  bool read_plain_line() {
    std::string_view rest = src_->rest();
    if (rest.empty()) return false;  // memchr on a null pointer is undefined, even for 0 bytes
    const char* nl = static_cast<const char*>(std::memchr(rest.data(), '\n', rest.size()));
    if (!nl || nl == rest.data()) return false;
    size_t len = static_cast<size_t>(nl - rest.data());
    if (std::memchr(rest.data(), '"', len) || std::memchr(rest.data(), '\r', len)) return false;
    rec_.clear();
    ends_.clear();
    const char* p = rest.data();
    const char* end = p + len;
    for (;;) {
      const char* d = static_cast<const char*>(std::memchr(p, delim_, end - p));
      const char* field_end = d ? d : end;
      rec_.append(p, field_end - p);
      ends_.push_back(rec_.size());
      if (!d) break;
      p = d + 1;
    }
    src_->skip(len + 1);
    line_ = cur_line_++;
    return true;
  }

  Result<bool> read_record() {
    if (read_plain_line()) return true;
    for (;;) {
      rec_.clear();
      ends_.clear();
      bool content = false;  // anything beyond a blank line
      line_ = cur_line_;
      enum { kStart, kUnquoted, kQuoted, kQuoteSeen } st = kStart;
      long long quote_line = 0;
      for (;;) {
        if (st == kUnquoted || st == kStart) {
          std::string_view chunk = src_->run(stop_);
          if (!chunk.empty()) {
            rec_.append(chunk);
            content = true;
            st = kUnquoted;
          }
        } else if (st == kQuoted) {
          std::string_view chunk = src_->run(qstop_);
          rec_.append(chunk);
        }
        int c = src_->get();
        if (c < 0) {
          if (src_->error()) {
            return make_error(name_ + ": read error: " + std::strerror(src_->error()));
          }
          if (st == kQuoted) return line_error(name_, quote_line, "unterminated quoted field");
          if (!content) return false;
          ends_.push_back(rec_.size());
          return true;
        }
        if (c == '\n') ++cur_line_;
        switch (st) {
          case kStart:
          case kUnquoted:
            if (c == delim_) {
              ends_.push_back(rec_.size());
              content = true;
              st = kStart;
            } else if (c == '"') {
              if (st == kUnquoted)
                return line_error(name_, cur_line_, "quote inside unquoted field");
              st = kQuoted;
              content = true;
              quote_line = cur_line_;
            } else if (c == '\n' || c == '\r') {
              if (c == '\r' && src_->peek() == '\n') {
                src_->get();
                ++cur_line_;
              }
              goto end_of_record;
            } else {
              rec_.push_back(static_cast<char>(c));
              content = true;
              st = kUnquoted;
            }
            break;
          case kQuoted:
            if (c == '"') {
              st = kQuoteSeen;
            } else {
              rec_.push_back(static_cast<char>(c));
            }
            break;
          case kQuoteSeen:
            if (c == '"') {
              rec_.push_back('"');
              st = kQuoted;
            } else if (c == delim_) {
              ends_.push_back(rec_.size());
              st = kStart;
            } else if (c == '\n' || c == '\r') {
              if (c == '\r' && src_->peek() == '\n') {
                src_->get();
                ++cur_line_;
              }
              goto end_of_record;
            } else {
              return line_error(name_, cur_line_, "unexpected character after closing quote");
            }
            break;
        }
      }
    end_of_record:
      if (!content) continue;  // a blank line
      ends_.push_back(rec_.size());
      return true;
    }
  }

  std::unique_ptr<Source> src_;
  char delim_;
  TableFormat format_;
  std::string name_;
  bool stop_[256];
  bool qstop_[256];
  std::vector<std::string> columns_;
  std::string rec_;
  std::vector<size_t> ends_;
  long long line_ = 1, cur_line_ = 1;
};

class JsonlReader final : public TableReader {
 public:
  JsonlReader(std::unique_ptr<Source> src, std::string name)
      : src_(std::move(src)), name_(std::move(name)) {
    std::memset(stop_, 0, sizeof(stop_));
    stop_['\n'] = true;
  }
  const std::vector<std::string>& columns() const override { return columns_; }
  long long line() const override { return line_; }
  TableFormat format() const override { return TableFormat::Jsonl; }

  Result<bool> next(std::vector<Field>& fields) override {
    for (;;) {
      line_buf_.clear();
      bool any = false;
      for (;;) {
        std::string_view chunk = src_->run(stop_);
        if (!chunk.empty()) {
          line_buf_.append(chunk);
          any = true;
        }
        int c = src_->get();
        if (c < 0) break;
        any = true;
        if (c == '\n') break;
      }
      if (!any) {
        if (src_->error()) {
          return make_error(name_ + ": read error: " + std::strerror(src_->error()));
        }
        return false;
      }
      line_ = ++lines_read_;
      size_t b = line_buf_.find_first_not_of(" \t\r");
      if (b == std::string::npos) continue;  // blank line
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line_buf_);
      } catch (const nlohmann::json::parse_error& e) {
        return line_error(name_, line_, "invalid JSON at byte " + std::to_string(e.byte));
      }
      if (!j.is_object()) return line_error(name_, line_, "expected a JSON object");
      texts_.assign(columns_.size(), std::string());
      present_.assign(columns_.size(), false);
      for (auto& [key, v] : j.items()) {
        size_t idx = index_of(key);
        if (v.is_null()) continue;
        present_[idx] = true;
        if (v.is_string()) {
          texts_[idx] = v.get<std::string>();
        } else {
          texts_[idx] = v.dump();
        }
      }
      fields.resize(columns_.size());
      for (size_t i = 0; i < columns_.size(); ++i) {
        fields[i].text = texts_[i];
        fields[i].missing = !present_[i];
      }
      return true;
    }
  }

 private:
  size_t index_of(const std::string& key) {
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (columns_[i] == key) return i;
    }
    columns_.push_back(key);
    texts_.emplace_back();
    present_.push_back(false);
    return columns_.size() - 1;
  }

  std::unique_ptr<Source> src_;
  std::string name_;
  bool stop_[256];
  std::vector<std::string> columns_;
  std::vector<std::string> texts_;
  std::vector<bool> present_;
  std::string line_buf_;
  long long line_ = 0, lines_read_ = 0;
};

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  if (s.size() < n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (std::tolower(static_cast<unsigned char>(s[s.size() - n + i])) != suffix[i]) return false;
  }
  return true;
}

Result<std::unique_ptr<TableReader>> make(std::unique_ptr<Source> src, TableFormat fmt,
                                          std::string display) {
  if (fmt == TableFormat::Jsonl) {
    return std::unique_ptr<TableReader>(new JsonlReader(std::move(src), std::move(display)));
  }
  auto r = std::make_unique<CsvReader>(std::move(src), fmt == TableFormat::Tsv ? '\t' : ',', fmt,
                                       std::move(display));
  Status st = r->read_header();
  if (!st.ok()) return st.error();
  return std::unique_ptr<TableReader>(std::move(r));
}

}  // namespace

Result<std::unique_ptr<TableReader>> TableReader::open(const std::string& path,
                                                       std::string display) {
  if (display.empty()) display = path;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    return make_error(display + ": " + std::strerror(errno),
                      errno == ENOENT ? Errc::NotFound : Errc::None);
  TableFormat fmt;
  if (ends_with(path, ".csv")) {
    fmt = TableFormat::Csv;
  } else if (ends_with(path, ".tsv") || ends_with(path, ".tab")) {
    fmt = TableFormat::Tsv;
  } else if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json")) {
    fmt = TableFormat::Jsonl;
  } else {
    char head[4096];
    size_t n = std::fread(head, 1, sizeof(head), f);
    std::rewind(f);
    std::string_view h(head, n);
    size_t b = h.find_first_not_of(" \t\r\n");
    if (b != std::string_view::npos && h[b] == '{') {
      fmt = TableFormat::Jsonl;
    } else {
      std::string_view first = h.substr(0, h.find('\n'));
      bool tab = first.find('\t') != std::string_view::npos;
      bool comma = first.find(',') != std::string_view::npos;
      fmt = tab && !comma ? TableFormat::Tsv : TableFormat::Csv;
    }
  }
  return make(std::make_unique<Source>(f), fmt, std::move(display));
}

Result<std::unique_ptr<TableReader>> TableReader::from_string(std::string text, TableFormat format,
                                                              std::string display) {
  return make(std::make_unique<Source>(std::move(text)), format, std::move(display));
}

}  // namespace drover::drift
