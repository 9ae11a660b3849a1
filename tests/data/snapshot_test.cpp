// Tests of the dataset registry (data/registry.hpp): round trips, dedup, the
// stat cache's effect on reads, concurrent modification, gc, diff, REF errors, remotes.
#include <gtest/gtest.h>

#include "common/sha256.hpp"
#include "data/manifest.hpp"
#include "data/registry.hpp"
#include "data/stat_cache.hpp"
#include "tests/data/test_util.hpp"

namespace drover::data {
namespace {

using testing::age_files;
using testing::count_blobs;
using testing::describe;
using testing::TempDir;
using testing::write;
namespace fs = std::filesystem;

// A dataset with every kind of entry a round trip must keep.
void make_odd_tree(const fs::path& root) {
  write(root / "a.csv", "id,x\n1,2\n");
  write(root / "run.sh", "#!/bin/sh\necho hi\n", 0755);
  write(root / "secret.txt", "s", 0600);
  write(root / "read only.txt", "ro", 0444);
  write(root / "sub dir/données é.csv", "unicode\n");
  write(root / std::string("bytes-\xff\xfe.bin"), std::string("\0\1\2", 3));
  write(root / "nested/deep/file", "deep");
  fs::create_directories(root / "empty");
  fs::create_directories(root / "nested/empty too");
  fs::create_symlink("a.csv", root / "link to a");
  fs::create_symlink("../outside/target", root / "nested/dangling");
}

TEST(SnapshotTest, RoundTripKeepsFilesSymlinksEmptyFoldersModesAndOddNames) {
  TempDir tmp;
  make_odd_tree(tmp / "data");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "", "first");
  ASSERT_TRUE(v.ok()) << v.message();
  EXPECT_EQ(v->version.size(), 64u);
  EXPECT_EQ(v->stats.files, 7u);
  EXPECT_EQ(v->stats.symlinks, 2u);
  EXPECT_EQ(v->stats.dirs, 2u);
  ASSERT_TRUE(reg.checkout(v->version, tmp / "out").ok());
  EXPECT_EQ(describe(tmp / "data"), describe(tmp / "out"));
}

TEST(SnapshotTest, CheckoutWithLinksHardLinksEveryFileFromTheStore) {
  TempDir tmp;
  write(tmp / "data/a", "aaa");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v.ok()) << v.message();
  CheckoutOptions opts;
  opts.link_always = true;
  ASSERT_TRUE(reg.checkout("events@latest", tmp / "out", opts).ok());
  struct stat a, b;
  ::stat((tmp / "out/a").c_str(), &a);
  ::stat(reg.blobs().path_of(v->manifest.files[0].sha256).c_str(), &b);
  EXPECT_EQ(a.st_ino, b.st_ino);
}

// A checkout is the user's own files: one written to (as root, whatever its mode) leaves the
// store's blob as it was, also for files recorded with the store's own 0444 mode.
TEST(SnapshotTest, ACheckedOutFileIsACopyAWriteToItLeavesTheBlob) {
  TempDir tmp;
  write(tmp / "data/a", "aaa", 0444);
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v.ok()) << v.message();
  ASSERT_TRUE(reg.checkout("events@latest", tmp / "out").ok());
  fs::path blob = reg.blobs().path_of(v->manifest.files[0].sha256);
  struct stat a, b;
  ASSERT_EQ(::stat((tmp / "out/a").c_str(), &a), 0);
  ASSERT_EQ(::stat(blob.c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);
  ::chmod((tmp / "out/a").c_str(), 0644);
  write(tmp / "out/a", "forged");
  EXPECT_TRUE(reg.blobs().verify(v->manifest.files[0].sha256).ok());
}

// A blob changed in place on disk never leaves for a remote: the push fails naming it and
// the remote gets no ref to a version it could not serve whole.
TEST(SnapshotTest, APushOfABlobChangedInPlaceIsRefusedAndMovesNoRef) {
  TempDir tmp;
  write(tmp / "data/a", "good");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "v1", "");
  ASSERT_TRUE(v.ok()) << v.message();
  std::string sha = v->manifest.files[0].sha256;
  fs::path blob = reg.blobs().path_of(sha);
  ::chmod(blob.c_str(), 0644);
  write(blob, "evil");
  auto remote = open_remote("file://" + (tmp / "remote").string());
  ASSERT_TRUE(remote.ok());
  auto p = reg.push("events@v1", **remote);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "blob " + sha + " is corrupt in the local store; not pushed");
  EXPECT_FALSE(fs::exists(tmp / "remote/blobs" / sha.substr(0, 2) / sha.substr(2)));
  EXPECT_FALSE(fs::exists(tmp / "remote/refs/events/v1"));
}

