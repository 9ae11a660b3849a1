#include "scheduler/cron.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <cctype>
#include <chrono>
#include <vector>

#include "common/time.hpp"

namespace drover::cron {
namespace {

using Days = std::chrono::days;
using Hours = std::chrono::hours;
using Minutes = std::chrono::minutes;
using Seconds = std::chrono::seconds;

// How far next() looks ahead before it decides an expression never fires. The rarest
// schedule that can fire at all, Feb 29, recurs within 8 years (2096 -> 2104).
constexpr int kSearchYears = 30;

struct FieldDef {
  const char* name;
  int min;
  int max;                   // highest value '*' stands for
  int input_max;             // highest value accepted on input (7 for day-of-week)
  const char* const* names;  // 3-letter names for min.., or null
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

constexpr std::array<FieldDef, 5> kFields = {{
    {"minute", 0, 59, 59, nullptr},
    {"hour", 0, 23, 23, nullptr},
    {"day-of-month", 1, 31, 31, nullptr},
    {"month", 1, 12, 12, kMonthNames},
    {"day-of-week", 0, 6, 7, kDayNames},
}};

struct Macro {
  const char* name;
  const char* expansion;
};

constexpr Macro kMacros[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

struct Token {
  std::string_view text;
  int col;  // 1-based position in the original expression
};

// Parses one field (a comma-separated list) into a bitset of 64 values; errors carry the
// 1-based column of the offending item.
class FieldParser {
 public:
  FieldParser(const FieldDef& def, Token field) : def_(def), field_(field) {}

  bool parse(std::bitset<64>& out) {
    size_t start = 0;
    const std::string_view t = field_.text;
    while (true) {
      size_t comma = t.find(',', start);
      size_t end = comma == std::string_view::npos ? t.size() : comma;
      if (!parse_item(t.substr(start, end - start), field_.col + static_cast<int>(start), out))
        return false;
      if (comma == std::string_view::npos) return true;
      start = comma + 1;
    }
  }

  const std::string& error() const { return error_; }
  int error_col() const { return error_col_; }

 private:
  bool fail(int col, std::string msg) {
    error_col_ = col;
    error_ = std::string(def_.name) + " field (position " + std::to_string(col) + "): " + msg;
    return false;
  }

  // A number or (in month/day-of-week) a name. Checks the field's input range.
  bool parse_value(std::string_view s, int col, int& out) {
    if (s.empty()) return fail(col, "missing value");
    if (std::isdigit(static_cast<unsigned char>(s[0]))) {
      long long v = 0;
      for (char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c)))
          return fail(col, "'" + std::string(s) + "' is not a number");
        if (v < 1000000) v = v * 10 + (c - '0');
      }
      if (v < def_.min || v > def_.input_max)
        return fail(col, std::string(s) + " is out of range " + std::to_string(def_.min) + "-" +
                             std::to_string(def_.input_max));
      out = static_cast<int>(v);
      return true;
    }
    if (def_.names != nullptr) {
      if (s.size() == 3) {
        int count = def_.max - def_.min + 1;
        for (int i = 0; i < count; ++i) {
          const char* n = def_.names[i];
          if (std::toupper(static_cast<unsigned char>(s[0])) == n[0] &&
              std::toupper(static_cast<unsigned char>(s[1])) == n[1] &&
              std::toupper(static_cast<unsigned char>(s[2])) == n[2]) {
            out = def_.min + i;
            return true;
          }
        }
      }
      bool month = def_.names == kMonthNames;
      return fail(col, std::string("unknown ") + (month ? "month" : "day") + " name '" +
                           std::string(s) + "' (expected " + (month ? "JAN-DEC" : "SUN-SAT") + ")");
    }
    return fail(col, "'" + std::string(s) + "' is not a number");
  }

  bool parse_item(std::string_view item, int col, std::bitset<64>& out) {
    if (item.empty()) return fail(col, "empty list item");
    int lo, hi, step = 1;
    std::string_view range = item;
    size_t slash = item.find('/');
    if (slash != std::string_view::npos) {
      range = item.substr(0, slash);
      std::string_view st = item.substr(slash + 1);
      int st_col = col + static_cast<int>(slash) + 1;
      if (st.empty()) return fail(st_col, "missing step after '/'");
      long long v = 0;
      for (char c : st) {
        if (!std::isdigit(static_cast<unsigned char>(c)))
          return fail(st_col, "step '" + std::string(st) + "' is not a number");
        if (v < 1000000) v = v * 10 + (c - '0');
      }
      if (v == 0) return fail(st_col, "step 0 is invalid (must be 1 or more)");
      step = static_cast<int>(v);
    }
    if (range == "*") {
      lo = def_.min;
      hi = def_.max;
    } else {
      size_t dash = range.find('-');
      if (dash != std::string_view::npos) {
        if (!parse_value(range.substr(0, dash), col, lo)) return false;
        int hi_col = col + static_cast<int>(dash) + 1;
        if (!parse_value(range.substr(dash + 1), hi_col, hi)) return false;
        if (lo > hi) return fail(col, "range " + std::string(range) + " is reversed (start > end)");
      } else {
        if (!parse_value(range, col, lo)) return false;
        // "5/10" means 5-MAX/10 (the Vixie cron reading).
        hi = slash != std::string_view::npos ? def_.max : lo;
      }
    }
    for (int v = lo; v <= hi; v += step) out.set(v);
    return true;
  }

