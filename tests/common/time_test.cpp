// ISO 8601 parsing and formatting, zones (with the POSIX TZ rule of a zone file applied
// after its last listed transition), durations. Expected offsets after 2037 come from Python's
// zoneinfo, which applies the TZif footer independently of this code.
#include "common/time.hpp"

#include <date/tz.h>
#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(TimeTest, ParsesOffsetsAndZAndFormatsBack) {
  auto t = parse_iso("2026-03-29T03:00:00+03:00");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(format_iso_utc(*t), "2026-03-29T00:00:00Z");
  EXPECT_EQ(format_iso_zoned(*t, find_zone("Europe/Moscow").value()), "2026-03-29T03:00:00+03:00");
  EXPECT_EQ(format_iso_utc(parse_iso("2026-01-02T03:04:05.25Z").value()),
            "2026-01-02T03:04:05.250000Z");
  EXPECT_EQ(format_iso_utc(parse_iso("2026-01-02").value()), "2026-01-02T00:00:00Z");
  EXPECT_EQ(format_iso_zoned(parse_iso("2026-04-04T14:00:00Z").value(),
                             find_zone("Australia/Lord_Howe").value()),
            "2026-04-05T01:00:00+11:00");
}

TEST(TimeTest, RejectsTimesWithoutAnOffsetAndGarbage) {
  EXPECT_EQ(parse_iso("2026-03-29T03:00:00").message(),
            "time '2026-03-29T03:00:00' needs a UTC offset or Z");
  EXPECT_EQ(parse_iso("2026-02-30T00:00Z").message(), "invalid ISO 8601 time '2026-02-30T00:00Z'");
  EXPECT_FALSE(parse_iso("yesterday").ok());
  EXPECT_FALSE(find_zone("Mars/Olympus").ok());
}

TEST(TimeTest, DurationsCombineUnitsAndRejectNonsense) {
  EXPECT_EQ(parse_duration("1h30m").value(), std::chrono::minutes(90));
  EXPECT_EQ(parse_duration("500ms").value(), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_duration("2d").value(), std::chrono::hours(48));
  EXPECT_EQ(parse_duration("2x").message(),
            "invalid duration '2x' (use a number and a unit: ms, s, m, h, d; e.g. 30s, 1h30m)");
  EXPECT_FALSE(parse_duration("").ok());
  EXPECT_FALSE(parse_duration("-5s").ok());
  EXPECT_FALSE(parse_duration("999999999999d").ok());  // would overflow
  EXPECT_EQ(format_duration(std::chrono::minutes(90)), "1h30m");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(std::chrono::hours(48)), "2d");
}

// "2038-07-01T16:00:00Z" shown in `zone`.
std::string in_zone(std::string_view utc, std::string_view zone) {
  return format_iso_zoned(parse_iso(utc).value(), find_zone(zone).value());
}

std::chrono::sys_seconds secs(std::string_view iso) {
  return std::chrono::floor<std::chrono::seconds>(parse_iso(iso).value());
}

std::string period(const date::sys_info& i) {
  return format_iso_utc(TimePoint(i.begin.time_since_epoch())) + " .. " +
         format_iso_utc(TimePoint(i.end.time_since_epoch())) + " " + i.abbrev + " " +
         std::to_string(i.offset.count()) + "s" + (i.save.count() != 0 ? " dst" : "");
}

TEST(TimeTest, NewYorkKeepsDaylightSavingAfter2037) {
  // The zone file lists transitions up to 2037-11-01; its footer says EST5EDT,M3.2.0,M11.1.0.
  EXPECT_EQ(in_zone("2037-07-01T16:00:00Z", "America/New_York"), "2037-07-01T12:00:00-04:00");
  EXPECT_EQ(in_zone("2038-07-01T16:00:00Z", "America/New_York"), "2038-07-01T12:00:00-04:00");
  EXPECT_EQ(in_zone("2038-01-01T17:00:00Z", "America/New_York"), "2038-01-01T12:00:00-05:00");
  EXPECT_EQ(in_zone("2050-07-01T16:00:00Z", "America/New_York"), "2050-07-01T12:00:00-04:00");
  EXPECT_EQ(in_zone("2050-12-01T17:00:00Z", "America/New_York"), "2050-12-01T12:00:00-05:00");
  // Around the 2040 transitions (2040-03-11 07:00 UT and 2040-11-04 06:00 UT).
  EXPECT_EQ(in_zone("2040-03-11T06:59:59Z", "America/New_York"), "2040-03-11T01:59:59-05:00");
  EXPECT_EQ(in_zone("2040-03-11T07:00:00Z", "America/New_York"), "2040-03-11T03:00:00-04:00");
  EXPECT_EQ(in_zone("2040-11-04T05:59:59Z", "America/New_York"), "2040-11-04T01:59:59-04:00");
  EXPECT_EQ(in_zone("2040-11-04T06:00:00Z", "America/New_York"), "2040-11-04T01:00:00-05:00");
}

