// The Redis, folder and HTTP(S) upload targets (plugins/upload_targets.hpp). Layouts and the
// HTTP protocol: docs/models.md, "Upload targets".
#include "plugins/upload_targets.hpp"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/clock.hpp"
#include "common/curl_client.hpp"
#include "common/fs.hpp"
#include "common/sha256.hpp"
#include "common/time.hpp"

namespace drover {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int64_t now_us() { return SystemClock().now().time_since_epoch().count(); }

std::string iso_of_us(int64_t us) { return format_iso_utc(TimePoint(Micros(us))); }

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool parse_int(std::string_view s, int lo, int hi, int& out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return false;
  out = v;
  return true;
}

json event_json(const std::optional<std::string>& from, const std::string& to,
                const std::string& by, const std::string& reason) {
  return {{"from", from ? json(*from) : json(nullptr)},
          {"to", to},
          {"by", by},
          {"at", iso_of_us(now_us())},
          {"reason", reason}};
}

json meta_json(const UploadVersion& v) {
  return {{"rows", v.rows},
          {"bytes", v.bytes},
          {"created_us", v.created_us},
          {"created_at", v.created_at}};
}

// ---------------------------------------------------------------------------------------
// Redis

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

class RedisTarget final : public UploadTarget {
 public:
  static constexpr size_t kBatch = 1000;    // commands per pipelined batch
  static constexpr int kScanCount = 2000;   // SCAN COUNT when removing a set
  static constexpr int kEventsKept = 1000;  // PREFIX:events is trimmed to this many

  RedisTarget(TargetUrl url, std::string prefix)
      : url_(std::move(url)), prefix_(std::move(prefix)) {}
  ~RedisTarget() override {
    if (c_) redisFree(c_);
  }

  Status connect() {
    if (c_) redisFree(c_);
    timeval tv{5, 0};
    c_ = redisConnectWithTimeout(url_.host.c_str(), url_.port, tv);
    if (!c_) return make_error(url_.display + ": cannot allocate a Redis connection");
    if (c_->err) return make_error(url_.display + ": " + c_->errstr);
    timeval io{60, 0};
    redisSetTimeout(c_, io);
    if (!url_.password.empty()) {
      Reply r = url_.user.empty() ? cmd({"AUTH", url_.password})
                                  : cmd({"AUTH", url_.user, url_.password});
      if (auto s = check(r, "AUTH"); !s) return s;
    }
    if (url_.db != 0) {
      Reply r = cmd({"SELECT", std::to_string(url_.db)});
      if (auto s = check(r, "SELECT"); !s) return s;
    }
    Reply r = cmd({"PING"});
    return check(r, "PING");
  }

  const std::string& display() const override { return url_.display; }

  Status begin(const std::string& version) override {
    version_ = version;
    // Registered first: a crash from here on leaves the set to the next upload to remove.
    Reply r = cmd({"SADD", key("writing"), version});
    if (auto s = check(r, "SADD"); !s) return s;
    Reply m = cmd({"SMEMBERS", key("writing")});
    if (auto s = check(m, "SMEMBERS"); !s) return s;
    std::vector<std::string> left;
    for (size_t i = 0; i < m->elements; ++i) {
      std::string w(m->element[i]->str, m->element[i]->len);
      if (w != version) left.push_back(w);
    }
    for (const std::string& w : left) {
      auto n = remove_set(w);
      if (!n) return n.error();
      Reply d = cmd({"SREM", key("writing"), w});
      if (auto s = check(d, "SREM"); !s) return s;
      std::printf("upload: removed the half-written set %s (%lld keys) an earlier upload left\n",
                  w.c_str(), static_cast<long long>(*n));
    }
    std::fflush(stdout);
    set_prefix_ = prefix_ + ":" + version + ":";
    return Status::Ok();
  }

  Status put(std::string_view k, std::string_view value, int64_t line) override {
    keybuf_.assign(set_prefix_);
    keybuf_.append(k);
    const char* argv[] = {"SET", keybuf_.data(), value.data(), "NX"};
    size_t lens[] = {3, keybuf_.size(), value.size(), 2};
    if (redisAppendCommandArgv(c_, 4, argv, lens) != REDIS_OK)
      return make_error(url_.display + ": " + c_->errstr);
    pending_.push_back({line, std::string(k)});
    if (++appended_ >= kBatch) return send_batch();
    return Status::Ok();
  }

  Status finish() override {
    if (auto s = flush(); !s) return s;
    size_t n = outstanding_ + appended_;
    outstanding_ = appended_ = 0;
    return read_set_replies(n);
  }

  std::optional<std::pair<int64_t, std::string>> duplicate() const override { return dup_; }

  Result<FlipResult> commit(const UploadVersion& v, const std::string& by,
                            const std::string& reason) override {
    std::string meta = meta_json(v).dump();
    for (int attempt = 0; attempt < 20; ++attempt) {
      Reply w = cmd({"WATCH", key("current"), key("writing")});
      if (auto s = check(w, "WATCH"); !s) return s.error();
      Reply is = cmd({"SISMEMBER", key("writing"), v.id});
      if (auto s = check(is, "SISMEMBER"); !s) return s.error();
      if (is->integer != 1) {
        Reply u = cmd({"UNWATCH"});
        return make_error("set " + v.id +
                              " is no longer registered as being written (another "
                              "upload to prefix '" +
                              prefix_ + "' removed it); nothing flipped",
                          Errc::Conflict);
      }
      Reply cur = cmd({"GET", key("current")});
      if (auto s = check(cur, "GET"); !s) return s.error();
      std::optional<std::string> from;
      if (cur->type == REDIS_REPLY_STRING) from = std::string(cur->str, cur->len);
      std::string ev = event_json(from, v.id, by, reason).dump();
      auto t0 = std::chrono::steady_clock::now();
      append({"MULTI"});
      append({"SET", key("current"), v.id});
      append({"ZADD", key("versions"), std::to_string(v.created_us), v.id});
      append({"HSET", key("meta"), v.id, meta});
      append({"SREM", key("writing"), v.id});
      append({"RPUSH", key("events"), ev});
      append({"LTRIM", key("events"), std::to_string(-kEventsKept), "-1"});
      append({"EXEC"});
      auto exec = last_reply(8, ": flip: ");
      if (!exec) return exec.error();
      double flip_ms = ms_since(t0);
      if ((*exec)->type == REDIS_REPLY_NIL) continue;  // current or writing changed: again
      return FlipResult{from, v.id, flip_ms};
    }
    return make_error(url_.display +
                      ": the flip lost 20 races with other writers; nothing flipped");
  }

