#include "common/time.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace drover {
namespace {

std::string frac_suffix(long long us) {
  if (us == 0) return "";
  char buf[16];
  std::snprintf(buf, sizeof buf, ".%06lld", us);
  return buf;
}

bool read_int(std::string_view s, size_t& pos, size_t digits, int& out) {
  if (pos + digits > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < digits; ++i) {
    char c = s[pos + i];
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  pos += digits;
  out = v;
  return true;
}

// ---------------------------------------------------------------------------------------
// POSIX TZ rules (RFC 8536 section 3.3, POSIX.1-2017 section 8.3), for the years after the
// last transition a TZif file lists.

using Secs = std::chrono::seconds;

struct PosixDate {
  enum class Kind { Julian1, Julian0, MonthWeekDay } kind = Kind::MonthWeekDay;
  int n = 0;              // Jn: 1..365; n: 0..365
  int month = 0;          // Mm.w.d
  int week = 0;           // 1..5, 5 = the last
  int weekday = 0;        // 0..6, Sunday = 0
  long long time = 7200;  // seconds after local midnight; may be negative or past 24h
};

struct PosixTz {
  std::string std_name, dst_name;
  long long std_off = 0;  // UTC offset, seconds east of Greenwich
  long long dst_off = 0;
  bool has_dst = false;
  PosixDate start, end;
};

class PosixParser {
 public:
  explicit PosixParser(std::string_view s) : s_(s) {}

  Result<PosixTz> parse() {
    PosixTz tz;
    if (!name(tz.std_name)) return fail("expected a zone abbreviation");
    long long off = 0;
    if (!offset(off, 24)) return fail("expected a UTC offset after '" + tz.std_name + "'");
    tz.std_off = -off;  // POSIX counts west as positive
    if (p_ == s_.size()) return tz;
    if (!name(tz.dst_name)) return fail("expected a daylight-saving abbreviation");
    tz.has_dst = true;
    tz.dst_off = tz.std_off + 3600;
    if (p_ < s_.size() && s_[p_] != ',') {
      if (!offset(off, 24)) return fail("bad daylight-saving offset");
      tz.dst_off = -off;
    }
    // A TZif footer with daylight saving always carries its rule (RFC 8536 3.3.1).
    if (p_ == s_.size()) return fail("daylight saving without a rule");
    if (s_[p_++] != ',' || !date(tz.start)) return fail("bad start rule");
    if (p_ >= s_.size() || s_[p_++] != ',' || !date(tz.end)) return fail("bad end rule");
    if (p_ != s_.size()) return fail("unexpected text");
    return tz;
  }

 private:
  Result<PosixTz> fail(const std::string& what) {
    return make_error("invalid POSIX TZ rule '" + std::string(s_) + "': " + what + " at position " +
                          std::to_string(p_ + 1),
                      Errc::Invalid);
  }
  bool name(std::string& out) {
    size_t b = p_;
    if (p_ < s_.size() && s_[p_] == '<') {
      size_t e = s_.find('>', p_ + 1);
      if (e == std::string_view::npos || e == p_ + 1) return false;
      for (size_t i = p_ + 1; i < e; ++i) {
        char c = s_[i];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-') return false;
      }
      out = std::string(s_.substr(p_ + 1, e - p_ - 1));
      p_ = e + 1;
      return true;
    }
    while (p_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[p_]))) ++p_;
    if (p_ - b < 3) {
      p_ = b;
      return false;
    }
    out = std::string(s_.substr(b, p_ - b));
    return true;
  }
  bool number(long long& out, int max_digits) {
    size_t b = p_;
    long long v = 0;
    while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_])) &&
           p_ - b < static_cast<size_t>(max_digits))
      v = v * 10 + (s_[p_++] - '0');
    out = v;
    return p_ > b;
  }
  // [+-]hh[:mm[:ss]] in seconds; hours up to max_hours.
  bool offset(long long& out, long long max_hours) {
    long long sign = 1;
    if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) sign = s_[p_++] == '-' ? -1 : 1;
    long long h = 0, m = 0, sec = 0;
    if (!number(h, 3) || h > max_hours) return false;
    if (p_ < s_.size() && s_[p_] == ':') {
      ++p_;
      if (!number(m, 2) || m > 59) return false;
      if (p_ < s_.size() && s_[p_] == ':') {
        ++p_;
        if (!number(sec, 2) || sec > 59) return false;
      }
    }
    out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool date(PosixDate& d) {
    long long v = 0;
    if (p_ < s_.size() && s_[p_] == 'J') {
      ++p_;
      d.kind = PosixDate::Kind::Julian1;
      if (!number(v, 3) || v < 1 || v > 365) return false;
      d.n = static_cast<int>(v);
    } else if (p_ < s_.size() && s_[p_] == 'M') {
      ++p_;
      d.kind = PosixDate::Kind::MonthWeekDay;
      long long w = 0, wd = 0;
      if (!number(v, 2) || v < 1 || v > 12) return false;
      if (p_ >= s_.size() || s_[p_++] != '.' || !number(w, 1) || w < 1 || w > 5) return false;
      if (p_ >= s_.size() || s_[p_++] != '.' || !number(wd, 1) || wd > 6) return false;
      d.month = static_cast<int>(v);
      d.week = static_cast<int>(w);
      d.weekday = static_cast<int>(wd);
    } else {
      d.kind = PosixDate::Kind::Julian0;
      if (!number(v, 3) || v > 365) return false;
      d.n = static_cast<int>(v);
    }
    d.time = 7200;
    if (p_ < s_.size() && s_[p_] == '/') {
      ++p_;
      if (!offset(d.time, 167)) return false;
    }
    return true;
  }

  std::string_view s_;
  size_t p_ = 0;
};

