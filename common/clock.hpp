// Clock: the one source of "now" for cron, retries, timeouts and leases. The daemon uses
// SystemClock; tests use ManualClock (tests/…) or drive the daemon through --fake-clock.
// Implementations must be thread-safe.
#pragma once

#include <atomic>
#include <chrono>

namespace drover {

using Clock_ = std::chrono::system_clock;
using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;
using Micros = std::chrono::microseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override {
    return std::chrono::time_point_cast<Micros>(std::chrono::system_clock::now());
  }
};

// A clock that moves only when told. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : us_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint(Micros(us_.load())); }
  void set(TimePoint t) { us_.store(t.time_since_epoch().count()); }
  void advance(Micros d) { us_.fetch_add(d.count()); }

 private:
  std::atomic<long long> us_;
};

}  // namespace drover