  void abort() override {
    if (version_.empty()) return;
    // The connection may be mid-pipeline or dead: a fresh one.
    if (!connect()) return;
    if (remove_set(version_)) (void)cmd({"SREM", key("writing"), version_});
  }

  Result<std::vector<std::string>> prune(int keep) override {
    Reply cur = cmd({"GET", key("current")});
    if (auto s = check(cur, "GET"); !s) return s.error();
    std::string current = cur->type == REDIS_REPLY_STRING ? std::string(cur->str, cur->len) : "";
    Reply all = cmd({"ZREVRANGE", key("versions"), "0", "-1"});
    if (auto s = check(all, "ZREVRANGE"); !s) return s.error();
    std::vector<std::string> removed;
    for (size_t i = static_cast<size_t>(keep); i < all->elements; ++i) {
      std::string x(all->element[i]->str, all->element[i]->len);
      if (x == current) continue;
      // No longer complete, and registered for removal first: a crash half-way leaves it to
      // the next upload's clean-up.
      append({"MULTI"});
      append({"ZREM", key("versions"), x});
      append({"HDEL", key("meta"), x});
      append({"SADD", key("writing"), x});
      append({"EXEC"});
      for (int j = 0; j < 5; ++j) {
        Reply r = get_reply();
        if (!r) return make_error(url_.display + ": " + c_->errstr);
        if (r->type == REDIS_REPLY_ERROR)
          return make_error(url_.display + ": " + std::string(r->str, r->len));
      }
      auto n = remove_set(x);
      if (!n) return n.error();
      Reply s = cmd({"SREM", key("writing"), x});
      if (auto st = check(s, "SREM"); !st) return st.error();
      removed.push_back(x);
    }
    return removed;
  }

  Result<std::vector<UploadVersion>> list() override {
    Reply cur = cmd({"GET", key("current")});
    if (auto s = check(cur, "GET"); !s) return s.error();
    std::string current = cur->type == REDIS_REPLY_STRING ? std::string(cur->str, cur->len) : "";
    Reply all = cmd({"ZREVRANGE", key("versions"), "0", "-1", "WITHSCORES"});
    if (auto s = check(all, "ZREVRANGE"); !s) return s.error();
    std::vector<UploadVersion> out;
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
      UploadVersion v;
      v.id.assign(all->element[i]->str, all->element[i]->len);
      v.created_us = std::atoll(all->element[i + 1]->str);
      v.created_at = iso_of_us(v.created_us);
      v.current = v.id == current;
      out.push_back(std::move(v));
    }
    for (UploadVersion& v : out) {
      Reply m = cmd({"HGET", key("meta"), v.id});
      if (auto s = check(m, "HGET"); !s) return s.error();
      if (m->type != REDIS_REPLY_STRING) continue;
      json j = json::parse(std::string(m->str, m->len), nullptr, false);
      if (!j.is_object()) continue;
      v.rows = j.value("rows", int64_t{0});
      v.bytes = j.value("bytes", int64_t{0});
    }
    return out;
  }

  Result<FlipResult> rollback(const std::string& to, const std::string& by,
                              const std::string& reason) override {
    for (int attempt = 0; attempt < 20; ++attempt) {
      Reply w = cmd({"WATCH", key("current"), key("versions")});
      if (auto s = check(w, "WATCH"); !s) return s.error();
      auto versions = list();
      if (!versions) return versions.error();
      std::optional<std::string> from;
      size_t cur_index = versions->size();
      for (size_t i = 0; i < versions->size(); ++i)
        if ((*versions)[i].current) {
          from = (*versions)[i].id;
          cur_index = i;
        }
      if (!from) {
        Reply cur = cmd({"GET", key("current")});
        if (cur && cur->type == REDIS_REPLY_STRING) from = std::string(cur->str, cur->len);
      }
      std::string target = to;
      if (target.empty()) {
        size_t next = cur_index == versions->size() ? 0 : cur_index + 1;
        if (next >= versions->size()) {
          (void)cmd({"UNWATCH"});
          return make_error("no complete set older than " + from.value_or("(none)") +
                                " under prefix '" + prefix_ + "' to roll back to",
                            Errc::NotFound);
        }
        target = (*versions)[next].id;
      } else {
        bool found = false;
        for (auto& v : *versions) found |= v.id == target;
        if (!found) {
          (void)cmd({"UNWATCH"});
          return make_error("no complete set '" + target + "' under prefix '" + prefix_ + "'",
                            Errc::NotFound);
        }
      }
      if (from && *from == target) {
        (void)cmd({"UNWATCH"});
        return make_error(target + " is already current", Errc::Conflict);
      }
      std::string ev = event_json(from, target, by, reason).dump();
      auto t0 = std::chrono::steady_clock::now();
      append({"MULTI"});
      append({"SET", key("current"), target});
      append({"RPUSH", key("events"), ev});
      append({"LTRIM", key("events"), std::to_string(-kEventsKept), "-1"});
      append({"EXEC"});
      auto exec = last_reply(5, ": ");
      if (!exec) return exec.error();
      double flip_ms = ms_since(t0);
      if ((*exec)->type == REDIS_REPLY_NIL) continue;
      return FlipResult{from, target, flip_ms};
    }
    return make_error(url_.display + ": the flip lost 20 races with other writers");
  }

