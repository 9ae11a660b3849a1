#include "common/time.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>

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

}  // namespace

std::string format_iso_utc(TimePoint t) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  long long us = (t - secs).count();
  return date::format("%Y-%m-%dT%H:%M:%S", secs) + frac_suffix(us) + "Z";
}

std::string format_iso_zoned(TimePoint t, const date::time_zone* zone) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  long long us = (t - secs).count();
  auto info = zone->get_info(secs);
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
        if (n < 6) { us = us * 10 + (s[p] - '0'); ++n; }
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
    if (s.substr(p, 2) == "ms") { unit = 1000; p += 2; }
    else if (p < s.size() && s[p] == 's') { unit = 1000000; ++p; }
    else if (p < s.size() && s[p] == 'm') { unit = 60LL * 1000000; ++p; }
    else if (p < s.size() && s[p] == 'h') { unit = 3600LL * 1000000; ++p; }
    else if (p < s.size() && s[p] == 'd') { unit = 86400LL * 1000000; ++p; }
    else return bad();
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
