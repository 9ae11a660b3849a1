// Tests for scheduler/cron.hpp. Expected fire times come from the tz database as `zdump -v`
// prints it (transitions quoted beside each test), not from the code under test.
#include "scheduler/cron.hpp"

#include <date/tz.h>
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "common/time.hpp"

namespace drover::cron {
namespace {

std::shared_ptr<const Schedule> parse_ok(std::string_view expr) {
  auto r = Schedule::parse(expr);
  EXPECT_TRUE(r.ok()) << expr << ": " << (r.ok() ? "" : r.message());
  return r.ok() ? *r : nullptr;
}

// The error text of parsing `expr`, with the reported column appended as "@N".
std::string parse_error(std::string_view expr) {
  int col = -1;
  auto r = Schedule::parse(expr, &col);
  if (r.ok()) return "parsed OK";
  EXPECT_EQ(r.error().code, Errc::Invalid);
  return r.message() + " @" + std::to_string(col);
}

TimePoint at(std::string_view iso) {
  auto t = parse_iso(iso);
  EXPECT_TRUE(t.ok()) << iso;
  return t.ok() ? *t : TimePoint{};
}

const date::time_zone* zone(std::string_view name) {
  auto z = find_zone(name);
  EXPECT_TRUE(z.ok()) << name;
  return z.ok() ? *z : nullptr;
}

// The next `count` fire times of `expr` after `from`, formatted in `tz`.
std::vector<std::string> fires(std::string_view expr, std::string_view tz, std::string_view from,
                               int count) {
  std::vector<std::string> out;
  auto s = parse_ok(expr);
  if (!s) return out;
  const date::time_zone* z = zone(tz);
  TimePoint t = at(from);
  for (int i = 0; i < count; ++i) {
    t = s->next(t, z);
    if (t == TimePoint::max()) {
      out.push_back("never");
      break;
    }
    out.push_back(format_iso_zoned(t, z));
  }
  return out;
}

using V = std::vector<std::string>;

// ---- Parsing errors: exact text and position.

TEST(CronTest, OutOfRangeValueNamesFieldAndPosition) {
  EXPECT_EQ(parse_error("0 25 * * *"),
            "invalid cron expression '0 25 * * *': hour field (position 3): 25 is out of range "
            "0-23 @3");
  EXPECT_EQ(parse_error("0 1,2,99 * * *"),
            "invalid cron expression '0 1,2,99 * * *': hour field (position 7): 99 is out of "
            "range 0-23 @7");
  EXPECT_EQ(parse_error("60 * * * *"),
            "invalid cron expression '60 * * * *': minute field (position 1): 60 is out of range "
            "0-59 @1");
  EXPECT_EQ(parse_error("0 0 0 * *"),
            "invalid cron expression '0 0 0 * *': day-of-month field (position 5): 0 is out of "
            "range 1-31 @5");
  EXPECT_EQ(parse_error("0 0 * 13 *"),
            "invalid cron expression '0 0 * 13 *': month field (position 7): 13 is out of range "
            "1-12 @7");
  EXPECT_EQ(parse_error("0 0 * * 8"),
            "invalid cron expression '0 0 * * 8': day-of-week field (position 9): 8 is out of "
            "range 0-7 @9");
  EXPECT_EQ(parse_error("0 0 1-32 * *"),
            "invalid cron expression '0 0 1-32 * *': day-of-month field (position 7): 32 is out "
            "of range 1-31 @7");
}

TEST(CronTest, EmptyExpressionIsAnError) {
  EXPECT_EQ(parse_error(""), "invalid cron expression '': empty expression @1");
  EXPECT_EQ(parse_error("   "), "invalid cron expression '   ': empty expression @1");
}

TEST(CronTest, WrongFieldCountIsAnError) {
  EXPECT_EQ(parse_error("0 0 * *"),
            "invalid cron expression '0 0 * *': expected 5 fields (minute hour day-of-month "
            "month day-of-week), got 4 @8");
  EXPECT_EQ(parse_error("0 0 * * * 2026"),
            "invalid cron expression '0 0 * * * 2026': expected 5 fields (minute hour "
            "day-of-month month day-of-week), got 6 @11");
}

TEST(CronTest, ZeroStepIsAnError) {
  EXPECT_EQ(parse_error("*/0 * * * *"),
            "invalid cron expression '*/0 * * * *': minute field (position 3): step 0 is "
            "invalid (must be 1 or more) @3");
  EXPECT_EQ(parse_error("0 1-5/ * * *"),
            "invalid cron expression '0 1-5/ * * *': hour field (position 7): missing step "
            "after '/' @7");
  EXPECT_EQ(parse_error("0 */x * * *"),
            "invalid cron expression '0 */x * * *': hour field (position 5): step 'x' is not a "
            "number @5");
}

TEST(CronTest, ReversedRangeIsAnError) {
  EXPECT_EQ(parse_error("0 10-5 * * *"),
            "invalid cron expression '0 10-5 * * *': hour field (position 3): range 10-5 is "
            "reversed (start > end) @3");
  EXPECT_EQ(parse_error("0 0 * * FRI-MON"),
            "invalid cron expression '0 0 * * FRI-MON': day-of-week field (position 9): range "
            "FRI-MON is reversed (start > end) @9");
}

TEST(CronTest, UnknownNameIsAnError) {
  EXPECT_EQ(parse_error("0 0 * FOO *"),
            "invalid cron expression '0 0 * FOO *': month field (position 7): unknown month "
            "name 'FOO' (expected JAN-DEC) @7");
  EXPECT_EQ(parse_error("0 0 * MON *"),
            "invalid cron expression '0 0 * MON *': month field (position 7): unknown month "
            "name 'MON' (expected JAN-DEC) @7");
  EXPECT_EQ(parse_error("0 0 * * MON,FUN"),
            "invalid cron expression '0 0 * * MON,FUN': day-of-week field (position 13): "
            "unknown day name 'FUN' (expected SUN-SAT) @13");
  EXPECT_EQ(parse_error("0 0 JAN * *"),
            "invalid cron expression '0 0 JAN * *': day-of-month field (position 5): 'JAN' is "
            "not a number @5");
  EXPECT_EQ(parse_error("@fortnightly"),
            "invalid cron expression '@fortnightly': unknown macro '@fortnightly' (expected "
            "@hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually) @1");
  EXPECT_EQ(parse_error("@daily 5"),
            "invalid cron expression '@daily 5': unexpected '5' after @daily @8");
}

TEST(CronTest, MalformedListsAndNumbersAreErrors) {
  EXPECT_EQ(parse_error("1,,2 * * * *"),
            "invalid cron expression '1,,2 * * * *': minute field (position 3): empty list "
            "item @3");
  EXPECT_EQ(parse_error("1x * * * *"),
            "invalid cron expression '1x * * * *': minute field (position 1): '1x' is not a "
            "number @1");
  EXPECT_EQ(parse_error("0 1- * * *"),
            "invalid cron expression '0 1- * * *': hour field (position 5): missing value @5");
  EXPECT_EQ(parse_error("99999999999999999999 * * * *"),
            "invalid cron expression '99999999999999999999 * * * *': minute field (position "
            "1): 99999999999999999999 is out of range 0-59 @1");
}

// ---- Parsing: lists, ranges, steps, names, macros.

std::vector<int> bits(const auto& b) {
  std::vector<int> out;
  for (size_t i = 0; i < b.size(); ++i)
    if (b[i]) out.push_back(static_cast<int>(i));
  return out;
}

TEST(CronTest, StepsRangesAndListsExpand) {
  auto s = parse_ok("*/15 1-10/2 5/10 1,6-7 *");
  ASSERT_TRUE(s);
  EXPECT_EQ(bits(s->minutes), (std::vector<int>{0, 15, 30, 45}));
  EXPECT_EQ(bits(s->hours), (std::vector<int>{1, 3, 5, 7, 9}));
  EXPECT_EQ(bits(s->days_of_month), (std::vector<int>{5, 15, 25}));
  EXPECT_EQ(bits(s->months), (std::vector<int>{1, 6, 7}));
  EXPECT_EQ(bits(s->days_of_week), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_TRUE(s->dom_restricted);
  EXPECT_FALSE(s->dow_restricted);
  EXPECT_FALSE(s->fixed_time());
  EXPECT_EQ(s->text(), "*/15 1-10/2 5/10 1,6-7 *");
}

TEST(CronTest, NamesAreCaseInsensitiveAndSevenIsSunday) {
  auto s = parse_ok("0 0 * jan,Mar-MAY mon-Fri");
  ASSERT_TRUE(s);
  EXPECT_EQ(bits(s->months), (std::vector<int>{1, 3, 4, 5}));
  EXPECT_EQ(bits(s->days_of_week), (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(bits(parse_ok("0 0 * * 7")->days_of_week), (std::vector<int>{0}));
  EXPECT_EQ(bits(parse_ok("0 0 * * 5-7")->days_of_week), (std::vector<int>{0, 5, 6}));
  EXPECT_EQ(bits(parse_ok("0 0 * * 1/2")->days_of_week), (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(bits(parse_ok("0 0 * * sat,SUN")->days_of_week), (std::vector<int>{0, 6}));
}

TEST(CronTest, MacrosExpandToTheirExpressions) {
  auto hourly = parse_ok("@hourly");
  EXPECT_EQ(bits(hourly->minutes), (std::vector<int>{0}));
  EXPECT_EQ(hourly->hours.count(), 24u);
  EXPECT_FALSE(hourly->fixed_time());
  for (const char* daily : {"@daily", "@midnight", "@DAILY"}) {
    auto d = parse_ok(daily);
    EXPECT_TRUE(d->fixed_time()) << daily;
    EXPECT_EQ(bits(d->hours), (std::vector<int>{0})) << daily;
    EXPECT_FALSE(d->dom_restricted || d->dow_restricted) << daily;
  }
  auto weekly = parse_ok("@weekly");
  EXPECT_EQ(bits(weekly->days_of_week), (std::vector<int>{0}));
  EXPECT_TRUE(weekly->dow_restricted);
  EXPECT_FALSE(weekly->dom_restricted);
  EXPECT_EQ(bits(parse_ok("@monthly")->days_of_month), (std::vector<int>{1}));
  for (const char* yearly : {"@yearly", "@annually"}) {
    auto y = parse_ok(yearly);
    EXPECT_EQ(bits(y->months), (std::vector<int>{1})) << yearly;
    EXPECT_EQ(bits(y->days_of_month), (std::vector<int>{1})) << yearly;
  }
  EXPECT_EQ(parse_ok("  @weekly ")->text(), "  @weekly ");
}

TEST(CronTest, FixedTimeMeansSingleMinuteAndHour) {
  EXPECT_TRUE(parse_ok("30 1 * * *")->fixed_time());
  EXPECT_TRUE(parse_ok("0 3 * * MON")->fixed_time());
  EXPECT_FALSE(parse_ok("30 * * * *")->fixed_time());
  EXPECT_FALSE(parse_ok("*/30 * * * *")->fixed_time());
  EXPECT_FALSE(parse_ok("0 1,2 * * *")->fixed_time());
}

// ---- next() in UTC.

TEST(CronTest, NextIsStrictlyAfter) {
  EXPECT_EQ(
      fires("*/15 * * * *", "UTC", "2026-01-01T00:00:00Z", 3),
      (V{"2026-01-01T00:15:00+00:00", "2026-01-01T00:30:00+00:00", "2026-01-01T00:45:00+00:00"}));
  EXPECT_EQ(fires("*/15 * * * *", "UTC", "2026-01-01T00:14:59.999999Z", 1),
            (V{"2026-01-01T00:15:00+00:00"}));
  EXPECT_EQ(fires("0 * * * *", "UTC", "2026-12-31T23:00:00Z", 1), (V{"2027-01-01T00:00:00+00:00"}));
}

TEST(CronTest, NullZoneMeansUtc) {
  auto s = parse_ok("0 12 * * *");
  EXPECT_EQ(s->next(at("2026-05-01T12:00:00Z"), nullptr), at("2026-05-02T12:00:00Z"));
}

TEST(CronTest, StepsWalkHoursAndDays) {
  EXPECT_EQ(fires("0 1-10/4 * * *", "UTC", "2026-01-31T06:00:00Z", 4),
            (V{"2026-01-31T09:00:00+00:00", "2026-02-01T01:00:00+00:00",
               "2026-02-01T05:00:00+00:00", "2026-02-01T09:00:00+00:00"}));
  EXPECT_EQ(
      fires("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", 3),
      (V{"2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00"}));
}

TEST(CronTest, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // 2026-01-02, -09, -16 are Fridays; the 13th is a Tuesday.
  EXPECT_EQ(fires("0 12 13 * FRI", "UTC", "2026-01-01T00:00:00Z", 4),
            (V{"2026-01-02T12:00:00+00:00", "2026-01-09T12:00:00+00:00",
               "2026-01-13T12:00:00+00:00", "2026-01-16T12:00:00+00:00"}));
  // Only one restricted: that one alone decides.
  EXPECT_EQ(fires("0 12 * * FRI", "UTC", "2026-01-01T00:00:00Z", 2),
            (V{"2026-01-02T12:00:00+00:00", "2026-01-09T12:00:00+00:00"}));
  EXPECT_EQ(fires("0 12 13 * *", "UTC", "2026-01-01T00:00:00Z", 2),
            (V{"2026-01-13T12:00:00+00:00", "2026-02-13T12:00:00+00:00"}));
}

TEST(CronTest, LeapDayFiresOnlyInLeapYears) {
  EXPECT_EQ(
      fires("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", 3),
      (V{"2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00", "2036-02-29T00:00:00+00:00"}));
  // 2100 is not a leap year: after 2096 comes 2104.
  EXPECT_EQ(fires("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", 1),
            (V{"2104-02-29T00:00:00+00:00"}));
}

TEST(CronTest, LeapDayOrMondayInFebruary) {
  // Feb 29 OR any Monday, in February only. 2026-02-02 and 2027-02-01 are Mondays;
  // 2028-02-28 is a Monday and 2028-02-29 a Tuesday.
  EXPECT_EQ(fires("0 0 29 2 1", "UTC", "2026-01-01T00:00:00Z", 1),
            (V{"2026-02-02T00:00:00+00:00"}));
  EXPECT_EQ(fires("0 0 29 2 1", "UTC", "2026-02-24T00:00:00Z", 1),
            (V{"2027-02-01T00:00:00+00:00"}));
  EXPECT_EQ(
      fires("0 0 29 2 1", "UTC", "2028-02-27T00:00:00Z", 3),
      (V{"2028-02-28T00:00:00+00:00", "2028-02-29T00:00:00+00:00", "2029-02-05T00:00:00+00:00"}));
}

TEST(CronTest, ImpossibleDateNeverFiresAndReturnsQuickly) {
  auto start = std::chrono::steady_clock::now();
  for (const char* expr : {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "*/5 * 31 2 *"}) {
    auto s = parse_ok(expr);
    EXPECT_EQ(s->next(at("2026-01-01T00:00:00Z"), nullptr), TimePoint::max()) << expr;
    EXPECT_EQ(s->next(at("2026-01-01T00:00:00Z"), zone("Europe/Moscow")), TimePoint::max()) << expr;
    EXPECT_EQ(s->next(at("2026-01-01T00:00:00Z"), zone("America/New_York")), TimePoint::max())
        << expr;
  }
  EXPECT_EQ(parse_ok("* * * * *")->next(TimePoint::max(), nullptr), TimePoint::max());
  // Generous bound: a minute-by-minute scan of 30 years would take far longer.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

// ---- DST. Europe/Moscow (zdump -v Europe/Moscow):
//   2010-03-27 23:00 UT = 2010-03-28 01:59:59 MSK -> 03:00:00 MSD (+03 -> +04)
//   2010-10-30 23:00 UT = 2010-10-31 02:59:59 MSD -> 02:00:00 MSK (+04 -> +03)
//   2011-03-26 23:00 UT = 2011-03-27 01:59:59 -> 03:00:00 (+03 -> +04, permanent)
//   2014-10-25 22:00 UT = 2014-10-26 01:59:59 -> 01:00:00 (+04 -> +03)

TEST(CronTest, SpringForwardGapFiresAfterGap) {
  EXPECT_EQ(fires("30 2 * * *", "Europe/Moscow", "2010-03-27T12:00:00+03:00", 2),
            (V{"2010-03-28T03:00:00+04:00", "2010-03-29T02:30:00+04:00"}));
  EXPECT_EQ(fires("0 2 * * *", "Europe/Moscow", "2010-03-27T12:00:00+03:00", 2),
            (V{"2010-03-28T03:00:00+04:00", "2010-03-29T02:00:00+04:00"}));
  EXPECT_EQ(fires("30 2 * * *", "Europe/Moscow", "2011-03-26T12:00:00+03:00", 2),
            (V{"2011-03-27T03:00:00+04:00", "2011-03-28T02:30:00+04:00"}));
  // A wall time right after the gap is an ordinary wall time.
  EXPECT_EQ(fires("0 3 * * *", "Europe/Moscow", "2010-03-27T12:00:00+03:00", 1),
            (V{"2010-03-28T03:00:00+04:00"}));
  // Only on matching days: the gap day is a Sunday.
  EXPECT_EQ(fires("30 2 * * MON", "Europe/Moscow", "2010-03-27T12:00:00+03:00", 1),
            (V{"2010-03-29T02:30:00+04:00"}));
}

TEST(CronTest, NonFixedScheduleSkipsTheGap) {
  EXPECT_EQ(
      fires("30 * * * *", "Europe/Moscow", "2010-03-28T01:00:00+03:00", 3),
      (V{"2010-03-28T01:30:00+03:00", "2010-03-28T03:30:00+04:00", "2010-03-28T04:30:00+04:00"}));
  EXPECT_EQ(
      fires("*/30 * * * *", "Europe/Moscow", "2010-03-28T01:15:00+03:00", 3),
      (V{"2010-03-28T01:30:00+03:00", "2010-03-28T03:00:00+04:00", "2010-03-28T03:30:00+04:00"}));
}

TEST(CronTest, FallBackOverlapFiresFixedTimeOnce) {
  EXPECT_EQ(fires("30 2 * * *", "Europe/Moscow", "2010-10-30T12:00:00+04:00", 2),
            (V{"2010-10-31T02:30:00+04:00", "2010-11-01T02:30:00+03:00"}));
  EXPECT_EQ(fires("30 1 * * *", "Europe/Moscow", "2014-10-25T12:00:00+04:00", 2),
            (V{"2014-10-26T01:30:00+04:00", "2014-10-27T01:30:00+03:00"}));
}

TEST(CronTest, NonFixedScheduleFiresTwiceThroughOverlap) {
  EXPECT_EQ(fires("30 * * * *", "Europe/Moscow", "2010-10-31T01:00:00+04:00", 4),
            (V{"2010-10-31T01:30:00+04:00", "2010-10-31T02:30:00+04:00",
               "2010-10-31T02:30:00+03:00", "2010-10-31T03:30:00+03:00"}));
  EXPECT_EQ(
      fires("*/30 * * * *", "Europe/Moscow", "2010-10-31T01:45:00+04:00", 5),
      (V{"2010-10-31T02:00:00+04:00", "2010-10-31T02:30:00+04:00", "2010-10-31T02:00:00+03:00",
         "2010-10-31T02:30:00+03:00", "2010-10-31T03:00:00+03:00"}));
  EXPECT_EQ(
      fires("30 * * * *", "Europe/Moscow", "2014-10-26T00:45:00+04:00", 3),
      (V{"2014-10-26T01:30:00+04:00", "2014-10-26T01:30:00+03:00", "2014-10-26T02:30:00+03:00"}));
}

TEST(CronTest, MoscowWithoutDstIsPlainWallTime) {
  // +04 all year 2011-2014, +03 since 2014-10-26.
  EXPECT_EQ(fires("0 3 * * MON", "Europe/Moscow", "2012-10-27T00:00:00Z", 2),
            (V{"2012-10-29T03:00:00+04:00", "2012-11-05T03:00:00+04:00"}));
  EXPECT_EQ(fires("0 3 * * MON", "Europe/Moscow", "2026-03-28T00:00:00Z", 2),
            (V{"2026-03-30T03:00:00+03:00", "2026-04-06T03:00:00+03:00"}));
}

// America/New_York 2026 (zdump -v America/New_York):
//   2026-03-08 07:00 UT: 01:59:59 EST -> 03:00:00 EDT;  2026-11-01 06:00 UT: 01:59:59 EDT ->
//   01:00:00 EST.

TEST(CronTest, NewYorkSpringForward) {
  EXPECT_EQ(fires("30 2 * * *", "America/New_York", "2026-03-07T12:00:00-05:00", 2),
            (V{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}));
  EXPECT_EQ(
      fires("*/30 * * * *", "America/New_York", "2026-03-08T01:00:00-05:00", 3),
      (V{"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"}));
  // Starting exactly at the transition instant, the gap fire is not repeated.
  EXPECT_EQ(fires("30 2 * * *", "America/New_York", "2026-03-08T03:00:00-04:00", 1),
            (V{"2026-03-09T02:30:00-04:00"}));
}

TEST(CronTest, NewYorkFallBack) {
  EXPECT_EQ(fires("30 1 * * *", "America/New_York", "2026-10-31T12:00:00-04:00", 2),
            (V{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}));
  EXPECT_EQ(fires("30 1 * * *", "America/New_York", "2026-11-01T01:45:00-04:00", 1),
            (V{"2026-11-02T01:30:00-05:00"}));
  EXPECT_EQ(fires("30 1 * * *", "America/New_York", "2026-11-01T01:10:00-05:00", 1),
            (V{"2026-11-02T01:30:00-05:00"}));
  EXPECT_EQ(
      fires("*/30 * * * *", "America/New_York", "2026-11-01T00:45:00-04:00", 5),
      (V{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00",
         "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}));
  EXPECT_EQ(fires("*/30 * * * *", "America/New_York", "2026-11-01T01:10:00-05:00", 1),
            (V{"2026-11-01T01:30:00-05:00"}));
}

// Australia/Lord_Howe 2026 (zdump -v Australia/Lord_Howe | grep 2026): a 30-minute shift.
//   2026-04-04 15:00 UT: 2026-04-05 01:59:59 +11 -> 01:30:00 +1030
//   2026-10-03 15:30 UT: 2026-10-04 01:59:59 +1030 -> 02:30:00 +11

TEST(CronTest, LordHoweHalfHourFallBack) {
  EXPECT_EQ(fires("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00+11:00", 2),
            (V{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}));
  EXPECT_EQ(
      fires("*/15 * * * *", "Australia/Lord_Howe", "2026-04-05T01:20:00+11:00", 5),
      (V{"2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30",
         "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"}));
}

TEST(CronTest, LordHoweHalfHourSpringForward) {
  EXPECT_EQ(fires("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30", 2),
            (V{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}));
  EXPECT_EQ(
      fires("*/15 * * * *", "Australia/Lord_Howe", "2026-10-04T01:40:00+10:30", 3),
      (V{"2026-10-04T01:45:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"}));
}

// ---- After 2037. The zone files list transitions up to 2037 and end with a POSIX TZ rule
// for later years (America/New_York: EST5EDT,M3.2.0,M11.1.0; Australia/Sydney:
// AEST-10AEDT,M10.1.0,M4.1.0/3). Transition instants from Python's zoneinfo, which applies
// the rule independently: New York 2040-03-11 07:00 UT (01:59:59 EST -> 03:00 EDT) and
// 2040-11-04 06:00 UT (01:59:59 EDT -> 01:00 EST); Sydney 2040-03-31 16:00 UT (02:59:59 AEDT
// -> 02:00 AEST) and 2040-10-06 16:00 UT (01:59:59 AEST -> 03:00 AEDT).

TEST(CronTest, FireTimesAfter2037FollowTheZonesRule) {
  EXPECT_EQ(
      fires("0 12 1 7 *", "America/New_York", "2037-01-01T00:00:00Z", 3),
      (V{"2037-07-01T12:00:00-04:00", "2038-07-01T12:00:00-04:00", "2039-07-01T12:00:00-04:00"}));
  EXPECT_EQ(
      fires("0 12 1 1,7 *", "America/New_York", "2049-12-31T00:00:00Z", 3),
      (V{"2050-01-01T12:00:00-05:00", "2050-07-01T12:00:00-04:00", "2051-01-01T12:00:00-05:00"}));
  EXPECT_EQ(fires("0 12 1 1,7 *", "Australia/Sydney", "2039-12-31T00:00:00Z", 2),
            (V{"2040-01-01T12:00:00+11:00", "2040-07-01T12:00:00+10:00"}));
  EXPECT_EQ(fires("0 12 1 1,7 *", "Asia/Tokyo", "2039-12-31T00:00:00Z", 2),
            (V{"2040-01-01T12:00:00+09:00", "2040-07-01T12:00:00+09:00"}));
}

TEST(CronTest, NewYorkSpringForwardIn2040AsIn2026) {
  EXPECT_EQ(fires("30 2 * * *", "America/New_York", "2040-03-10T12:00:00-05:00", 2),
            (V{"2040-03-11T03:00:00-04:00", "2040-03-12T02:30:00-04:00"}));
  EXPECT_EQ(
      fires("*/30 * * * *", "America/New_York", "2040-03-11T01:00:00-05:00", 3),
      (V{"2040-03-11T01:30:00-05:00", "2040-03-11T03:00:00-04:00", "2040-03-11T03:30:00-04:00"}));
  EXPECT_EQ(fires("30 2 * * *", "America/New_York", "2040-03-11T03:00:00-04:00", 1),
            (V{"2040-03-12T02:30:00-04:00"}));
}

TEST(CronTest, NewYorkFallBackIn2040AsIn2026) {
  EXPECT_EQ(fires("30 1 * * *", "America/New_York", "2040-11-03T12:00:00-04:00", 2),
            (V{"2040-11-04T01:30:00-04:00", "2040-11-05T01:30:00-05:00"}));
  EXPECT_EQ(fires("30 1 * * *", "America/New_York", "2040-11-04T01:45:00-04:00", 1),
            (V{"2040-11-05T01:30:00-05:00"}));
  EXPECT_EQ(fires("30 1 * * *", "America/New_York", "2040-11-04T01:10:00-05:00", 1),
            (V{"2040-11-05T01:30:00-05:00"}));
  EXPECT_EQ(
      fires("*/30 * * * *", "America/New_York", "2040-11-04T00:45:00-04:00", 5),
      (V{"2040-11-04T01:00:00-04:00", "2040-11-04T01:30:00-04:00", "2040-11-04T01:00:00-05:00",
         "2040-11-04T01:30:00-05:00", "2040-11-04T02:00:00-05:00"}));
}

TEST(CronTest, SydneyTransitionsIn2040) {
  // Fall back: 02:30 comes round twice on 2040-04-01; a fixed time fires at the first pass.
  EXPECT_EQ(fires("30 2 * * *", "Australia/Sydney", "2040-03-31T12:00:00+11:00", 2),
            (V{"2040-04-01T02:30:00+11:00", "2040-04-02T02:30:00+10:00"}));
  EXPECT_EQ(
      fires("30 * * * *", "Australia/Sydney", "2040-04-01T01:45:00+11:00", 3),
      (V{"2040-04-01T02:30:00+11:00", "2040-04-01T02:30:00+10:00", "2040-04-01T03:30:00+10:00"}));
  // Spring forward: 02:30 does not exist on 2040-10-07; fires at 03:00.
  EXPECT_EQ(fires("30 2 * * *", "Australia/Sydney", "2040-10-06T12:00:00+10:00", 2),
            (V{"2040-10-07T03:00:00+11:00", "2040-10-08T02:30:00+11:00"}));
}

// ---- A randomized cross-check against a brute-force reference that walks every minute of
// UTC and applies the documented rule directly. Prints its seed.

TimePoint brute_next(const Schedule& s, TimePoint after, const date::time_zone* z) {
  using namespace std::chrono;
  auto matches = [&](date::local_seconds l) {
    auto ld = floor<days>(l);
    date::year_month_day ymd{ld};
    date::hh_mm_ss hms{l - ld};
    unsigned d = static_cast<unsigned>(ymd.day());
    unsigned wd = date::weekday(ld).c_encoding();
    bool dom = s.days_of_month[d], dow = s.days_of_week[wd];
    bool day = s.dom_restricted && s.dow_restricted ? dom || dow
               : s.dom_restricted                   ? dom
               : s.dow_restricted                   ? dow
                                                    : true;
    return day && s.months[static_cast<unsigned>(ymd.month())] && s.hours[hms.hours().count()] &&
           s.minutes[hms.minutes().count()] && hms.seconds().count() == 0;
  };
  // Offsets through common/time's zone_info, so years after 2037 follow the zone's rule.
  auto local_of = [&](sys_seconds u) {
    return date::local_seconds((u + zone_info(z, u).offset).time_since_epoch());
  };
  auto t = ceil<minutes>(time_point_cast<seconds>(after) + seconds(1));
  for (int i = 0; i < 3 * 24 * 60 * 40; ++i, t += minutes(1)) {
    auto local = local_of(t);
    if (s.fixed_time()) {
      // Fires at the first instant whose wall clock reaches this day's wall time W (coming
      // from below), unless W already passed once (the second pass through an overlap).
      auto prev_local = local_of(t - minutes(1));
      auto w = floor<days>(local) + hours(bits(s.hours)[0]) + minutes(bits(s.minutes)[0]);
      if (w > local) w -= days(1);
      if (prev_local < w && matches(w)) {
        // Second pass: some earlier minute (an overlap lasts at most a few hours) read W.
        bool second_pass = false;
        for (auto u = t - minutes(1); u > t - hours(4) && !second_pass; u -= minutes(1))
          second_pass = local_of(u) == w;
        if (!second_pass) return TimePoint(duration_cast<microseconds>(t.time_since_epoch()));
      }
    } else if (matches(local)) {
      return TimePoint(duration_cast<microseconds>(t.time_since_epoch()));
    }
  }
  return TimePoint::max();
}

TEST(CronTest, AgreesWithMinuteByMinuteReferenceAroundTransitions) {
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const char* exprs[] = {"30 2 * * *", "0 2 * * *",    "45 1 * * *",      "15 2 * * *",
                         "30 1 * * *", "*/30 * * * *", "*/15 * * * *",    "30 * * * *",
                         "0 3 * * 0",  "0 0-3 * * *",  "15,45 1,2 * * *", "0 0 * * *"};
  struct Window {
    const char* zone;
    const char* from;
  };
  const Window windows[] = {
      {"Europe/Moscow", "2010-03-26T00:00:00Z"},
      {"Europe/Moscow", "2010-10-29T00:00:00Z"},
      {"Europe/Moscow", "2011-03-25T00:00:00Z"},
      {"Europe/Moscow", "2014-10-24T00:00:00Z"},
      {"America/New_York", "2026-03-07T00:00:00Z"},
      {"America/New_York", "2026-10-31T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-04-03T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-10-02T00:00:00Z"},
      // After the zone files' last listed transitions (2037): the zones' POSIX rules.
      {"America/New_York", "2040-03-10T00:00:00Z"},
      {"America/New_York", "2040-11-03T00:00:00Z"},
      {"Australia/Sydney", "2040-03-30T00:00:00Z"},
      {"Australia/Sydney", "2040-10-05T00:00:00Z"},
      {"Australia/Lord_Howe", "2045-04-01T00:00:00Z"},
      {"Australia/Lord_Howe", "2045-09-30T00:00:00Z"},
  };
  for (int i = 0; i < 200; ++i) {
    const char* expr = exprs[rng() % std::size(exprs)];
    const Window& w = windows[rng() % std::size(windows)];
    auto s = parse_ok(expr);
    auto z = zone(w.zone);
    TimePoint after = at(w.from) + std::chrono::minutes(rng() % (3 * 24 * 60));
    TimePoint got = s->next(after, z);
    TimePoint want = brute_next(*s, after, z);
    EXPECT_EQ(format_iso_zoned(got, z), format_iso_zoned(want, z))
        << expr << " in " << w.zone << " after " << format_iso_zoned(after, z);
  }
}

}  // namespace
}  // namespace drover::cron