  Result<std::vector<std::string>> events() override {
    Reply r = cmd({"LRANGE", key("events"), "0", "-1"});
    if (auto s = check(r, "LRANGE"); !s) return s.error();
    std::vector<std::string> out;
    for (size_t i = 0; i < r->elements; ++i)
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    return out;
  }

 private:
  std::string key(const char* what) const { return prefix_ + ":" + what; }

  Reply cmd(std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data())));
  }
  void append(std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  // Reads the replies of `n` pipelined commands (a MULTI ... EXEC) and returns the last, EXEC's;
  // an error reply is an error, its text after `what`.
  Result<Reply> last_reply(int n, const char* what) {
    Reply last;
    for (int i = 0; i < n; ++i) {
      Reply r = get_reply();
      if (!r) return make_error(url_.display + ": " + c_->errstr);
      if (r->type == REDIS_REPLY_ERROR)
        return make_error(url_.display + what + std::string(r->str, r->len));
      last = std::move(r);
    }
    return last;
  }

  Reply get_reply() {
    void* r = nullptr;
    if (redisGetReply(c_, &r) != REDIS_OK) return Reply();
    return Reply(static_cast<redisReply*>(r));
  }
  Status check(const Reply& r, const char* what) {
    if (!r) return make_error(url_.display + ": " + (c_->errstr[0] ? c_->errstr : "no reply"));
    if (r->type == REDIS_REPLY_ERROR)
      return make_error(url_.display + ": " + what + ": " + std::string(r->str, r->len));
    return Status::Ok();
  }
  // Writes everything appended so far (the server starts on it while we read the file on).
  Status flush() {
    int done = 0;
    while (!done)
      if (redisBufferWrite(c_, &done) != REDIS_OK)
        return make_error(url_.display + ": " + c_->errstr);
    return Status::Ok();
  }
  // Sends the batch just appended, then reads the replies of the one before it: at most two
  // batches in flight, so the client and the server work at the same time.
  Status send_batch() {
    if (auto s = flush(); !s) return s;
    size_t n = outstanding_;
    outstanding_ = appended_;
    appended_ = 0;
    return read_set_replies(n);
  }
  Status read_set_replies(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      Reply r = get_reply();
      if (!r) return make_error(url_.display + ": " + c_->errstr);
      auto entry = std::move(pending_.front());
      pending_.pop_front();
      if (r->type == REDIS_REPLY_NIL) {
        dup_ = std::move(entry);
        return make_error("duplicate key '" + dup_->second + "'", Errc::Conflict);
      }
      if (r->type == REDIS_REPLY_ERROR)
        return make_error(url_.display + ": SET: " + std::string(r->str, r->len));
    }
    return Status::Ok();
  }
  // Removes every key of set `version` (SCAN in batches, UNLINK): the number removed.
  Result<int64_t> remove_set(const std::string& version) {
    std::string pattern = prefix_ + ":" + version + ":*";
    std::string cursor = "0";
    int64_t n = 0;
    do {
      Reply r = cmd({"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(kScanCount)});
      if (auto s = check(r, "SCAN"); !s) return s.error();
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return make_error(url_.display + ": SCAN: unexpected reply");
      cursor.assign(r->element[0]->str, r->element[0]->len);
      redisReply* keys = r->element[1];
      if (keys->elements == 0) continue;
      std::vector<const char*> argv{"UNLINK"};
      std::vector<size_t> lens{6};
      for (size_t i = 0; i < keys->elements; ++i) {
        argv.push_back(keys->element[i]->str);
        lens.push_back(keys->element[i]->len);
      }
      Reply u(static_cast<redisReply*>(
          redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data())));
      if (auto s = check(u, "UNLINK"); !s) return s.error();
      n += u->integer;
    } while (cursor != "0");
    return n;
  }

  TargetUrl url_;
  std::string prefix_;
  redisContext* c_ = nullptr;
  std::string version_, set_prefix_, keybuf_;
  std::deque<std::pair<int64_t, std::string>> pending_;  // (line, key) of SETs not yet answered
  size_t appended_ = 0;                                  // SETs appended, not yet sent
  size_t outstanding_ = 0;                               // SETs sent, replies not yet read
  std::optional<std::pair<int64_t, std::string>> dup_;
};

// ---------------------------------------------------------------------------------------
// Folder

// Whether a JSON line of `f` (a file being appended to) matches; reads it from the start and
// leaves it positioned at its end again.
bool any_line(std::FILE* f, const std::function<bool(const json&)>& match) {
  std::fflush(f);
  std::rewind(f);
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t n;
  bool found = false;
  while (!found && (n = ::getline(&buf, &cap, f)) > 0)
    found = match(json::parse(std::string_view(buf, static_cast<size_t>(n)), nullptr, false));
  std::free(buf);
  std::fseek(f, 0, SEEK_END);
  return found;
}