  const FieldDef& def_;
  Token field_;
  std::string error_;
  int error_col_ = 0;
};

std::vector<Token> split_fields(std::string_view expr, int base_col) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && (expr[i] == ' ' || expr[i] == '\t')) ++i;
    if (i >= expr.size()) break;
    size_t start = i;
    while (i < expr.size() && expr[i] != ' ' && expr[i] != '\t') ++i;
    out.push_back({expr.substr(start, i - start), base_col + static_cast<int>(start)});
  }
  return out;
}

template <size_t N>
int next_bit(const std::bitset<N>& b, int from) {
  for (int i = from < 0 ? 0 : from; i < static_cast<int>(N); ++i)
    if (b[i]) return i;
  return -1;
}

}  // namespace

Result<std::shared_ptr<const Schedule>> Schedule::parse(std::string_view expr, int* error_col) {
  const std::string quoted = "invalid cron expression '" + std::string(expr) + "': ";
  auto fail = [&](int col, const std::string& msg) -> Result<std::shared_ptr<const Schedule>> {
    if (error_col != nullptr) *error_col = col;
    return make_error(quoted + msg, Errc::Invalid);
  };

  std::vector<Token> tokens = split_fields(expr, 1);
  if (tokens.empty()) return fail(1, "empty expression");

  std::string_view body = expr;
  std::vector<Token> fields = tokens;
  std::vector<Token> expanded;
  if (tokens[0].text[0] == '@') {
    const Macro* found = nullptr;
    for (const Macro& m : kMacros) {
      std::string_view name = tokens[0].text;
      if (name.size() != std::string_view(m.name).size()) continue;
      bool eq = true;
      for (size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(name[i])) != m.name[i]) eq = false;
      if (eq) found = &m;
    }
    if (found == nullptr)
      return fail(tokens[0].col,
                  "unknown macro '" + std::string(tokens[0].text) +
                      "' (expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or "
                      "@annually)");
    if (tokens.size() > 1)
      return fail(tokens[1].col, "unexpected '" + std::string(tokens[1].text) + "' after " +
                                     std::string(tokens[0].text));
    // Fields of a macro all point at the macro itself for error purposes (none can fail).
    body = found->expansion;
    fields = split_fields(body, tokens[0].col);
    for (Token& t : fields) t.col = tokens[0].col;
  } else if (tokens.size() != 5) {
    int col = tokens.size() > 5 ? tokens[5].col : static_cast<int>(expr.size()) + 1;
    return fail(col, "expected 5 fields (minute hour day-of-month month day-of-week), got " +
                         std::to_string(tokens.size()));
  }

  auto s = std::make_shared<Schedule>();
  s->text_ = std::string(expr);
  std::array<std::bitset<64>, 5> bits;
  for (size_t i = 0; i < 5; ++i) {
    FieldParser p(kFields[i], fields[i]);
    if (!p.parse(bits[i])) return fail(p.error_col(), p.error());
  }
  for (int v = 0; v < 60; ++v) s->minutes[v] = bits[0][v];
  for (int v = 0; v < 24; ++v) s->hours[v] = bits[1][v];
  for (int v = 1; v <= 31; ++v) s->days_of_month[v] = bits[2][v];
  for (int v = 1; v <= 12; ++v) s->months[v] = bits[3][v];
  for (int v = 0; v < 7; ++v) s->days_of_week[v] = bits[4][v];
  if (bits[4][7]) s->days_of_week[0] = true;  // 7 is Sunday too
  s->dom_restricted = fields[2].text != "*";
  s->dow_restricted = fields[4].text != "*";
  s->fixed_time_ = s->minutes.count() == 1 && s->hours.count() == 1;
  return std::shared_ptr<const Schedule>(std::move(s));
}

