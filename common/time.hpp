// Time formatting and parsing shared by every module: ISO 8601 with offsets, durations
// like "30s" / "1h30m", and the zone lookup that applies a zone's POSIX TZ rule after the
// last transition its file lists. Implemented in common/time.cpp; every function is
// thread-safe (the per-zone rule cache takes a lock).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace date {
class time_zone;
struct sys_info;
}  // namespace date

namespace drover {

// "2026-11-25T09:00:00Z" (fractional seconds only when non-zero: ".123456").
std::string format_iso_utc(TimePoint t);
// "2026-03-29T03:00:00+03:00" in the given zone.
std::string format_iso_zoned(TimePoint t, const date::time_zone* zone);
// Accepts "YYYY-MM-DDTHH:MM[:SS[.frac]](Z|±HH:MM|±HHMM)" and "YYYY-MM-DD" (UTC midnight).
Result<TimePoint> parse_iso(std::string_view text);
// Looks up an IANA zone name; error names the zone.
Result<const date::time_zone*> find_zone(std::string_view name);

// The constant-offset period of `zone` that holds `t` (begin, end, offset, save, abbrev), as
// date::time_zone::get_info gives it, except after the last transition the zone file lists
// (2037 in the system tzdata): there the file's TZif v2+ footer, a POSIX TZ rule
// (RFC 8536 section 3.3), decides, so daylight saving goes on in 2038 and later. A null
// zone is UTC. `save` is non-zero exactly in daylight time (the OS-database reader says
// 1 minute; the rule gives the real amount): compare offsets, not saves. Every zone-aware
// computation (cron next, format_iso_zoned) goes through this.
date::sys_info zone_info(const date::time_zone* zone, std::chrono::sys_seconds t);

// The period holding `t` under the POSIX TZ string `tz` alone ("EST5EDT,M3.2.0,M11.1.0",
// "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "JST-9"; dates Jn, n and Mm.w.d, times with signed
// hours up to 167 as RFC 8536 allows). Error names the string and what is wrong in it.
Result<date::sys_info> posix_tz_info(std::string_view tz, std::chrono::sys_seconds t);

// "500ms", "30s", "5m", "2h", "1d", "1h30m"; no sign, at least one unit.
Result<Micros> parse_duration(std::string_view text);
// Inverse for display: "1h30m", "30s", "250ms".
std::string format_duration(Micros d);

}  // namespace drover