// A set of 64-bit key hashes (open addressing): 8 bytes a key, for the folder target, which
// has no SET NX to find duplicates with. A hit is confirmed against the keys written.
class HashSet {
 public:
  // Inserts h; false when it was there already.
  bool insert(uint64_t h) {
    if (h == 0) h = 1;
    if ((n_ + 1) * 2 > slots_.size()) grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i] == h) return false;
      if (slots_[i] == 0) {
        slots_[i] = h;
        ++n_;
        return true;
      }
    }
  }

 private:
  void grow() {
    std::vector<uint64_t> old(std::max<size_t>(1024, slots_.size() * 2), 0);
    old.swap(slots_);
    n_ = 0;
    for (uint64_t h : old)
      if (h) insert(h);
  }
  std::vector<uint64_t> slots_;
  size_t n_ = 0;
};

class FileTarget final : public UploadTarget {
 public:
  FileTarget(TargetUrl url, std::string prefix)
      : url_(std::move(url)), prefix_(std::move(prefix)), root_(fs::path(url_.dir) / prefix_) {}
  ~FileTarget() override { close_files(); }

  const std::string& display() const override { return url_.display; }

  Status begin(const std::string& version) override {
    if (auto s = lock(); !s) return s;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(root_, ec)) {
      std::string name = e.path().filename().string();
      if (name.size() > 8 && name.ends_with(".partial")) {
        fs::remove(e.path(), ec);
        std::printf("upload: removed the half-written file %s an earlier upload left\n",
                    name.c_str());
      }
    }
    std::fflush(stdout);
    version_ = version;
    data_path_ = root_ / (version + ".jsonl.partial");
    keys_path_ = root_ / (version + ".keys.partial");
    data_ = std::fopen(data_path_.c_str(), "wbx");
    keys_ = std::fopen(keys_path_.c_str(), "w+bx");
    if (!data_ || !keys_) return make_error(root_.string() + ": " + std::strerror(errno));
    return Status::Ok();
  }

  Status put(std::string_view k, std::string_view value, int64_t line) override {
    if (!hashes_.insert(std::hash<std::string_view>()(k)) && seen(k)) {
      dup_ = {line, std::string(k)};
      return make_error("duplicate key '" + std::string(k) + "'", Errc::Conflict);
    }
    std::string kl = json(std::string(k)).dump();
    kl += '\n';
    if (std::fwrite(value.data(), 1, value.size(), data_) != value.size() ||
        std::fputc('\n', data_) == EOF || std::fwrite(kl.data(), 1, kl.size(), keys_) != kl.size())
      return make_error(data_path_.string() + ": " + std::strerror(errno));
    return Status::Ok();
  }

  Status finish() override {
    if (std::fflush(data_) != 0 || ::fsync(fileno(data_)) != 0)
      return make_error(data_path_.string() + ": " + std::strerror(errno));
    return Status::Ok();
  }

  std::optional<std::pair<int64_t, std::string>> duplicate() const override { return dup_; }

  Result<FlipResult> commit(const UploadVersion& v, const std::string& by,
                            const std::string& reason) override {
    close_files();
    std::error_code ec;
    fs::remove(keys_path_, ec);
    fs::path final_path = root_ / (v.id + ".jsonl");
    if (::rename(data_path_.c_str(), final_path.c_str()) != 0)
      return make_error(final_path.string() + ": " + std::strerror(errno));
    auto meta = read_meta();
    if (!meta) return meta.error();
    (*meta)["versions"][v.id] = meta_json(v);
    if (auto s = write_meta(*meta); !s) return s.error();
    return flip(*meta, v.id, by, reason);
  }

  void abort() override {
    close_files();
    std::error_code ec;
    if (!data_path_.empty()) fs::remove(data_path_, ec);
    if (!keys_path_.empty()) fs::remove(keys_path_, ec);
  }

  Result<std::vector<std::string>> prune(int keep) override {
    auto versions = list();
    if (!versions) return versions.error();
    auto meta = read_meta();
    if (!meta) return meta.error();
    std::vector<std::string> removed;
    for (size_t i = static_cast<size_t>(keep); i < versions->size(); ++i) {
      const UploadVersion& v = (*versions)[i];
      if (v.current) continue;
      (*meta)["versions"].erase(v.id);
      removed.push_back(v.id);
    }
    if (removed.empty()) return removed;
    if (auto s = write_meta(*meta); !s) return s.error();
    std::error_code ec;
    for (auto& id : removed) fs::remove(root_ / (id + ".jsonl"), ec);
    return removed;
  }

  Result<std::vector<UploadVersion>> list() override {
    auto meta = read_meta();
    if (!meta) return meta.error();
    std::string current = current_version().value_or("");
    std::vector<UploadVersion> out;
    std::error_code ec;
    for (auto& [id, m] : (*meta)["versions"].items()) {
      if (!fs::exists(root_ / (id + ".jsonl"), ec)) continue;
      UploadVersion v;
      v.id = id;
      v.rows = m.value("rows", int64_t{0});
      v.bytes = m.value("bytes", int64_t{0});
      v.created_us = m.value("created_us", int64_t{0});
      v.created_at = m.value("created_at", std::string());
      v.current = id == current;
      out.push_back(std::move(v));
    }
    std::sort(out.begin(), out.end(), [](const UploadVersion& a, const UploadVersion& b) {
      return a.created_us != b.created_us ? a.created_us > b.created_us : a.id > b.id;
    });
    return out;
  }

  Result<FlipResult> rollback(const std::string& to, const std::string& by,
                              const std::string& reason) override {
    if (auto s = lock(); !s) return s.error();
    auto versions = list();
    if (!versions) return versions.error();
    std::optional<std::string> from = current_version();
    size_t cur_index = versions->size();
    for (size_t i = 0; i < versions->size(); ++i)
      if ((*versions)[i].current) cur_index = i;
    std::string target = to;
    if (target.empty()) {
      size_t next = cur_index == versions->size() ? 0 : cur_index + 1;
      if (next >= versions->size())
        return make_error("no complete set older than " + from.value_or("(none)") +
                              " under prefix '" + prefix_ + "' to roll back to",
                          Errc::NotFound);
      target = (*versions)[next].id;
    } else {
      bool found = false;
      for (auto& v : *versions) found |= v.id == target;
      if (!found)
        return make_error("no complete set '" + target + "' under prefix '" + prefix_ + "'",
                          Errc::NotFound);
    }
    if (from && *from == target) return make_error(target + " is already current", Errc::Conflict);
    auto meta = read_meta();
    if (!meta) return meta.error();
    return flip(*meta, target, by, reason);
  }

  Result<std::vector<std::string>> events() override {
    auto meta = read_meta();
    if (!meta) return meta.error();
    std::vector<std::string> out;
    for (auto& e : (*meta)["events"]) out.push_back(e.dump());
    return out;
  }

 private:
  Status lock() {
    if (lock_) return Status::Ok();
    if (auto s = make_dirs(root_); !s) return s;
    auto l = FileLock::acquire(root_ / ".lock", /*exclusive=*/true, /*wait=*/false);
    if (!l) {
      if (l.error().code == Errc::Busy)
        return make_error("another upload or rollback of " + root_.string() + " is running",
                          Errc::Busy);
      return l.error();
    }
    lock_.emplace(std::move(*l));
    return Status::Ok();
  }
  void close_files() {
    if (data_) std::fclose(data_);
    if (keys_) std::fclose(keys_);
    data_ = keys_ = nullptr;
  }
  // Whether `k` is among the keys written so far (a hash hit confirmed).
  bool seen(std::string_view k) {
    return any_line(keys_, [&](const json& j) {
      return j.is_string() && j.get_ref<const std::string&>() == k;
    });
  }
  std::optional<std::string> current_version() const {
    std::error_code ec;
    fs::path t = fs::read_symlink(root_ / "current", ec);
    if (ec) return std::nullopt;
    std::string s = t.filename().string();
    if (s.ends_with(".jsonl")) s.resize(s.size() - 6);
    return s;
  }
  Result<json> read_meta() {
    std::error_code ec;
    fs::path p = root_ / "meta.json";
    if (!fs::exists(p, ec)) return json{{"versions", json::object()}, {"events", json::array()}};
    auto text = read_file(p);
    if (!text) return text.error();
    json j = json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("versions") || !j["versions"].is_object())
      return make_error(p.string() + ": not an upload metadata file");
    if (!j.contains("events") || !j["events"].is_array()) j["events"] = json::array();
    return j;
  }
  Status write_meta(const json& j) {
    return write_file_atomic(root_ / "meta.json", j.dump(2) + "\n");
  }
  // current -> TO.jsonl by rename(2) of a fresh link over it; then the event.
  Result<FlipResult> flip(json& meta, const std::string& to, const std::string& by,
                          const std::string& reason) {
    std::optional<std::string> from = current_version();
    fs::path tmp = root_ / (".current." + random_hex(6));
    if (::symlink((to + ".jsonl").c_str(), tmp.c_str()) != 0)
      return make_error(tmp.string() + ": " + std::strerror(errno));
    auto t0 = std::chrono::steady_clock::now();
    if (::rename(tmp.c_str(), (root_ / "current").c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return make_error((root_ / "current").string() + ": " + std::strerror(e));
    }
    double flip_ms = ms_since(t0);
    (void)fsync_dir(root_);
    meta["events"].push_back(event_json(from, to, by, reason));
    if (meta["events"].size() > 1000) meta["events"].erase(meta["events"].begin());
    if (auto s = write_meta(meta); !s) return s.error();
    return FlipResult{from, to, flip_ms};
  }

  TargetUrl url_;
  std::string prefix_;
  fs::path root_;
  std::optional<FileLock> lock_;
  std::string version_;
  fs::path data_path_, keys_path_;
  FILE* data_ = nullptr;
  FILE* keys_ = nullptr;
  HashSet hashes_;
  std::optional<std::pair<int64_t, std::string>> dup_;
};