TEST(SnapshotTest, SameContentGivesTheSameVersionId) {
  TempDir tmp;
  make_odd_tree(tmp / "data");
  Registry one(tmp / "home1"), two(tmp / "home2");
  auto a = one.add(tmp / "data", "events", "", "x");
  auto b = two.add(tmp / "data", "events", "", "y");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->version, b->version);
  EXPECT_EQ(a->version, sha256_hex(to_canonical_json(a->manifest)));
}

TEST(SnapshotTest, SingleFileSnapshotChecksOutUnderItsName) {
  TempDir tmp;
  write(tmp / "events.csv", "1,2\n");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "events.csv", "events", "", "");
  ASSERT_TRUE(v.ok()) << v.message();
  ASSERT_TRUE(reg.checkout(v->version, tmp / "out").ok());
  EXPECT_EQ(testing::read(tmp / "out/events.csv"), "1,2\n");
}

TEST(SnapshotTest, TwoVersionsSharingMostFilesStoreSharedFilesOnce) {
  TempDir tmp;
  for (int i = 0; i < 100; ++i)
    write(tmp / "data" / ("f" + std::to_string(i)), "content " + std::to_string(i));
  write(tmp / "data/dup1", "same");
  write(tmp / "data/dup2", "same");
  Registry reg(tmp / "home");
  ASSERT_TRUE(reg.add(tmp / "data", "events", "v1", "").ok());
  EXPECT_EQ(count_blobs(tmp / "home"), 101u + 1u);  // 101 distinct contents + manifest
  write(tmp / "data/f7", "changed");
  ASSERT_TRUE(reg.add(tmp / "data", "events", "v2", "").ok());
  EXPECT_EQ(count_blobs(tmp / "home"), 102u + 2u);
}

TEST(SnapshotTest, ReSnapshotReadsNoUnchangedFile) {
  TempDir tmp;
  for (int i = 0; i < 50; ++i)
    write(tmp / "data" / ("f" + std::to_string(i)), "x" + std::to_string(i));
  write(tmp / "data/big", std::string(100000, 'b'));
  age_files(tmp / "data");
  Registry reg(tmp / "home");
  auto first = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(first.ok()) << first.message();
  EXPECT_EQ(first->stats.files_hashed, 51u);
  EXPECT_EQ(first->stats.bytes_read, first->stats.bytes_total);

  auto again = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(again->stats.bytes_read, 0u);
  EXPECT_EQ(again->stats.cache_hits, 51u);
  EXPECT_EQ(again->version, first->version);

  write(tmp / "data/f3", "edited!");  // new size: a miss even within one mtime tick
  auto third = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->stats.bytes_read, 7u);
  EXPECT_NE(third->version, first->version);
}

TEST(SnapshotTest, RecentlyModifiedFilesAreHashedAgain) {
  TempDir tmp;
  write(tmp / "data/new", "fresh");  // mtime = now: inside the racy window
  Registry reg(tmp / "home");
  ASSERT_TRUE(reg.add(tmp / "data", "events", "", "").ok());
  auto again = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stats.bytes_read, 5u);
}

TEST(SnapshotTest, FileChangedWhileHashedFailsTheSnapshotNamingIt) {
  TempDir tmp;
  write(tmp / "data/a", "aaaa");
  write(tmp / "data/b", "bbbb");
  Registry reg(tmp / "home");
  SnapshotOptions opts;
  opts.after_read = [&](const std::string& rel) {
    if (rel == "b") write(tmp / "data/b", "bbbb and more");
  };
  auto v = reg.add(tmp / "data", "events", "", "", opts);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.message(),
            (tmp / "data/b").string() + ": changed while being hashed; snapshot aborted");
  EXPECT_FALSE(reg.latest("events").has_value());
}

