// Clock: the one source of "now" for cron, retries, timeouts and leases: a wall clock and a
// monotonic one. The daemon uses SystemClock; tests use ManualClock.
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
  // The wall clock: what cron fires by and what is shown. It may jump (NTP, an operator).
  virtual TimePoint now() const = 0;
  // A monotonic clock (µs from an arbitrary origin) that never jumps: what durations —
  // timeouts, retry backoff, SLA waits — are measured on.
  virtual Micros steady() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override {
    return std::chrono::time_point_cast<Micros>(std::chrono::system_clock::now());
  }
  Micros steady() const override {
    return std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now().time_since_epoch());
  }
};

// A clock that moves only when told. set() and advance() are time passing (both clocks
// move); jump() moves the wall clock alone, as a clock that is set does. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : us_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint(Micros(us_.load())); }
  Micros steady() const override { return Micros(steady_us_.load()); }
  void set(TimePoint t) {
    long long to = t.time_since_epoch().count();
    steady_us_.fetch_add(to - us_.exchange(to));
  }
  void advance(Micros d) {
    us_.fetch_add(d.count());
    steady_us_.fetch_add(d.count());
  }
  void jump(Micros d) { us_.fetch_add(d.count()); }

 private:
  std::atomic<long long> us_;
  std::atomic<long long> steady_us_{0};
};

// Time as the engine measures durations: the wall clock as it was at the start, carried on
// by the monotonic clock, so that a wall clock that jumps neither ends nor stretches a
// timeout, a retry's backoff or an SLA wait. Between jumps it is the wall clock.
class SteadyWall {
 public:
  explicit SteadyWall(const Clock& c) : clock_(c), wall0_(c.now()), steady0_(c.steady()) {}
  TimePoint now() const { return wall0_ + (clock_.steady() - steady0_); }
  // How far the wall clock has moved from this one (positive: it jumped forward).
  Micros skew() const { return clock_.now() - now(); }
  // A wall-clock instant (a cron fire, a data interval's end) on this clock, as of now.
  TimePoint from_wall(TimePoint wall) const { return wall - skew(); }

 private:
  const Clock& clock_;
  TimePoint wall0_;
  Micros steady0_;
};

}  // namespace drover