TEST(TimeTest, ZoneInfoGivesWholePeriodsAfterTheLastListedTransition) {
  const date::time_zone* ny = find_zone("America/New_York").value();
  // The last listed period starts at the listed transition and ends at the rule's next one.
  EXPECT_EQ(period(zone_info(ny, secs("2037-12-01T00:00:00Z"))),
            "2037-11-01T06:00:00Z .. 2038-03-14T07:00:00Z EST -18000s");
  EXPECT_EQ(period(zone_info(ny, secs("2040-07-01T00:00:00Z"))),
            "2040-03-11T07:00:00Z .. 2040-11-04T06:00:00Z EDT -14400s dst");
  // Before 2037 the listed data is used as it is.
  EXPECT_EQ(period(zone_info(ny, secs("2026-07-01T00:00:00Z"))),
            "2026-03-08T07:00:00Z .. 2026-11-01T06:00:00Z EDT -14400s dst");
  EXPECT_EQ(zone_info(nullptr, secs("2040-07-01T00:00:00Z")).offset.count(), 0);
}

TEST(TimeTest, SouthernHemisphereAndZonesWithoutDstAfter2037) {
  // Australia/Sydney: AEST-10AEDT,M10.1.0,M4.1.0/3 (2040: ends 03-31 16:00 UT, starts 10-06
  // 16:00 UT).
  EXPECT_EQ(in_zone("2040-01-15T01:00:00Z", "Australia/Sydney"), "2040-01-15T12:00:00+11:00");
  EXPECT_EQ(in_zone("2040-03-31T15:59:59Z", "Australia/Sydney"), "2040-04-01T02:59:59+11:00");
  EXPECT_EQ(in_zone("2040-03-31T16:00:00Z", "Australia/Sydney"), "2040-04-01T02:00:00+10:00");
  EXPECT_EQ(in_zone("2040-07-15T02:00:00Z", "Australia/Sydney"), "2040-07-15T12:00:00+10:00");
  EXPECT_EQ(in_zone("2040-10-06T16:00:00Z", "Australia/Sydney"), "2040-10-07T03:00:00+11:00");
  const date::time_zone* syd = find_zone("Australia/Sydney").value();
  EXPECT_EQ(period(zone_info(syd, secs("2040-07-15T00:00:00Z"))),
            "2040-03-31T16:00:00Z .. 2040-10-06T16:00:00Z AEST 36000s");
  // Asia/Tokyo (JST-9) and UTC have no rule to apply.
  EXPECT_EQ(in_zone("2040-07-01T03:00:00Z", "Asia/Tokyo"), "2040-07-01T12:00:00+09:00");
  EXPECT_EQ(in_zone("2040-01-01T03:00:00Z", "Asia/Tokyo"), "2040-01-01T12:00:00+09:00");
  EXPECT_EQ(in_zone("2040-07-01T12:00:00Z", "UTC"), "2040-07-01T12:00:00+00:00");
  // Half-hour DST (Australia/Lord_Howe: <+1030>-10:30<+11>-11,M10.1.0,M4.1.0).
  EXPECT_EQ(in_zone("2040-03-31T15:00:00Z", "Australia/Lord_Howe"), "2040-04-01T01:30:00+10:30");
  EXPECT_EQ(in_zone("2040-10-06T15:30:00Z", "Australia/Lord_Howe"), "2040-10-07T02:30:00+11:00");
}