// ---------------------------------------------------------------------------------------
// HTTP(S)

bool is_retryable_status(long status) {
  return status == 408 || status == 429 ||
         (status >= 500 && status <= 599 && status != 501 && status != 505);
}

// Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date; nullopt when absent or
// unreadable.
std::optional<std::chrono::milliseconds> retry_after(const std::vector<std::string>& headers) {
  std::string v = header_value(headers, "Retry-After");
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (v.size() > 9) return std::chrono::hours(24);
    return std::chrono::seconds(std::stoll(v));
  }
  std::tm tm{};
  const char* end = ::strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end) return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(at - std::chrono::system_clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

// The first line of an answer's body, trimmed and cut to 300 bytes (on a UTF-8 boundary).
std::string first_line(std::string_view body) {
  std::string_view line = body.substr(0, body.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
    line.remove_suffix(1);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  if (line.size() > 300) {
    size_t cut = 300;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    return std::string(line.substr(0, cut)) + "...";
  }
  return std::string(line);
}

// An HTTP(S) endpoint (docs/models.md, "HTTP protocol"). put() checks each row and spools it
// to an unlinked file; finish() sends the batches one after another; commit() sends the
// commit request, the store's flip. Every request is retried on its own (5xx but 501/505,
// 408, 429, a failed connection) with exponential backoff, under an Idempotency-Key that
// names the request, so a retry whose first try did arrive changes nothing.
class HttpTarget final : public UploadTarget {
 public:
  static constexpr size_t kEnvelope = 512;  // the bytes of a batch body besides its rows

  HttpTarget(TargetUrl url, std::string prefix, UploadTargetOptions o)
      : url_(std::move(url)), prefix_(std::move(prefix)), o_(std::move(o)) {}
  ~HttpTarget() override {
    if (spool_) std::fclose(spool_);
  }

  const std::string& display() const override { return url_.display; }

  Status begin(const std::string& version) override {
    version_ = version;
    std::error_code ec;
    fs::path dir = o_.spool_dir.empty() ? fs::temp_directory_path(ec) : fs::path(o_.spool_dir);
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {  // a file system without O_TMPFILE: a named file, unlinked at once
      std::string name = (dir / (".drover-upload-" + random_hex(6))).string();
      fd = ::open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) ::unlink(name.c_str());
    }
    if (fd < 0) return make_error(dir.string() + ": a spool file: " + std::strerror(errno));
    spool_ = ::fdopen(fd, "w+b");
    if (!spool_) {
      ::close(fd);
      return make_error(dir.string() + ": a spool file: " + std::strerror(errno));
    }
    return Status::Ok();
  }

  Status put(std::string_view k, std::string_view value, int64_t line) override {
    if (!hashes_.insert(std::hash<std::string_view>()(k)) && seen(k)) {
      dup_ = {line, std::string(k)};
      return make_error("duplicate key '" + std::string(k) + "'", Errc::Conflict);
    }
    item_.assign("{\"key\":");
    item_ += json(std::string(k)).dump(-1, ' ', false, json::error_handler_t::replace);
    item_ += ",\"value\":";
    item_.append(value);
    item_ += '}';
    size_t add = item_.size() + (cur_rows_ ? 1 : 0);  // and its ','
    if (cur_rows_ && (cur_rows_ >= static_cast<size_t>(o_.batch_size) ||
                      kEnvelope + cur_bytes_ + add > kHttpMaxBatchBytes)) {
      batches_.push_back(cur_rows_);
      cur_rows_ = cur_bytes_ = 0;
      add = item_.size();
    }
    ++cur_rows_;
    cur_bytes_ += add;
    ++rows_;
    item_ += '\n';
    if (std::fwrite(item_.data(), 1, item_.size(), spool_) != item_.size())
      return make_error("the upload's spool file: " + std::string(std::strerror(errno)));
    return Status::Ok();
  }

  Status finish() override {
    if (cur_rows_) batches_.push_back(cur_rows_);
    cur_rows_ = cur_bytes_ = 0;
    if (std::fflush(spool_) != 0 || std::fseek(spool_, 0, SEEK_SET) != 0)
      return make_error("the upload's spool file: " + std::string(std::strerror(errno)));
    const size_t n = batches_.size();
    Sha256 set_digest;
    char* buf = nullptr;
    size_t cap = 0;
    std::string body;
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < n; ++i) {
      std::string number = std::to_string(i + 1) + "/" + std::to_string(n);
      body = "{\"prefix\":" + json(prefix_).dump() + ",\"version\":" + json(version_).dump() +
             ",\"batch\":" + std::to_string(i + 1) + ",\"batches\":" + std::to_string(n) +
             ",\"rows\":[";
      for (size_t r = 0; r < batches_[i]; ++r) {
        ssize_t got = ::getline(&buf, &cap, spool_);
        if (got <= 0) {
          std::free(buf);
          return make_error("the upload's spool file ended early");
        }
        if (r) body += ',';
        body.append(buf, static_cast<size_t>(got) - 1);
      }
      body += "]}";
      std::string digest = sha256_hex(body);
      set_digest.update(digest + "\n");
      auto s = send("batch " + number, request_key(std::to_string(i + 1)), body,
                    {"X-Drover-Request: batch", "X-Drover-Batch: " + number});
      if (!s) {
        std::free(buf);
        return s.error();
      }
    }
    std::free(buf);
    set_sha256_ = set_digest.hex_digest();
    std::printf("upload: %s: sent %lld rows in %zu batches in %.0f ms (%d retries)\n",
                url_.display.c_str(), static_cast<long long>(rows_), n, ms_since(t0), retried_);
    std::fflush(stdout);
    return Status::Ok();
  }

  std::optional<std::pair<int64_t, std::string>> duplicate() const override { return dup_; }

  Result<FlipResult> commit(const UploadVersion& v, const std::string& by,
                            const std::string& reason) override {
    json body = {{"prefix", prefix_},
                 {"version", v.id},
                 {"commit", true},
                 {"batches", batches_.size()},
                 {"rows", rows_},
                 {"bytes", v.bytes},
                 {"sha256", set_sha256_},
                 {"keep", o_.keep},
                 {"created_at", v.created_at},
                 {"by", by},
                 {"reason", reason}};
    auto t0 = std::chrono::steady_clock::now();
    auto r = send("commit", request_key("commit"),
                  body.dump(-1, ' ', false, json::error_handler_t::replace),
                  {"X-Drover-Request: commit"});
    if (!r) return r.error();
    double flip_ms = ms_since(t0);
    committed_ = true;
    FlipResult f{std::nullopt, v.id, flip_ms};
    json answer = json::parse(r->body, nullptr, false);
    if (answer.is_object()) {
      if (answer.contains("previous") && answer["previous"].is_string() &&
          !answer["previous"].get_ref<const std::string&>().empty())
        f.from = answer["previous"].get<std::string>();
      if (answer.contains("removed") && answer["removed"].is_array())
        for (const json& id : answer["removed"])
          if (id.is_string()) removed_.push_back(id.get<std::string>());
    }
    return f;
  }

  void abort() override {
    if (!sent_ || committed_) return;
    json body = {{"prefix", prefix_}, {"version", version_}, {"abort", true}};
    o_.retries = 0;
    auto r = send("abort", request_key("abort"), body.dump(), {"X-Drover-Request: abort"},
                  /*quiet=*/true);
    // The error names the target and the request already.
    std::printf("upload: %s\n", r ? (url_.display + ": abort of set " + version_ + ": sent").c_str()
                                  : r.message().c_str());
    std::fflush(stdout);
  }

  Result<std::vector<std::string>> prune(int) override { return removed_; }

  Result<std::vector<UploadVersion>> list() override { return unsupported("listing sets"); }
  Result<FlipResult> rollback(const std::string&, const std::string&, const std::string&) override {
    return unsupported("rollback");
  }
  Result<std::vector<std::string>> events() override { return unsupported("reading events"); }

 private:
  Error unsupported(const std::string& what) const {
    return make_error(what + " is not supported for http targets (" + url_.display +
                          "): the store keeps its own versions; ask it, or upload the older "
                          "predictions again",
                      Errc::Invalid);
  }
  // The Idempotency-Key of one request of this set: stable across its retries, unique to it.
  std::string request_key(const std::string& what) const {
    return sha256_hex(prefix_ + "/" + version_ + "/" + what);
  }
  // `s` with the token masked.
  std::string masked(std::string s) const {
    if (o_.token.empty()) return s;
    for (size_t at; (at = s.find(o_.token)) != std::string::npos;)
      s.replace(at, o_.token.size(), "***");
    return s;
  }
  // POSTs `body`, retrying what may pass; a 2xx answer, or an error naming `what`.
  Result<CurlResponse> send(const std::string& what, const std::string& key,
                            const std::string& body, std::vector<std::string> headers,
                            bool quiet = false) {
    headers.insert(headers.end(), {"Content-Type: application/json", "Accept: application/json",
                                   "User-Agent: drover", "Expect:", "Idempotency-Key: " + key,
                                   "X-Drover-Prefix: " + prefix_, "X-Drover-Version: " + version_});
    if (!o_.token.empty()) headers.push_back("Authorization: Bearer " + o_.token);
    std::mt19937_64 rng(std::random_device{}());
    for (int attempt = 0;; ++attempt) {
      CurlRequest c;
      c.method = "POST";
      c.url = url_.url;
      c.headers = headers;
      UploadBody b;
      b.data = body.data();
      b.size = body.size();
      c.body = &b;
      c.connect_timeout = std::chrono::seconds(10);
      c.timeout = std::chrono::seconds(300);
      c.low_speed_time = std::chrono::seconds(60);
      c.protocols = "http,https";
      c.ca_file = o_.ca_file;
      c.keep_headers = true;
      c.max_body = 64 * 1024;
      sent_ = true;
      auto r = curl_perform(c);
      std::string why;
      bool retry = true;
      std::optional<std::chrono::milliseconds> after;
      if (!r) {
        why = r.message();
      } else if (r->status >= 200 && r->status <= 299) {
        return r;
      } else {
        std::string line = first_line(r->body);
        why = "HTTP " + std::to_string(r->status) + (line.empty() ? "" : ": " + line);
        retry = is_retryable_status(r->status);
        after = retry_after(r->headers);
      }
      why = masked(why);
      if (!retry || attempt >= o_.retries) {
        std::string text = url_.display + ": " + what + ": " + why;
        if (attempt > 0) text += " (after " + std::to_string(attempt + 1) + " tries)";
        if (!r && what == "commit")
          text += "; the commit's outcome is unknown: the store may have flipped to " + version_;
        return make_error(text);
      }
      auto delay = std::min(o_.max_backoff, o_.backoff * (int64_t{1} << std::min(attempt, 20)));
      delay = delay / 2 + std::chrono::milliseconds(static_cast<int64_t>(
                              rng() % static_cast<uint64_t>(delay.count() / 2 + 1)));
      if (after) delay = std::min(*after, o_.max_backoff);
      ++retried_;
      if (!quiet) {
        std::printf("upload: %s: %s: %s; try %d of %d in %.1f s\n", url_.display.c_str(),
                    what.c_str(), why.c_str(), attempt + 2, o_.retries + 1,
                    static_cast<double>(delay.count()) / 1000);
        std::fflush(stdout);
      }
      std::this_thread::sleep_for(delay);
    }
  }
  // Whether `k` is among the keys spooled so far (a hash hit confirmed).
  bool seen(std::string_view k) {
    return any_line(spool_, [&](const json& j) {
      return j.is_object() && j["key"].is_string() && j["key"].get_ref<const std::string&>() == k;
    });
  }

  TargetUrl url_;
  std::string prefix_;
  UploadTargetOptions o_;
  std::string version_;
  FILE* spool_ = nullptr;
  HashSet hashes_;
  std::string item_;
  std::vector<size_t> batches_;  // rows in each batch
  size_t cur_rows_ = 0, cur_bytes_ = 0;
  int64_t rows_ = 0;
  int retried_ = 0;
  bool sent_ = false, committed_ = false;
  std::string set_sha256_;
  std::vector<std::string> removed_;
  std::optional<std::pair<int64_t, std::string>> dup_;
};