TEST(SnapshotTest, UnsupportedFileTypesAreRefused) {
  TempDir tmp;
  fs::create_directories(tmp / "data");
  ASSERT_EQ(::mkfifo((tmp / "data/pipe").c_str(), 0644), 0);
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "", "");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.message(), (tmp / "data/pipe").string() + ": not a regular file, folder or symlink");
}

TEST(SnapshotTest, HomeInsideTheDatasetIsNotSnapshotted) {
  TempDir tmp;
  write(tmp / "proj/a", "a");
  Registry reg(tmp / "proj/.drover");
  auto v = reg.add(tmp / "proj", "proj", "", "");
  ASSERT_TRUE(v.ok()) << v.message();
  ASSERT_EQ(v->manifest.files.size(), 1u);
  EXPECT_EQ(v->manifest.files[0].path, "a");
}

TEST(SnapshotTest, GcKeepsTaggedLoggedAndKeptBlobsAndDeletesTheRest) {
  TempDir tmp;
  write(tmp / "data/a", "version one");
  Registry reg(tmp / "home");
  auto v1 = reg.add(tmp / "data", "events", "gold", "");
  write(tmp / "data/a", "version two");
  auto v2 = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v1.ok() && v2.ok());
  auto stray = reg.blobs().put_bytes("nobody references me");
  auto kept = reg.blobs().put_bytes("a run references me");
  ASSERT_TRUE(stray.ok() && kept.ok());

  GcOptions young;
  auto none = reg.gc(young);  // default grace: fresh blobs are never deleted
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->blobs_deleted, 0u);

  GcOptions opts;
  opts.grace_seconds = -10;
  opts.keep.insert(kept->sha256);
  auto res = reg.gc(opts);
  ASSERT_TRUE(res.ok()) << res.message();
  EXPECT_EQ(res->blobs_deleted, 1u);
  EXPECT_EQ(res->bytes_freed, 20u);
  EXPECT_FALSE(reg.blobs().has(stray->sha256));
  EXPECT_TRUE(reg.blobs().has(kept->sha256));
  ASSERT_TRUE(reg.checkout("events@gold", tmp / "out1").ok());
  ASSERT_TRUE(reg.checkout("events@latest", tmp / "out2").ok());
  EXPECT_EQ(testing::read(tmp / "out1/a"), "version one");
  EXPECT_EQ(testing::read(tmp / "out2/a"), "version two");
}

// A stat-cache row for TMP/data/x naming a blob that no version references (say, from an
// add that failed late): the file, its stat, the blob.
struct StrayRow {
  fs::path x;
  FileStat fst;
  std::string sha;
};
StrayRow stray_row(const TempDir& tmp, Registry& reg) {
  write(tmp / "data/x", "stray bytes");
  age_files(tmp / "data");
  StrayRow r;
  auto stray = reg.blobs().put_bytes("stray bytes");
  EXPECT_TRUE(stray.ok());
  if (stray.ok()) r.sha = stray->sha256;
  r.x = fs::absolute(tmp / "data/x").lexically_normal();
  struct stat st {};
  EXPECT_EQ(::stat(r.x.c_str(), &st), 0);
  r.fst = FileStat{static_cast<uint64_t>(st.st_size),
                   int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
                   static_cast<uint64_t>(st.st_ino)};
  auto cache = StatCache::open(tmp / "home/cache/stat.db");
  EXPECT_TRUE(cache.ok());
  if (cache.ok()) {
    EXPECT_TRUE((*cache)->record(r.x.string(), r.fst, r.sha, r.fst.mtime_ns + 3'600'000'000'000));
    EXPECT_TRUE((*cache)->flush().ok());
  }
  return r;
}

TEST(SnapshotTest, GcForgetsStatCacheRowsOfTheBlobsItDeletes) {
  TempDir tmp;
  Registry reg(tmp / "home");
  auto [x, fst, sha] = stray_row(tmp, reg);
  GcOptions opts;
  opts.grace_seconds = -10;
  auto res = reg.gc(opts);
  ASSERT_TRUE(res.ok()) << res.message();
  EXPECT_EQ(res->blobs_deleted, 1u);
  ASSERT_FALSE(reg.blobs().has(sha));
  {
    auto cache = StatCache::open(tmp / "home/cache/stat.db");
    ASSERT_TRUE(cache.ok() && (*cache)->load(x.parent_path().string()).ok());
    EXPECT_FALSE((*cache)->lookup(x.string(), fst).has_value());
  }
  auto v = reg.add(tmp / "data", "events", "", "");  // hashes x again and stores its blob
  ASSERT_TRUE(v.ok()) << v.message();
  EXPECT_EQ(v->stats.bytes_read, 11u);
  EXPECT_TRUE(reg.blobs().has(sha));
  ASSERT_TRUE(reg.checkout("events@latest", tmp / "out").ok());
  EXPECT_EQ(testing::read(tmp / "out/x"), "stray bytes");
}

