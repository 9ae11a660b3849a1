// Tests of StatCache (data/stat_cache.hpp): what counts as unchanged, the racy
// window, persistence.
#include "data/stat_cache.hpp"

#include <gtest/gtest.h>

#include "tests/data/test_util.hpp"

namespace drover::data {
namespace {

using testing::TempDir;

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kNow = 1'800'000'000 * kSecond;
const std::string kSha(64, 'a');

TEST(StatCacheTest, AnUnchangedStatHitsAndAnyChangedFieldMisses) {
  TempDir tmp;
  auto c = StatCache::open(tmp / "stat.db");
  ASSERT_TRUE(c.ok()) << c.message();
  FileStat st{10, kNow - 60 * kSecond, 42};
  ASSERT_TRUE((*c)->record("/d/a", st, kSha, kNow));
  ASSERT_TRUE((*c)->flush().ok());
  EXPECT_EQ((*c)->lookup("/d/a", st), kSha);
  EXPECT_FALSE((*c)->lookup("/d/a", FileStat{11, st.mtime_ns, 42}));
  EXPECT_FALSE((*c)->lookup("/d/a", FileStat{10, st.mtime_ns + 1, 42}));
  EXPECT_FALSE((*c)->lookup("/d/a", FileStat{10, st.mtime_ns, 43}));
  EXPECT_FALSE((*c)->lookup("/d/b", st));
}

TEST(StatCacheTest, FilesModifiedWithinTheRacyWindowAreNotCached) {
  TempDir tmp;
  auto c = StatCache::open(tmp / "stat.db");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->record("/d/a", FileStat{1, kNow - kSecond / 2, 1}, kSha, kNow));
  EXPECT_TRUE((*c)->record("/d/b", FileStat{1, kNow - 2 * kSecond, 1}, kSha, kNow));
  ASSERT_TRUE((*c)->flush().ok());
  EXPECT_FALSE((*c)->lookup("/d/a", FileStat{1, kNow - kSecond / 2, 1}));
  EXPECT_TRUE((*c)->lookup("/d/b", FileStat{1, kNow - 2 * kSecond, 1}));
}

TEST(StatCacheTest, EntriesPersistAndLoadOnlyUnderTheGivenFolder) {
  TempDir tmp;
  FileStat st{5, kNow - 60 * kSecond, 7};
  {
    auto c = StatCache::open(tmp / "cache/stat.db");
    ASSERT_TRUE(c.ok());
    (*c)->record("/data/x/a", st, kSha, kNow);
    (*c)->record("/data/x/sub/b", st, kSha, kNow);
    (*c)->record("/data/x-other/c", st, kSha, kNow);
    (*c)->record("/data/xy", st, kSha, kNow);
    ASSERT_TRUE((*c)->flush().ok());
  }
  auto c = StatCache::open(tmp / "cache/stat.db");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->load("/data/x").ok());
  EXPECT_EQ((*c)->loaded_size(), 2u);
  EXPECT_EQ((*c)->lookup("/data/x/sub/b", st), kSha);
  EXPECT_FALSE((*c)->lookup("/data/x-other/c", st));
}

TEST(StatCacheTest, NonUtf8PathsAreKeys) {
  TempDir tmp;
  FileStat st{5, kNow - 60 * kSecond, 7};
  std::string odd = std::string("/d/\xff\xfe name");
  {
    auto c = StatCache::open(tmp / "stat.db");
    ASSERT_TRUE(c.ok());
    (*c)->record(odd, st, kSha, kNow);
    ASSERT_TRUE((*c)->flush().ok());
  }
  auto c = StatCache::open(tmp / "stat.db");
  ASSERT_TRUE((*c)->load("/d").ok());
  EXPECT_EQ((*c)->lookup(odd, st), kSha);
}

TEST(StatCacheTest, AnUnopenableDatabaseIsAnErrorNamingIt) {
  TempDir tmp;
  testing::write(tmp / "file", "x");
  auto c = StatCache::open(tmp / "file/stat.db");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find((tmp / "file").string()), std::string::npos) << c.message();
}

}  // namespace
}  // namespace drover::data
