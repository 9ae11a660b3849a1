// ISO 8601 parsing and formatting, zones, durations.
#include "common/time.hpp"

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

}  // namespace
}  // namespace drover