TEST(SnapshotTest, AStatCacheHitWhoseBlobIsGoneStoresTheFileAgain) {
  // What a gc killed between deleting blobs and forgetting their rows left behind (issue 9):
  // the next add called every file "unchanged", and its version could not be checked out.
  TempDir tmp;
  write(tmp / "data/a", "first bytes");
  write(tmp / "data/b", "second bytes");
  age_files(tmp / "data");
  Registry reg(tmp / "home");
  auto v1 = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v1.ok()) << v1.message();
  for (auto& e : v1->manifest.files) fs::remove(reg.blobs().path_of(e.sha256));
  auto v2 = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v2.ok()) << v2.message();
  EXPECT_EQ(v2->stats.bytes_read, 23u);  // both read and stored again
  ASSERT_TRUE(reg.checkout("events@latest", tmp / "out").ok());
  EXPECT_EQ(testing::read(tmp / "out/a"), "first bytes");
  EXPECT_EQ(testing::read(tmp / "out/b"), "second bytes");
}

TEST(SnapshotTest, GcForgetsTheRowsOfWhatItDeletesBeforeItDeletesAnything) {
  // The state a gc killed at its first delete leaves: rows gone, blobs still there.
  TempDir tmp;
  Registry reg(tmp / "home");
  auto [x, fst, sha] = stray_row(tmp, reg);
  bool row_at_first_delete = true, blob_at_first_delete = false;
  reg.set_before_delete([&] {
    auto cache = StatCache::open(tmp / "home/cache/stat.db");
    row_at_first_delete = cache.ok() && (*cache)->load(x.parent_path().string()).ok() &&
                          (*cache)->lookup(x.string(), fst).has_value();
    blob_at_first_delete = reg.blobs().has(sha);
  });
  GcOptions opts;
  opts.grace_seconds = -10;
  auto res = reg.gc(opts);
  ASSERT_TRUE(res.ok()) << res.message();
  EXPECT_EQ(res->blobs_deleted, 1u);
  EXPECT_FALSE(row_at_first_delete);
  EXPECT_TRUE(blob_at_first_delete);
}

TEST(SnapshotTest, StatusListsWhatAnAddWouldChangeAndStoresNothing) {
  TempDir tmp;
  write(tmp / "data/keep", "same");
  write(tmp / "data/edit", "ab");
  write(tmp / "data/gone", "12345");
  age_files(tmp / "data");
  Registry reg(tmp / "home");
  auto v1 = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v1.ok()) << v1.message();
  auto clean = reg.status(tmp / "data", "events");
  ASSERT_TRUE(clean.ok()) << clean.message();
  EXPECT_EQ(clean->against, v1->version);
  EXPECT_TRUE(clean->diff.added.empty() && clean->diff.removed.empty() &&
              clean->diff.changed.empty());
  EXPECT_EQ(clean->stats.bytes_read, 0u);  // the stat cache spares unchanged files

  fs::remove(tmp / "data/gone");
  write(tmp / "data/new", "123");
  write(tmp / "data/edit", "abcd");
  size_t blobs_before = count_blobs(tmp / "home");
  auto st = reg.status(tmp / "data", "events");
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(st->diff.added.size(), 1u);
  EXPECT_EQ(st->diff.added[0].path, "new");
  EXPECT_EQ(st->diff.added[0].new_size, 3u);
  ASSERT_EQ(st->diff.removed.size(), 1u);
  EXPECT_EQ(st->diff.removed[0].path, "gone");
  ASSERT_EQ(st->diff.changed.size(), 1u);
  EXPECT_EQ(st->diff.changed[0].path, "edit");
  EXPECT_EQ(st->diff.changed[0].old_size, 2u);
  EXPECT_EQ(st->diff.changed[0].new_size, 4u);
  EXPECT_EQ(st->diff.changed[0].new_sha256, sha256_hex("abcd"));
  EXPECT_EQ(count_blobs(tmp / "home"), blobs_before);  // nothing stored
  EXPECT_FALSE(reg.blobs().has(sha256_hex("abcd")));

  // An add afterwards stores what status only hashed, and then status is clean again.
  age_files(tmp / "data");
  auto v2 = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v2.ok()) << v2.message();
  EXPECT_TRUE(reg.blobs().has(sha256_hex("abcd")));
  ASSERT_TRUE(reg.checkout("events@latest", tmp / "out").ok());
  EXPECT_EQ(testing::read(tmp / "out/edit"), "abcd");
  auto after = reg.status(tmp / "data", "events");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->against, v2->version);
  EXPECT_TRUE(after->diff.added.empty() && after->diff.changed.empty());
  // Against the first version instead of latest.
  auto old = reg.status(tmp / "data", "events", v1->version);
  ASSERT_TRUE(old.ok()) << old.message();
  EXPECT_EQ(old->diff.added.size(), 1u);
  EXPECT_EQ(old->diff.changed.size(), 1u);

  auto none = reg.status(tmp / "data", "nosuch");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::NotFound) << none.message();
}

