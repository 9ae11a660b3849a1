// The `mock` task type, for tests of the scheduler, executors and agents without real
// work. with: {sleep_ms: N, exit_code: N, fail_on_try: [N...] | N (fail while try <= N),
// write_bytes: N (writes out.bin), values: {k: v}, metrics: {name: v}}.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "plugins/task_type.hpp"

namespace drover {
namespace {

class MockTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "mock"; }
  void validate(const json& with, std::vector<ConfigError>& errors) const override {
    check_known_keys(with,
                     {"sleep_ms", "exit_code", "fail_on_try", "write_bytes", "values", "metrics"},
                     "mock", errors);
  }
  std::vector<std::string> published_keys(const json& with) const override {
    std::vector<std::string> keys;
    if (with.is_object() && with.contains("values") && with["values"].is_object())
      for (auto& [k, v] : with["values"].items()) keys.push_back(k);
    return keys;
  }
  int run(TaskContext& ctx) const override {
    const json& w = ctx.spec.with;
    std::printf("mock: try %d of %s\n", ctx.spec.try_number, ctx.spec.task.c_str());
    std::fflush(stdout);
    if (auto ms = w.value("sleep_ms", 0LL); ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    if (auto n = w.value("write_bytes", 0LL); n > 0) {
      std::ofstream out("out.bin", std::ios::binary);
      std::string block(65536, 'x');
      for (long long left = n; left > 0; left -= static_cast<long long>(block.size()))
        out.write(block.data(), std::min<long long>(left, static_cast<long long>(block.size())));
    }
    if (w.contains("values"))
      for (auto& [k, v] : w["values"].items()) ctx.publish.value(k, v);
    if (w.contains("metrics"))
      for (auto& [k, v] : w["metrics"].items())
        if (v.is_number()) ctx.publish.metric(k, v.get<double>());
    if (w.contains("fail_on_try")) {
      const json& f = w["fail_on_try"];
      bool fail = false;
      if (f.is_number_integer()) fail = ctx.spec.try_number <= f.get<int>();
      if (f.is_array())
        for (auto& n : f) fail |= n.is_number_integer() && n.get<int>() == ctx.spec.try_number;
      if (fail) {
        std::fprintf(stderr, "mock: failing try %d as asked\n", ctx.spec.try_number);
        return 1;
      }
    }
    return w.value("exit_code", 0);
  }
};

}  // namespace

std::unique_ptr<TaskType> make_mock_task_type() { return std::make_unique<MockTaskType>(); }

}  // namespace drover
