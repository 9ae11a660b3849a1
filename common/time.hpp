// Time formatting and parsing shared by every module: ISO 8601 with offsets, durations
// like "30s" / "1h30m". Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace date { class time_zone; }

namespace drover {

// "2026-11-25T09:00:00Z" (fractional seconds only when non-zero: ".123456").
std::string format_iso_utc(TimePoint t);
// "2026-03-29T03:00:00+03:00" in the given zone.
std::string format_iso_zoned(TimePoint t, const date::time_zone* zone);
// Accepts "YYYY-MM-DDTHH:MM[:SS[.frac]](Z|±HH:MM|±HHMM)" and "YYYY-MM-DD" (UTC midnight).
Result<TimePoint> parse_iso(std::string_view text);
// Looks up an IANA zone name; error names the zone.
Result<const date::time_zone*> find_zone(std::string_view name);

// "500ms", "30s", "5m", "2h", "1d", "1h30m"; no sign, at least one unit.
Result<Micros> parse_duration(std::string_view text);
// Inverse for display: "1h30m", "30s", "250ms".
std::string format_duration(Micros d);

}  // namespace drover
