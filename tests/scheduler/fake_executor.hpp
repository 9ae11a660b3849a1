// FakeExecutor: an Executor for Engine tests that runs nothing. It records every call the
// Engine makes (start with its TrySpec, kill with its reason, adopt with its handle,
// shutdown); the test ends a try when it likes, and the fake reports it through the
// callback exactly as LocalExecutor does for a try process (executor/worker.cpp): Started
// (pid, facts {"executor": "fake", "hostname": "fake-host"} and a handle) first, then
// Finished with the process's exit code or signal and result.json in try_runner's shape.
// A test may make it refuse starts (refuse_starts), cap its capacity (set_capacity) and
// give a try a log (set_log, read back by read_log through the try's handle).
// finish_like_mock() plays plugins/mock.cpp on the try's rendered `with:`, so DAGs of
// `type: mock` tasks behave as they do for real, without processes or time. Not
// thread-safe (the Engine's io_context thread, as every Executor).
#pragma once

#include <signal.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/sha256.hpp"
#include "executor/executor.hpp"

namespace drover {

class FakeExecutor final : public Executor {
 public:
  struct Kill {
    std::string key, why;
  };
  struct Adopt {
    std::string key, handle;
    std::string try_dir;  // the handle's "try_dir" (handles are {"try_dir", "fake"} JSON)
  };

  // --- Executor -----------------------------------------------------------------------------
  void set_callback(Callback cb) override { cb_ = std::move(cb); }
  Status start(const TrySpec& spec) override {
    std::string key = try_key(spec.run_id, spec.task, spec.try_number);
    if (!refusal_.empty()) {
      refused_.push_back(key);
      return make_error(refusal_);
    }
    starts_.push_back(spec);
    running_[key] = Try{spec, 0, false};
    max_running_ = std::max(max_running_, static_cast<int>(running_.size()));
    return {};
  }
  void kill(const std::string& key, const std::string& why) override {
    kills_.push_back({key, why});
  }
  // An adopted try runs until the test ends it (finish, finish_killed; it has no spec for
  // finish_like_mock beyond its try_dir).
  void adopt(const std::string& key, const std::string& handle) override {
    json h = json::parse(handle, nullptr, false);
    std::string try_dir = h.is_object() ? h.value("try_dir", "") : "";
    adopts_.push_back({key, handle, try_dir});
    TrySpec spec;
    spec.try_dir = try_dir;
    running_[key] = Try{spec, next_pid_++, true};
  }
  Result<LogChunk> read_log(const std::string& key, const std::string& handle,
                            unsigned long long offset, size_t max) const override {
    log_reads_.push_back({key, handle});
    auto it = logs_.find(key);
    if (it == logs_.end()) return make_error("no log of " + key, Errc::NotFound);
    LogChunk c;
    c.size = it->second.size();
    if (offset < c.size) c.bytes = it->second.substr(offset, max);
    c.next_offset = offset + c.bytes.size();
    return c;
  }
  Capacity capacity() const override { return capacity_; }
  void shutdown() override { ++shutdowns_; }

  // --- What the test makes it do ------------------------------------------------------------
  // Every start from now on is refused with `message` ("" takes them again).
  void refuse_starts(const std::string& message) { refusal_ = message; }
  void set_capacity(Capacity c) { capacity_ = std::move(c); }
  void set_log(const std::string& key, const std::string& text) { logs_[key] = text; }
  // The handle a try's Started gives (and adopt expects back).
  static std::string handle_of(const std::string& key, const std::string& try_dir) {
    return json{{"try_dir", try_dir}, {"fake", key}}.dump();
  }

  // --- What the Engine asked ----------------------------------------------------------------
  const std::vector<TrySpec>& starts() const { return starts_; }
  const std::vector<Kill>& kills() const { return kills_; }
  const std::vector<Adopt>& adopts() const { return adopts_; }
  // The keys of the starts it refused, in order.
  const std::vector<std::string>& refused() const { return refused_; }
  // The most tries it held at once (started and not finished).
  int max_running() const { return max_running_; }
  // Each read_log asked: (key, handle).
  const std::vector<std::pair<std::string, std::string>>& log_reads() const { return log_reads_; }
  int shutdowns() const { return shutdowns_; }
  // The keys (try_key) of every try started, in order.
  std::vector<std::string> started_keys() const {
    std::vector<std::string> out;
    for (const TrySpec& s : starts_) out.push_back(try_key(s.run_id, s.task, s.try_number));
    return out;
  }
  // Tries started and not finished yet, by key.
  std::vector<std::string> running() const {
    std::vector<std::string> out;
    for (const auto& [key, t] : running_) out.push_back(key);
    return out;
  }
  bool is_running(const std::string& key) const { return running_.count(key) > 0; }
  // The spec a running try was started with (nullptr: not running).
  const TrySpec* spec(const std::string& key) const {
    auto it = running_.find(key);
    return it == running_.end() ? nullptr : &it->second.spec;
  }

  // --- Ending tries -------------------------------------------------------------------------
  // result.json as executor/try_runner.cpp writes it (finish_try).
  static json result_json(int exit_code, const std::string& error = "",
                          json values = json::object(), json metrics = json::array(),
                          json outputs = json::array(), json alerts = json::array()) {
    return json{{"started_at", 0},    {"exit_code", exit_code}, {"error", error},
                {"outputs", outputs}, {"values", values},       {"metrics", metrics},
                {"alerts", alerts},   {"ended_at", 0}};
  }