TEST(SnapshotTest, DiffListsAddedRemovedAndChangedFilesWithSizes) {
  TempDir tmp;
  write(tmp / "data/keep", "same");
  write(tmp / "data/gone", "12345");
  write(tmp / "data/edit", "ab");
  write(tmp / "data/mode", "m");
  Registry reg(tmp / "home");
  auto a = reg.add(tmp / "data", "events", "", "");
  fs::remove(tmp / "data/gone");
  write(tmp / "data/new", "123");
  write(tmp / "data/edit", "abcd");
  ::chmod((tmp / "data/mode").c_str(), 0755);
  auto b = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(a.ok() && b.ok());
  Diff d = diff_manifests(a->manifest, b->manifest);
  ASSERT_EQ(d.added.size(), 1u);
  EXPECT_EQ(d.added[0].path, "new");
  EXPECT_EQ(d.added[0].new_size, 3u);
  ASSERT_EQ(d.removed.size(), 1u);
  EXPECT_EQ(d.removed[0].path, "gone");
  EXPECT_EQ(d.removed[0].old_size, 5u);
  ASSERT_EQ(d.changed.size(), 2u);
  EXPECT_EQ(d.changed[0].path, "edit");
  EXPECT_EQ(d.changed[0].old_size, 2u);
  EXPECT_EQ(d.changed[0].new_size, 4u);
  EXPECT_EQ(d.changed[1].path, "mode");
}

TEST(SnapshotTest, RefsResolveByTagLatestIdAndPrefix) {
  TempDir tmp;
  write(tmp / "data/a", "a");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "2026-w47", "");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*reg.resolve("events@2026-w47"), v->version);
  EXPECT_EQ(*reg.resolve("events@latest"), v->version);
  EXPECT_EQ(*reg.resolve(v->version), v->version);
  EXPECT_EQ(*reg.resolve(v->version.substr(0, 8)), v->version);
  ASSERT_TRUE(reg.set_tag(v->version.substr(0, 10), "gold").ok());
  EXPECT_EQ(*reg.resolve("events@gold"), v->version);
}

TEST(SnapshotTest, RefResolutionErrorsSayWhatIsWrong) {
  TempDir tmp;
  write(tmp / "data/a", "a");
  Registry reg(tmp / "home");
  ASSERT_TRUE(reg.add(tmp / "data", "events", "", "").ok());
  auto msg = [&](const char* ref) { return reg.resolve(ref).message(); };
  EXPECT_EQ(msg("nope@latest"), "unknown dataset 'nope'");
  EXPECT_EQ(msg("events@missing"), "dataset 'events' has no tag 'missing'");
  EXPECT_EQ(msg("Bad Name@x"), "invalid dataset name 'Bad Name' in 'Bad Name@x'");
  EXPECT_EQ(msg("events"), "'events' is not a version: did you mean 'events@latest'?");
  EXPECT_EQ(msg("abc"),
            "'abc' is not a version: use NAME@TAG, NAME@latest or a version id "
            "(at least 8 hex digits)");
  EXPECT_EQ(msg("00000000"), "no version matches '00000000'");
  EXPECT_EQ(reg.resolve("nope@latest").error().code, Errc::NotFound);
  EXPECT_EQ(reg.set_tag("events@latest", "latest").message(),
            "invalid tag 'latest': use [A-Za-z0-9_.-]+ (and not 'latest')");
  EXPECT_EQ(reg.add(tmp / "data", "Events", "", "").message(),
            "invalid dataset name 'Events': use [a-z0-9_.-]+");
}