// http(s)://HOST[:PORT][/PATH][?QUERY]: no user information, no fragment.
Result<TargetUrl> parse_http_url(std::string_view url) {
  TargetUrl t;
  t.scheme = url.starts_with("https://") ? "https" : "http";
  t.port = t.scheme == "https" ? 443 : 80;
  t.url = std::string(url);
  std::string_view rest = url.substr(t.scheme.size() + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end), tail;
  if (end != std::string_view::npos) tail = rest.substr(end);
  if (authority.find('@') != std::string_view::npos)
    return make_error(t.scheme +
                          ":// target: no user information in the URL; give the credential "
                          "as 'token: \"{{ secrets.NAME }}\"' (sent as a bearer token)",
                      Errc::Invalid);
  if (tail.find('#') != std::string_view::npos)
    return make_error(t.scheme + ":// target: a URL with a '#fragment'", Errc::Invalid);
  std::string_view portpart;
  bool has_port = false;
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return make_error(t.scheme + ":// target: unclosed '[' in the host", Errc::Invalid);
    t.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (after.starts_with(":")) {
      portpart = after.substr(1);
      has_port = true;
    } else if (!after.empty()) {
      return make_error(t.scheme + ":// target: junk after the host", Errc::Invalid);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    t.host = std::string(authority.substr(0, colon));
    portpart = authority.substr(colon + 1);
    has_port = true;
  } else {
    t.host = std::string(authority);
  }
  if (t.host.empty()) return make_error(t.scheme + ":// target names no host", Errc::Invalid);
  if (has_port && !parse_int(portpart, 1, 65535, t.port))
    return make_error("the port of an " + t.scheme + ":// target must be 1..65535, not '" +
                          std::string(portpart) + "'",
                      Errc::Invalid);
  for (char c : tail)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return make_error(t.scheme + ":// target: a space or control character in the URL",
                        Errc::Invalid);
  std::string_view path = tail.substr(0, tail.find('?'));
  t.display = std::string(url.substr(0, t.scheme.size() + 3)) + std::string(authority) +
              std::string(path.empty() ? "/" : path) +
              (tail.find('?') != std::string_view::npos ? "?***" : "");
  return t;
}

}  // namespace