// Local midnight of the rule's day in year y, as seconds since the epoch (local time).
long long rule_day(const PosixDate& d, int y) {
  using date::days;
  const date::year yr(y);
  const date::sys_days jan1 = date::sys_days(yr / 1 / 1);
  date::sys_days day = jan1;
  switch (d.kind) {
    case PosixDate::Kind::Julian1:  // 1..365, February 29 never counted
      day = jan1 + days(d.n - 1 + (yr.is_leap() && d.n >= 60 ? 1 : 0));
      break;
    case PosixDate::Kind::Julian0:  // 0..365, February 29 counted
      day = jan1 + days(d.n);
      break;
    case PosixDate::Kind::MonthWeekDay: {
      const date::sys_days first = date::sys_days(yr / date::month(d.month) / 1);
      const int wd1 = static_cast<int>(date::weekday(first).c_encoding());
      int dom = 1 + (d.weekday - wd1 + 7) % 7 + 7 * (d.week - 1);
      const int last =
          static_cast<int>(static_cast<unsigned>((yr / date::month(d.month) / date::last).day()));
      while (dom > last) dom -= 7;
      day = first + days(dom - 1);
      break;
    }
  }
  return std::chrono::duration_cast<Secs>(day.time_since_epoch()).count();
}

date::sys_info make_info(const PosixTz& tz, bool dst, long long begin, long long end) {
  date::sys_info i;
  i.begin = date::sys_seconds(Secs(begin));
  i.end = date::sys_seconds(Secs(end));
  i.offset = Secs(dst ? tz.dst_off : tz.std_off);
  i.save =
      std::chrono::duration_cast<std::chrono::minutes>(Secs(dst ? tz.dst_off - tz.std_off : 0));
  if (dst && i.save.count() == 0) i.save = std::chrono::minutes(1);  // still daylight time
  i.abbrev = dst ? tz.dst_name : tz.std_name;
  return i;
}

date::sys_info rule_info(const PosixTz& tz, date::sys_seconds t) {
  const long long ts = t.time_since_epoch().count();
  constexpr long long kFarPast = -(1LL << 40), kFarFuture = 1LL << 40;
  if (!tz.has_dst) return make_info(tz, false, kFarPast, kFarFuture);
  const int y = static_cast<int>(date::year_month_day(std::chrono::floor<date::days>(t)).year());
  // (instant, daylight-saving after it); an end sorts before a start at the same instant,
  // so a DST-all-year rule (end of one year = start of the next) never leaves DST.
  std::vector<std::pair<long long, bool>> tr;
  for (int yy = y - 1; yy <= y + 2; ++yy) {
    tr.emplace_back(rule_day(tz.start, yy) + tz.start.time - tz.std_off, true);
    tr.emplace_back(rule_day(tz.end, yy) + tz.end.time - tz.dst_off, false);
  }
  std::stable_sort(tr.begin(), tr.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : (!a.second && b.second);
  });
  // Collapse: one state per instant (the last), then only real changes.
  std::vector<std::pair<long long, bool>> ch;
  for (const auto& e : tr) {
    if (!ch.empty() && ch.back().first == e.first) ch.pop_back();
    if (!ch.empty() && ch.back().second == e.second) continue;
    ch.push_back(e);
  }
  size_t i = 0;
  while (i < ch.size() && ch[i].first <= ts) ++i;
  if (i == 0) return make_info(tz, !ch.front().second, kFarPast, ch.front().first);
  const long long begin = ch[i - 1].first;
  const long long end = i < ch.size()
                            ? ch[i].first
                            : std::chrono::duration_cast<Secs>(
                                  date::sys_days(date::year(y + 3) / 1 / 1).time_since_epoch())
                                  .count();
  return make_info(tz, ch[i - 1].second, begin, end);
}