TEST(SnapshotTest, AmbiguousPrefixListsTheCandidates) {
  TempDir tmp;
  Registry reg(tmp / "home");
  // Two logged versions sharing 8 hex digits cannot be made by hashing in a test; write
  // the log (its on-disk format is part of the contract) by hand.
  std::string a = "deadbeef" + std::string(56, '1'), b = "deadbeef" + std::string(56, '2');
  write(tmp / "home/datasets/events/log",
        "2026-01-01T00:00:00Z\t" + a + "\tone\n2026-01-02T00:00:00Z\t" + b + "\ttwo\n");
  EXPECT_EQ(reg.resolve("deadbeef").message(),
            "version prefix 'deadbeef' is ambiguous: deadbeef11111111, deadbeef22222222");
  EXPECT_EQ(*reg.resolve("deadbeef1"), a);
}

TEST(SnapshotTest, CheckoutRefusesANonEmptyDestination) {
  TempDir tmp;
  write(tmp / "data/a", "a");
  write(tmp / "dest/existing", "x");
  Registry reg(tmp / "home");
  ASSERT_TRUE(reg.add(tmp / "data", "events", "", "").ok());
  EXPECT_EQ(reg.checkout("events@latest", tmp / "dest").message(),
            (tmp / "dest").string() + ": exists and is not empty");
  fs::create_directories(tmp / "empty");
  EXPECT_TRUE(reg.checkout("events@latest", tmp / "empty").ok());
}

TEST(SnapshotTest, CheckoutDetectsACorruptBlob) {
  TempDir tmp;
  write(tmp / "data/a", "good");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v.ok());
  fs::path blob = reg.blobs().path_of(v->manifest.files[0].sha256);
  ::chmod(blob.c_str(), 0644);
  write(blob, "evil");
  auto s = reg.checkout("events@latest", tmp / "out");
  EXPECT_EQ(s.message(), "blob " + v->manifest.files[0].sha256 + " is corrupt");
}

TEST(SnapshotTest, LocalRemotePushPullRoundTripSendsOnlyMissingBlobs) {
  TempDir tmp;
  make_odd_tree(tmp / "data");
  Registry reg(tmp / "home");
  auto v1 = reg.add(tmp / "data", "events", "v1", "");
  ASSERT_TRUE(v1.ok()) << v1.message();
  auto remote = open_remote("file://" + (tmp / "remote").string());
  ASSERT_TRUE(remote.ok());
  auto p1 = reg.push("events@v1", **remote);
  ASSERT_TRUE(p1.ok()) << p1.message();
  EXPECT_EQ(p1->blobs_sent, 7u);

  write(tmp / "data/a.csv", "id,x\n1,3\n");
  auto v2 = reg.add(tmp / "data", "events", "v2", "");
  ASSERT_TRUE(v2.ok());
  auto p2 = reg.push("events@v2", **remote);
  ASSERT_TRUE(p2.ok()) << p2.message();
  EXPECT_EQ(p2->blobs_sent, 1u);
  EXPECT_EQ(p2->blobs_skipped, 6u);

  // Lose every local blob, pull back, check out.
  fs::remove_all(tmp / "home/blobs");
  auto pulled = reg.pull("events@v1", **remote);
  ASSERT_TRUE(pulled.ok()) << pulled.message();
  EXPECT_EQ(pulled->version, v1->version);
  EXPECT_EQ(pulled->blobs_sent, 7u);
  ASSERT_TRUE(reg.checkout("events@v1", tmp / "out").ok());
  fs::remove(tmp / "data/a.csv");
  write(tmp / "data/a.csv", "id,x\n1,2\n");
  EXPECT_EQ(describe(tmp / "data"), describe(tmp / "out"));

  // A fresh home pulls by tag and by id.
  Registry other(tmp / "home2");
  auto by_tag = other.pull("events@v2", **remote);
  ASSERT_TRUE(by_tag.ok()) << by_tag.message();
  EXPECT_EQ(*other.resolve("events@v2"), v2->version);
  EXPECT_EQ(*other.resolve("events@latest"), v2->version);
  auto by_id = other.pull(v1->version, **remote);
  ASSERT_TRUE(by_id.ok()) << by_id.message();
  EXPECT_TRUE(other.checkout(v1->version, tmp / "out3").ok());
}