TEST(TimeTest, RulesWithNegativeAndExtendedHoursAndNegativeSave) {
  // America/Nuuk <-02>2<-01>,M3.5.0/-1,M10.5.0/0: switches at 23:00 the evening before.
  EXPECT_EQ(in_zone("2040-03-25T00:59:59Z", "America/Nuuk"), "2040-03-24T22:59:59-02:00");
  EXPECT_EQ(in_zone("2040-03-25T01:00:00Z", "America/Nuuk"), "2040-03-25T00:00:00-01:00");
  // Asia/Jerusalem IST-2IDT,M3.4.4/26,M10.5.0: "Thursday 26:00" is Friday 02:00.
  EXPECT_EQ(in_zone("2040-03-23T00:00:00Z", "Asia/Jerusalem"), "2040-03-23T03:00:00+03:00");
  EXPECT_EQ(in_zone("2040-10-27T23:00:00Z", "Asia/Jerusalem"), "2040-10-28T01:00:00+02:00");
  // America/Santiago <-04>4<-03>,M9.1.6/24,M4.1.6/24 (DST across the new year).
  EXPECT_EQ(in_zone("2040-04-08T03:00:00Z", "America/Santiago"), "2040-04-07T23:00:00-04:00");
  EXPECT_EQ(in_zone("2040-09-02T04:00:00Z", "America/Santiago"), "2040-09-02T01:00:00-03:00");
  // Europe/Dublin IST-1GMT0,M10.5.0,M3.5.0/1: "daylight saving" is winter, one hour back.
  EXPECT_EQ(in_zone("2040-01-15T12:00:00Z", "Europe/Dublin"), "2040-01-15T12:00:00+00:00");
  EXPECT_EQ(in_zone("2040-07-15T12:00:00Z", "Europe/Dublin"), "2040-07-15T13:00:00+01:00");
}

TEST(TimeTest, PosixRuleDateForms) {
  auto info = [](std::string_view tz, std::string_view at) {
    auto r = posix_tz_info(tz, secs(at));
    return r.ok() ? period(*r) : r.message();
  };
  // Jn never counts February 29: J60 is March 1 even in a leap year; zero-based 59 is Feb 29.
  EXPECT_EQ(info("AAA-1BBB,J60,J300", "2040-06-01T00:00:00Z"),
            "2040-03-01T01:00:00Z .. 2040-10-27T00:00:00Z BBB 7200s dst");
  EXPECT_EQ(info("AAA-1BBB,59,299", "2040-06-01T00:00:00Z"),
            "2040-02-29T01:00:00Z .. 2040-10-26T00:00:00Z BBB 7200s dst");
  EXPECT_EQ(info("AAA-1BBB,J60,J300", "2041-06-01T00:00:00Z"),
            "2041-03-01T01:00:00Z .. 2041-10-27T00:00:00Z BBB 7200s dst");
  // Week 5 means the last such weekday; an explicit DST offset and hh:mm:ss times.
  EXPECT_EQ(info("<+0330>-3:30<+0430>-4:30,M3.5.0/0:30:15,M9.5.6", "2040-06-01T00:00:00Z"),
            "2040-03-24T21:00:15Z .. 2040-09-28T21:30:00Z +0430 16200s dst");
  auto kind = [](std::string_view tz, std::string_view at) {
    auto r = posix_tz_info(tz, secs(at));
    return r.ok() ? r->abbrev + " " + std::to_string(r->offset.count()) + "s" : r.message();
  };
  // Daylight saving all year (RFC 8536 3.3.1): never leaves EDT.
  EXPECT_EQ(kind("EST5EDT,0/0,J365/25", "2040-01-01T04:30:00Z"), "EDT -14400s");
  EXPECT_EQ(kind("EST5EDT,0/0,J365/25", "2040-01-01T05:30:00Z"), "EDT -14400s");
  EXPECT_EQ(kind("EST5EDT,0/0,J365/25", "2040-12-31T12:00:00Z"), "EDT -14400s");
  EXPECT_EQ(kind("JST-9", "2040-06-01T00:00:00Z"), "JST 32400s");
}

TEST(TimeTest, MalformedPosixRulesAreErrors) {
  auto err = [](std::string_view tz) {
    auto r = posix_tz_info(tz, secs("2040-06-01T00:00:00Z"));
    return r.ok() ? std::string("parsed OK") : r.message();
  };
  EXPECT_EQ(err("5EST"),
            "invalid POSIX TZ rule '5EST': expected a zone abbreviation at position 1");
  EXPECT_EQ(err("EST"),
            "invalid POSIX TZ rule 'EST': expected a UTC offset after 'EST' at position 4");
  EXPECT_EQ(err("EST5EDT"),
            "invalid POSIX TZ rule 'EST5EDT': daylight saving without a rule at position 8");
  EXPECT_EQ(err("EST5EDT,M13.1.0,M11.1.0"),
            "invalid POSIX TZ rule 'EST5EDT,M13.1.0,M11.1.0': bad start rule at position 12");
  EXPECT_EQ(err("EST5EDT,M3.2.0,M11.1.0/168"),
            "invalid POSIX TZ rule 'EST5EDT,M3.2.0,M11.1.0/168': bad end rule at position 27");
  EXPECT_EQ(err("EST5EDT,M3.2.0,M11.1.0x"),
            "invalid POSIX TZ rule 'EST5EDT,M3.2.0,M11.1.0x': unexpected text at position 23");
}

}  // namespace
}  // namespace drover
