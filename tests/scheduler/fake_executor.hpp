// FakeExecutor: an Executor for Engine tests that runs nothing. It records every call the
// Engine makes (start with its TrySpec, kill with its reason, adopt, shutdown); the test
// ends a try when it likes, and the fake reports it through the callback exactly as
// LocalExecutor does for a try process (executor/worker.cpp): Started (pid) first, then
// Finished with the process's exit code or signal and result.json in try_runner's shape.
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
    std::string key, try_dir;
  };

  // --- Executor -----------------------------------------------------------------------------
  void set_callback(Callback cb) override { cb_ = std::move(cb); }
  void start(const TrySpec& spec) override {
    starts_.push_back(spec);
    running_[try_key(spec.run_id, spec.task, spec.try_number)] = Try{spec, 0, false};
  }
  void kill(const std::string& key, const std::string& why) override {
    kills_.push_back({key, why});
  }
  // An adopted try runs until the test ends it (finish, finish_killed; it has no spec for
  // finish_like_mock beyond its try_dir).
  void adopt(const std::string& key, const std::string& try_dir) override {
    adopts_.push_back({key, try_dir});
    TrySpec spec;
    spec.try_dir = try_dir;
    running_[key] = Try{spec, next_pid_++, true};
  }
  void shutdown() override { ++shutdowns_; }

  // --- What the Engine asked ----------------------------------------------------------------
  const std::vector<TrySpec>& starts() const { return starts_; }
  const std::vector<Kill>& kills() const { return kills_; }
  const std::vector<Adopt>& adopts() const { return adopts_; }
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
  int shutdowns_ = 0;
  std::map<std::string, Try> running_;
  int next_pid_ = 4000;
};

}  // namespace drover