uint32_t be32(const std::string& b, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

// The footer of a TZif v2+ file: the POSIX TZ string between the newlines after the
// 64-bit data block. Empty when the file is v1, short, or has none.
std::string tzif_footer(const std::string& b) {
  auto block = [&](size_t hdr, size_t time_size, size_t& end) {
    if (hdr + 44 > b.size() || b.compare(hdr, 4, "TZif") != 0) return false;
    const uint64_t isut = be32(b, hdr + 20), isstd = be32(b, hdr + 24), leap = be32(b, hdr + 28),
                   timecnt = be32(b, hdr + 32), typecnt = be32(b, hdr + 36),
                   charcnt = be32(b, hdr + 40);
    end = hdr + 44 + timecnt * (time_size + 1) + typecnt * 6 + charcnt + leap * (time_size + 4) +
          isstd + isut;
    return end <= b.size();
  };
  size_t v1_end = 0, v2_end = 0;
  if (!block(0, 4, v1_end) || b[4] < '2' || !block(v1_end, 8, v2_end)) return "";
  if (v2_end >= b.size() || b[v2_end] != '\n') return "";
  size_t nl = b.find('\n', v2_end + 1);
  if (nl == std::string::npos) return "";
  return b.substr(v2_end + 1, nl - v2_end - 1);
}

// The zone's footer rule, read once per zone; nullopt when there is none usable.
const std::optional<PosixTz>& footer_rule(const date::time_zone* zone) {
  static std::mutex mu;
  static std::map<const date::time_zone*, std::optional<PosixTz>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(zone);
  if (it != cache.end()) return it->second;
  std::optional<PosixTz> rule;
  std::ifstream in("/usr/share/zoneinfo/" + std::string(zone->name()), std::ios::binary);
  if (in) {
    std::string bytes(1 << 20, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<size_t>(in.gcount()));
    std::string footer = tzif_footer(bytes);
    if (!footer.empty()) {
      auto parsed = PosixParser(footer).parse();
      if (parsed.ok()) rule = *parsed;
    }
  }
  return cache.emplace(zone, std::move(rule)).first->second;  // map nodes never move
}

}  // namespace

std::string format_iso_utc(TimePoint t) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  long long us = (t - secs).count();
  return date::format("%Y-%m-%dT%H:%M:%S", secs) + frac_suffix(us) + "Z";
}

std::string format_iso_zoned(TimePoint t, const date::time_zone* zone) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  long long us = (t - secs).count();
  auto info = zone_info(zone, secs);
  auto local = secs + info.offset;
  long off = static_cast<long>(info.offset.count());
  char sign = off < 0 ? '-' : '+';
  if (off < 0) off = -off;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%c%02ld:%02ld", sign, off / 3600, (off / 60) % 60);
  return date::format("%Y-%m-%dT%H:%M:%S", date::sys_seconds(local.time_since_epoch())) +
         frac_suffix(us) + buf;
}

