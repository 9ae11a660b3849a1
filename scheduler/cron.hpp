// Cron schedules: 5-field expressions (lists, ranges, steps, month/day names) and the
// @hourly/@daily/@weekly/@monthly/@yearly macros, evaluated in an IANA time zone with the
// DST rule of docs/dag-format.md ("Schedules and DST"). Immutable after parse; thread-safe.
#pragma once

#include <bitset>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace date {
class time_zone;
}

namespace drover::cron {

class Schedule {
 public:
  // Parses `expr`. Errors name the bad field and its 1-based character position, e.g.
  // "invalid cron expression '0 25 * * *': hour field (position 3): 25 is out of range 0-23".
  // `error_col` (when non-null) receives that 1-based position within expr on error.
  static Result<std::shared_ptr<const Schedule>> parse(std::string_view expr,
                                                       int* error_col = nullptr);

  // The first fire time strictly after `after`, in `zone` (offsets from common/time's
  // zone_info, so after 2037 the zone file's POSIX rule applies). Never scans minute by
  // minute.
  // Returns TimePoint::max() when the expression can never fire (e.g. "0 0 30 2 *").
  TimePoint next(TimePoint after, const date::time_zone* zone) const;

  const std::string& text() const { return text_; }
  // True when minute and hour are single values (fires once per matching day under DST).
  bool fixed_time() const { return fixed_time_; }

  // Fields, exposed for tests and the loader.
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // 1..31
  std::bitset<13> months;         // 1..12
  std::bitset<7> days_of_week;    // 0..6, Sunday = 0 (7 accepted on input as Sunday)
  bool dom_restricted = false;    // field was not '*'
  bool dow_restricted = false;

 private:
  std::string text_;
  bool fixed_time_ = false;
};

}  // namespace drover::cron