Result<TargetUrl> parse_target_url(std::string_view url) {
  TargetUrl t;
  if (url.starts_with("file://")) {
    t.scheme = "file";
    t.dir = std::string(url.substr(7));
    if (t.dir.empty()) return make_error("target 'file://' names no folder", Errc::Invalid);
    t.display = std::string(url);
    return t;
  }
  if (url.starts_with("http://") || url.starts_with("https://")) return parse_http_url(url);
  if (!url.starts_with("redis://"))
    return make_error(
        "target must be redis://[:PASSWORD@]HOST:PORT/DB, file://DIR or "
        "http(s)://HOST[:PORT]/PATH",
        Errc::Invalid);
  t.scheme = "redis";
  std::string_view rest = url.substr(8);
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view info = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = info.find(':');
    if (colon == std::string_view::npos)
      return make_error(
          "the user information of a redis:// target must be ':PASSWORD@' or "
          "'USER:PASSWORD@'",
          Errc::Invalid);
    t.user = percent_decode(info.substr(0, colon));
    t.password = percent_decode(info.substr(colon + 1));
  }
  std::string_view hostport = rest, dbpart;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    dbpart = rest.substr(slash + 1);
  }
  if (!dbpart.empty() && !parse_int(dbpart, 0, 1 << 20, t.db))
    return make_error(
        "the database of a redis:// target must be a number, not '" + std::string(dbpart) + "'",
        Errc::Invalid);
  std::string_view portpart;
  if (hostport.starts_with("[")) {
    auto close = hostport.find(']');
    if (close == std::string_view::npos)
      return make_error("redis:// target: unclosed '[' in the host", Errc::Invalid);
    t.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (after.starts_with(":"))
      portpart = after.substr(1);
    else if (!after.empty())
      return make_error("redis:// target: junk after the host", Errc::Invalid);
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    t.host = std::string(hostport.substr(0, colon));
    portpart = hostport.substr(colon + 1);
  } else {
    t.host = std::string(hostport);
  }
  if (t.host.empty()) return make_error("redis:// target names no host", Errc::Invalid);
  if (!portpart.empty() && !parse_int(portpart, 1, 65535, t.port))
    return make_error(
        "the port of a redis:// target must be 1..65535, not '" + std::string(portpart) + "'",
        Errc::Invalid);
  std::string host = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
  t.display = "redis://" + host + ":" + std::to_string(t.port) + "/" + std::to_string(t.db);
  return t;
}