Result<TimePoint> parse_iso(std::string_view s) {
  auto bad = [&] { return make_error("invalid ISO 8601 time '" + std::string(s) + "'"); };
  size_t p = 0;
  int y, mo, d, h = 0, mi = 0, se = 0;
  if (!read_int(s, p, 4, y) || p >= s.size() || s[p++] != '-' || !read_int(s, p, 2, mo) ||
      p >= s.size() || s[p++] != '-' || !read_int(s, p, 2, d))
    return bad();
  auto ymd = date::year(y) / mo / d;
  if (!ymd.ok()) return bad();
  if (p == s.size()) return TimePoint(date::sys_days(ymd).time_since_epoch());
  if (s[p] != 'T' && s[p] != ' ') return bad();
  ++p;
  if (!read_int(s, p, 2, h) || p >= s.size() || s[p++] != ':' || !read_int(s, p, 2, mi))
    return bad();
  long long us = 0;
  if (p < s.size() && s[p] == ':') {
    ++p;
    if (!read_int(s, p, 2, se)) return bad();
    if (p < s.size() && s[p] == '.') {
      ++p;
      int n = 0;
      while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) {
        if (n < 6) {
          us = us * 10 + (s[p] - '0');
          ++n;
        }
        ++p;
      }
      if (n == 0) return bad();
      while (n++ < 6) us *= 10;
    }
  }
  if (h > 23 || mi > 59 || se > 60) return bad();
  long offset_s = 0;
  if (p >= s.size()) return make_error("time '" + std::string(s) + "' needs a UTC offset or Z");
  if (s[p] == 'Z' || s[p] == 'z') {
    ++p;
  } else if (s[p] == '+' || s[p] == '-') {
    int sign = s[p] == '-' ? -1 : 1;
    ++p;
    int oh, om = 0;
    if (!read_int(s, p, 2, oh)) return bad();
    if (p < s.size() && s[p] == ':') ++p;
    if (p < s.size() && !read_int(s, p, 2, om)) return bad();
    if (oh > 18 || om > 59) return bad();
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return bad();
  }
  if (p != s.size()) return bad();
  auto t = date::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) +
           std::chrono::seconds(se) - std::chrono::seconds(offset_s);
  return TimePoint(std::chrono::duration_cast<Micros>(t.time_since_epoch()) + Micros(us));
}

Result<const date::time_zone*> find_zone(std::string_view name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return make_error("unknown time zone '" + std::string(name) + "'");
  }
}

date::sys_info zone_info(const date::time_zone* zone, std::chrono::sys_seconds t) {
  if (zone == nullptr) {
    date::sys_info utc;
    utc.begin = date::sys_days(date::year::min() / 1 / 1);
    utc.end = date::sys_days(date::year::max() / 12 / 31);
    utc.offset = Secs(0);
    utc.save = std::chrono::minutes(0);
    utc.abbrev = "UTC";
    return utc;
  }
  date::sys_info raw = zone->get_info(t);
  // A period that never ends is the last the file lists; the footer rule takes over.
  static const date::sys_seconds kFar = date::sys_days(date::year(9000) / 1 / 1);
  if (raw.end < kFar) return raw;
  const std::optional<PosixTz>& rule = footer_rule(zone);
  if (!rule || !rule->has_dst) return raw;
  date::sys_info r = rule_info(*rule, t);
  if (r.begin < raw.begin) r.begin = raw.begin;
  return r;
}

Result<date::sys_info> posix_tz_info(std::string_view tz, std::chrono::sys_seconds t) {
  auto parsed = PosixParser(tz).parse();
  if (!parsed.ok()) return parsed.error();
  return rule_info(*parsed, t);
}

Result<Micros> parse_duration(std::string_view s) {
  auto bad = [&] {
    return make_error("invalid duration '" + std::string(s) +
                      "' (use a number and a unit: ms, s, m, h, d; e.g. 30s, 1h30m)");
  };
  if (s.empty()) return bad();
  long long total = 0;
  size_t p = 0;
  while (p < s.size()) {
    size_t start = p;
    while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) ++p;
    if (p == start || p - start > 12) return bad();
    long long n = 0;
    std::from_chars(s.data() + start, s.data() + p, n);
    long long unit;
    if (s.substr(p, 2) == "ms") {
      unit = 1000;
      p += 2;
    } else if (p < s.size() && s[p] == 's') {
      unit = 1000000;
      ++p;
    } else if (p < s.size() && s[p] == 'm') {
      unit = 60LL * 1000000;
      ++p;
    } else if (p < s.size() && s[p] == 'h') {
      unit = 3600LL * 1000000;
      ++p;
    } else if (p < s.size() && s[p] == 'd') {
      unit = 86400LL * 1000000;
      ++p;
    } else
      return bad();
    // Anything past ~292,000 years overflows microseconds: refuse it.
    if (n > (std::numeric_limits<long long>::max() - total) / unit) return bad();
    total += n * unit;
  }
  return Micros(total);
}

std::string format_duration(Micros d) {
  long long us = d.count();
  if (us == 0) return "0s";
  if (us % 1000000 != 0 && us < 1000000) return std::to_string(us / 1000) + "ms";
  long long s = us / 1000000;
  std::string out;
  if (s >= 86400 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s / 3600) out += std::to_string(s / 3600) + "h";
  if ((s / 60) % 60) out += std::to_string((s / 60) % 60) + "m";
  if (s % 60 || out.empty()) out += std::to_string(s % 60) + "s";
  return out;
}

}  // namespace drover