TEST(SnapshotTest, CheckoutOfAPulledVersionPlantsNoSetuidOrWorldWritableFile) {
  TempDir tmp;
  write(tmp / "data/suid", "#!/bin/sh\n", 04777);
  write(tmp / "data/sgid", "g", 02666);
  write(tmp / "data/private", "p", 0600);
  Registry reg(tmp / "home");
  ASSERT_TRUE(reg.add(tmp / "data", "events", "", "").ok());
  LocalRemote remote(tmp / "remote");
  ASSERT_TRUE(reg.push("events@latest", remote).ok());
  Registry other(tmp / "home2");
  ASSERT_TRUE(other.pull("events@latest", remote).ok());
  ASSERT_TRUE(other.checkout("events@latest", tmp / "out").ok());
  auto mode = [&](const char* name) {
    struct stat st {};
    ::stat((tmp / "out" / name).c_str(), &st);
    return st.st_mode & 07777;
  };
  EXPECT_EQ(mode("suid"), 0755u);
  EXPECT_EQ(mode("sgid"), 0644u);
  EXPECT_EQ(mode("private"), 0600u);
}

TEST(SnapshotTest, PullErrorsNameTheMissingRef) {
  TempDir tmp;
  Registry reg(tmp / "home");
  LocalRemote remote(tmp / "remote");
  EXPECT_EQ(reg.pull("events@v9", remote).message(),
            "remote " + (tmp / "remote").string() + " has no ref 'events@v9'");
  EXPECT_EQ(open_remote("ftp://x/y").message(),
            "unsupported remote 'ftp://x/y': use a folder, file:///path or s3://bucket/prefix");
}

TEST(SnapshotTest, ACorruptBlobOnTheRemoteIsRefused) {
  TempDir tmp;
  write(tmp / "data/a", "payload");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "", "");
  LocalRemote remote(tmp / "remote");
  ASSERT_TRUE(reg.push("events@latest", remote).ok());
  std::string sha = v->manifest.files[0].sha256;
  fs::path on_remote = tmp / "remote/blobs" / sha.substr(0, 2) / sha.substr(2);
  ::chmod(on_remote.c_str(), 0644);
  write(on_remote, "tampered");
  Registry other(tmp / "home2");
  EXPECT_EQ(other.pull("events@latest", remote).message(),
            "blob " + sha + " from remote " + (tmp / "remote").string() + " is corrupt");
}

TEST(ManifestTest, NonUtf8NamesAreStoredHexEncodedAndRoundTrip) {
  Manifest m;
  m.dataset = "d";
  ManifestEntry f;
  f.path = "ok/\xff.bin";
  f.size = 1;
  f.sha256 = std::string(64, 'a');
  m.files.push_back(f);
  std::string json = to_canonical_json(m);
  EXPECT_NE(json.find("\"path_hex\":\"6f6b2fff2e62696e\""), std::string::npos) << json;
  auto back = parse_manifest(json);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->files[0], f);
}

