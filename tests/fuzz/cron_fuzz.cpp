// libFuzzer target for the cron parser and next(): any input must either parse or fail with
// a message and a column inside the expression; a parsed schedule's next() must terminate
// and move strictly forward. Built with -DDROVER_FUZZ=ON under clang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/time.hpp"
#include "scheduler/cron.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256) return 0;
  std::string_view expr(reinterpret_cast<const char*>(data), size);
  int col = 0;
  auto parsed = drover::cron::Schedule::parse(expr, &col);
  if (!parsed.ok()) {
    if (parsed.message().empty() || col < 1 || col > static_cast<int>(size) + 1) std::abort();
    return 0;
  }
  static const date::time_zone* zones[] = {
      nullptr,
      drover::find_zone("America/New_York").ok() ? *drover::find_zone("America/New_York") : nullptr,
      drover::find_zone("Australia/Lord_Howe").ok() ? *drover::find_zone("Australia/Lord_Howe")
                                                    : nullptr,
  };
  const auto& schedule = *parsed;
  for (const date::time_zone* zone : zones) {
    // 2026-03-08T06:30:00Z, near New York's spring-forward.
    drover::TimePoint t(std::chrono::seconds(1772951400));
    for (int i = 0; i < 4; ++i) {
      drover::TimePoint n = schedule->next(t, zone);
      if (n == drover::TimePoint::max()) break;
      if (n <= t) std::abort();
      t = n;
    }
  }
  return 0;
}