namespace {

using LocalMinutes = date::local_time<Minutes>;

bool day_matches(const Schedule& s, int y, unsigned m, unsigned d) {
  auto ymd = date::year(y) / date::month(m) / date::day(d);
  unsigned wd = date::weekday(date::sys_days(ymd)).c_encoding();
  bool dom = s.days_of_month[d];
  bool dow = s.days_of_week[wd];
  if (s.dom_restricted && s.dow_restricted) return dom || dow;  // Vixie cron: either
  if (s.dom_restricted) return dom;
  if (s.dow_restricted) return dow;
  return true;
}

// The first local wall time >= `from` that matches the fields, or LocalMinutes::max() when
// none exists before the end of `last_year`. Jumps field by field: month, day, hour, minute.
LocalMinutes next_local(const Schedule& s, LocalMinutes from, int last_year) {
  auto day_point = std::chrono::floor<Days>(from);
  date::year_month_day ymd{day_point};
  int y = static_cast<int>(ymd.year());
  unsigned mo = static_cast<unsigned>(ymd.month());
  unsigned d = static_cast<unsigned>(ymd.day());
  auto tod = (from - day_point).count();
  int h = static_cast<int>(tod / 60);
  int mi = static_cast<int>(tod % 60);
  const int first_hour = next_bit(s.hours, 0);
  const int first_minute = next_bit(s.minutes, 0);

  while (y <= last_year) {
    if (!s.months[mo]) {
      int m2 = next_bit(s.months, static_cast<int>(mo) + 1);
      if (m2 < 0) {
        ++y;
        m2 = next_bit(s.months, 1);
      }
      mo = static_cast<unsigned>(m2);
      d = 1, h = first_hour, mi = first_minute;
      continue;
    }
    unsigned last_day = static_cast<unsigned>((date::year(y) / date::month(mo) / date::last).day());
    if (d > last_day) {
      if (++mo > 12) mo = 1, ++y;
      d = 1, h = first_hour, mi = first_minute;
      continue;
    }
    if (!day_matches(s, y, mo, d)) {
      ++d, h = first_hour, mi = first_minute;
      continue;
    }
    int h2 = next_bit(s.hours, h);
    if (h2 < 0) {
      ++d, h = first_hour, mi = first_minute;
      continue;
    }
    if (h2 != h) h = h2, mi = first_minute;
    int m2 = next_bit(s.minutes, mi);
    if (m2 < 0) {
      ++h, mi = first_minute;
      continue;
    }
    auto day = date::local_days(date::year(y) / date::month(mo) / date::day(d));
    return day + Hours(h) + Minutes(m2);
  }
  return LocalMinutes::max();
}

TimePoint to_timepoint(date::sys_seconds t) {
  // Zone periods that never end carry a far-future sentinel; treat it as "never".
  static const date::sys_seconds kFar = date::sys_days(date::year(9000) / 1 / 1);
  if (t >= kFar) return TimePoint::max();
  return TimePoint(t.time_since_epoch());
}

}  // namespace

TimePoint Schedule::next(TimePoint after, const date::time_zone* zone) const {
  using Micro = std::chrono::microseconds;
  if (after >= TimePoint::max() - Micro(1)) return TimePoint::max();
  const TimePoint s0 = after + Micro(1);
  const int last_year =
      static_cast<int>(date::year_month_day(std::chrono::floor<Days>(s0)).year()) + kSearchYears;
  // Local wall time of `t` at offset `off`, rounded up to a whole minute.
  auto to_local = [](TimePoint t, Seconds off) {
    return std::chrono::ceil<Minutes>(date::local_time<Micro>((t + off).time_since_epoch()));
  };
  auto from_local = [](LocalMinutes l, Seconds off) {
    return TimePoint(std::chrono::duration_cast<Micro>(l.time_since_epoch()) - off);
  };

  if (zone == nullptr) {  // UTC
    LocalMinutes l = next_local(*this, to_local(s0, Seconds(0)), last_year);
    return l == LocalMinutes::max() ? TimePoint::max() : from_local(l, Seconds(0));
  }

  // Walk the zone's constant-offset periods; within one, wall time maps 1:1 to UTC.
  TimePoint s = s0;
  while (true) {
    date::sys_info info = zone_info(zone, std::chrono::floor<Seconds>(s));
    const Seconds off = info.offset;
    const TimePoint period_end = to_timepoint(info.end);
    LocalMinutes l = next_local(*this, to_local(s, off), last_year);
    if (l == LocalMinutes::max()) return TimePoint::max();
    const TimePoint c = from_local(l, off);
    if (c < period_end) {
      if (fixed_time_ && info.begin > date::sys_days(date::year(1800) / 1 / 1)) {
        // After a fall-back the wall times [begin+off, begin+prev_off) come round again;
        // a fixed-time schedule fires only at their first pass.
        date::sys_info prev = zone_info(zone, info.begin - Seconds(1));
        if (prev.offset > off &&
            c < TimePoint((info.begin + (prev.offset - off)).time_since_epoch())) {
          s = c + Micro(1);
          continue;
        }
      }
      return c;
    }
    if (period_end == TimePoint::max()) return TimePoint::max();
    if (fixed_time_) {
      // A spring-forward skips the wall times [end+off, end+next_off); a fixed-time
      // schedule whose wall time lies there fires at the first instant after the gap.
      date::sys_info nxt = zone_info(zone, info.end);
      if (nxt.offset > off) {
        LocalMinutes gap_from = to_local(period_end, off);
        LocalMinutes in_gap = next_local(*this, gap_from, last_year);
        auto gap_to = date::local_seconds((info.end + nxt.offset).time_since_epoch());
        if (in_gap != LocalMinutes::max() && in_gap < gap_to) return period_end;
      }
    }
    s = period_end;
  }
}

}  // namespace drover::cron