// The refs as the daemon's routes use them: a version pushed from another home is checked
// whole before a ref names it; set, read and delete one ref at a time.
TEST(SnapshotRefTest, APushedVersionGetsItsRefOnlyWhenEveryBlobIsHere) {
  TempDir tmp;
  write(tmp / "data/a.csv", "a\n");
  write(tmp / "data/b.csv", "b\n");
  Registry src(tmp / "src");
  auto v = src.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v.ok()) << v.message();
  Registry dst(tmp / "dst");
  auto set = [&](const std::string& tag) {
    return dst.set_ref("events", tag, v->version, "pushed events@" + tag);
  };
  EXPECT_EQ(set("w47").message(),
            "version " + v->version + " is not on this server: push its blobs and manifest first");
  ASSERT_TRUE(dst.blobs().put_file(src.blobs().path_of(v->version)).ok());
  auto first = v->manifest.files[0];
  ASSERT_TRUE(dst.blobs().put_file(src.blobs().path_of(first.sha256)).ok());
  auto second = v->manifest.files[1];
  Status incomplete = set("w47");
  EXPECT_EQ(incomplete.error().code, Errc::Invalid);
  EXPECT_EQ(incomplete.message(),
            "version " + v->version + " is incomplete on this server: 1 file(s) missing, first " +
                second.path + " (" + second.sha256 + "); push its blobs first");
  EXPECT_FALSE(dst.ref("events", "w47"));
  EXPECT_FALSE(dst.has_dataset("events"));

  ASSERT_TRUE(dst.blobs().put_file(src.blobs().path_of(second.sha256)).ok());
  ASSERT_TRUE(set("w47").ok());
  EXPECT_EQ(dst.ref("events", "w47"), v->version);
  EXPECT_EQ(dst.ref("events", "latest"), v->version);  // the dataset had no latest yet
  auto log = dst.log("events");
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].message, "pushed events@w47");
  EXPECT_EQ(dst.resolve("events@w47").value(), v->version);
}

TEST(SnapshotRefTest, RefsAreReadSetAndDeletedOneAtATime) {
  TempDir tmp;
  write(tmp / "data/a", "1");
  Registry reg(tmp / "home");
  auto one = reg.add(tmp / "data", "events", "", "");
  write(tmp / "data/a", "2");
  auto two = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(one.ok() && two.ok());
  ASSERT_TRUE(reg.set_ref("events", "prod", one->version, "promoted").ok());
  EXPECT_EQ(reg.ref("events", "prod"), one->version);
  EXPECT_EQ(reg.ref("events", "latest"), two->version);  // latest stays where it was
  ASSERT_TRUE(reg.set_ref("events", "latest", one->version, "rolled back").ok());
  EXPECT_EQ(reg.latest("events"), one->version);

  EXPECT_FALSE(reg.ref("events", "nope"));
  EXPECT_FALSE(reg.ref("../events", "prod"));
  EXPECT_FALSE(reg.ref("events", "../prod"));
  EXPECT_EQ(reg.set_ref("events", "prod", "abc", "").message(),
            "invalid version 'abc' (expected 64 lowercase hex digits)");
  EXPECT_EQ(reg.set_ref("Events", "prod", one->version, "").error().code, Errc::Invalid);

  ASSERT_TRUE(reg.delete_ref("events", "prod").ok());
  EXPECT_FALSE(reg.ref("events", "prod"));
  Status again = reg.delete_ref("events", "prod");
  EXPECT_EQ(again.error().code, Errc::NotFound);
  EXPECT_EQ(again.message(), "dataset 'events' has no tag 'prod'");
  EXPECT_EQ(reg.delete_ref("events", "latest").message(),
            "'events@latest' cannot be deleted: it moves with new versions");
  EXPECT_EQ(reg.ref("events", "latest"), one->version);
}

TEST(SnapshotRefTest, SettingARefWithoutWaitingIsBusyWhileAGcHoldsTheStore) {
  TempDir tmp;
  write(tmp / "data/a", "1");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "", "");
  ASSERT_TRUE(v.ok());
  auto gc_lock = lock_store(tmp / "home", /*exclusive=*/true, /*wait=*/false);
  ASSERT_TRUE(gc_lock.ok());
  Status busy = reg.set_ref("events", "prod", v->version, "", /*wait=*/false);
  EXPECT_EQ(busy.error().code, Errc::Busy);
  EXPECT_FALSE(reg.ref("events", "prod"));
}

TEST(ManifestTest, UnsafePathsAreRejected) {
  auto m = parse_manifest(R"({"dataset":"d","files":[{"path":"../etc/passwd","dir":true}]})");
  EXPECT_EQ(m.message(), "manifest: unsafe path '../etc/passwd'");
  EXPECT_FALSE(is_safe_relative_path("/abs"));
  EXPECT_FALSE(is_safe_relative_path("a//b"));
  EXPECT_TRUE(is_safe_relative_path("a b/c"));
}

}  // namespace
}  // namespace drover::data