  // Reports Started for a running try (its worker forked the try process), once.
  void report_started(const std::string& key) {
    auto it = running_.find(key);
    if (it == running_.end() || it->second.started) return;
    it->second.started = true;
    it->second.pid = next_pid_++;
    TryEvent e;
    e.kind = TryEvent::Kind::Started;
    e.key = key;
    e.pid = it->second.pid;
    e.pid_start = pid_start(it->second.pid);
    e.facts = {{"executor", "fake"}, {"hostname", "fake-host"}};
    e.handle = handle_of(key, it->second.spec.try_dir);
    if (cb_) cb_(e);
  }

  // The try process exited with `exit_code` having written `result` (result_json()).
  void finish(const std::string& key, int exit_code, const json& result) {
    TryEvent e = finished(key);
    e.exit_code = exit_code & 0xff;
    e.result = result;
    deliver(key, e);
  }
  // The try process was ended by `signal` (a kill after a timeout or cancel): no result.
  void finish_killed(const std::string& key, int signal = SIGTERM) {
    TryEvent e = finished(key);
    e.signal = signal;
    e.result = nullptr;
    deliver(key, e);
  }
  // No try process ran (no worker could be started, the worker pipe closed).
  void finish_without_result(const std::string& key, const std::string& error) {
    auto it = running_.find(key);
    if (it == running_.end()) return;
    TryEvent e;
    e.kind = TryEvent::Kind::Finished;
    e.key = key;
    e.error = error;
    running_.erase(it);
    if (cb_) cb_(e);
  }
  // Ends the try as a `mock` try would (plugins/mock.cpp, then try_runner's finish_try):
  // fail_on_try / exit_code decide the code; values and metrics are published whatever
  // it is; write_bytes writes out.bin, collected when declared in `outputs:` and the code
  // is 0 (a declared output not produced fails the try). sleep_ms takes no time here.
  void finish_like_mock(const std::string& key) {
    const TrySpec* s = spec(key);
    if (!s) return;
    const json& w = s->with;
    int code = w.value("exit_code", 0);
    if (w.contains("fail_on_try")) {
      const json& f = w["fail_on_try"];
      bool fail = false;
      if (f.is_number_integer()) fail = s->try_number <= f.get<int>();
      if (f.is_array())
        for (auto& n : f) fail |= n.is_number_integer() && n.get<int>() == s->try_number;
      if (fail) code = 1;
    }
    json values = json::object(), metrics = json::array(), outputs = json::array();
    if (w.contains("values"))
      for (auto& [k, v] : w["values"].items()) values[k] = v;
    if (w.contains("metrics"))
      for (auto& [k, v] : w["metrics"].items())
        if (v.is_number())
          metrics.push_back({{"name", k}, {"value", v.get<double>()}, {"step", -1}});
    long long bytes = w.value("write_bytes", 0LL);
    std::string error;
    if (code == 0) {
      for (const std::string& decl : s->outputs) {
        if (decl == "out.bin" && bytes > 0) {
          outputs.push_back({{"path", "out.bin"},
                             {"sha256", sha256_of_x(bytes)},
                             {"size", bytes},
                             {"mode", 0644}});
          continue;
        }
        error = "declared output '" + decl + "' was not produced";
        code = 1;
        outputs = json::array();
        break;
      }
    }
    finish(key, code, result_json(code, error, values, metrics, outputs));
  }

 private:
  struct Try {
    TrySpec spec;
    int pid = 0;
    bool started = false;
  };

  static long long pid_start(int pid) { return 1000000LL + pid; }

  // The SHA-256 of `n` bytes 'x' (what mock's write_bytes writes).
  static std::string sha256_of_x(long long n) {
    Sha256 h;
    std::string block(65536, 'x');
    for (long long left = n; left > 0; left -= static_cast<long long>(block.size()))
      h.update(block.data(), static_cast<size_t>(std::min<long long>(left, block.size())));
    return h.hex_digest();
  }

  // A Finished event for a running try, after its Started (reported now if not yet).
  TryEvent finished(const std::string& key) {
    report_started(key);
    TryEvent e;
    e.kind = TryEvent::Kind::Finished;
    e.key = key;
    auto it = running_.find(key);
    if (it != running_.end()) e.pid = it->second.pid;
    return e;
  }
  void deliver(const std::string& key, const TryEvent& e) {
    if (running_.erase(key) == 0) return;  // not running: nothing to report
    if (cb_) cb_(e);
  }

  Callback cb_;
  std::vector<TrySpec> starts_;
  std::vector<Kill> kills_;
  std::vector<Adopt> adopts_;
  std::vector<std::string> refused_;
  mutable std::vector<std::pair<std::string, std::string>> log_reads_;
  std::string refusal_;
  Capacity capacity_;
  std::map<std::string, std::string> logs_;
  int max_running_ = 0;
  int shutdowns_ = 0;
  std::map<std::string, Try> running_;
  int next_pid_ = 4000;
};

}  // namespace drover