bool valid_upload_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > 128) return false;
  for (char c : prefix)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return false;
  return true;
}

std::string new_upload_version() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf) + "-" + random_hex(3);
}

Result<std::unique_ptr<UploadTarget>> open_upload_target(std::string_view url,
                                                         const std::string& prefix,
                                                         const std::string& password) {
  UploadTargetOptions o;
  o.password = password;
  return open_upload_target(url, prefix, o);
}

Result<std::unique_ptr<UploadTarget>> open_upload_target(std::string_view url,
                                                         const std::string& prefix,
                                                         const UploadTargetOptions& options) {
  auto t = parse_target_url(url);
  if (!t) return t.error();
  if (!valid_upload_prefix(prefix))
    return make_error("prefix '" + prefix + "' must be 1..128 of [A-Za-z0-9_.-]", Errc::Invalid);
  if (t->scheme == "file") return std::unique_ptr<UploadTarget>(new FileTarget(*t, prefix));
  if (t->scheme == "http" || t->scheme == "https") {
    if (options.batch_size < 1 || options.retries < 0)
      return make_error("batch_size must be at least 1 and retries at least 0", Errc::Invalid);
    return std::unique_ptr<UploadTarget>(new HttpTarget(*t, prefix, options));
  }
  if (t->password.empty()) t->password = options.password;
  auto r = std::make_unique<RedisTarget>(*t, prefix);
  if (auto s = r->connect(); !s) return s.error();
  return std::unique_ptr<UploadTarget>(std::move(r));
}

}  // namespace drover
