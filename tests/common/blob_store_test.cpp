// The content-addressed blob store: dedup, atomic writes, read-only blobs, materialize.
#include "common/blob_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/sha256.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-blob-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { fs::remove_all(dir); }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  size_t blob_count() {
    size_t n = 0;
    for (auto& e : fs::recursive_directory_iterator(dir / "blobs"))
      if (e.is_regular_file() && e.path().parent_path().filename() != "tmp") ++n;
    return n;
  }
};

TEST_F(BlobStoreTest, IdenticalContentIsStoredOnceUnderItsHash) {
  BlobStore store(dir / "blobs");
  auto a = store.put_bytes("hello\n");
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ(a->sha256, sha256_hex("hello\n"));
  EXPECT_EQ(a->size, 6u);
  std::ofstream(dir / "f.txt") << "hello\n";
  auto b = store.put_file(dir / "f.txt");
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_EQ(b->sha256, a->sha256);
  EXPECT_EQ(blob_count(), 1u);
  EXPECT_EQ(store.path_of(a->sha256), dir / "blobs" / a->sha256.substr(0, 2) / a->sha256.substr(2));
  EXPECT_TRUE(store.has(a->sha256));
  EXPECT_TRUE(fs::is_empty(dir / "blobs" / "tmp"));  // no temp file left behind
}

TEST_F(BlobStoreTest, BlobsAreReadOnlyAndVerifiable) {
  BlobStore store(dir / "blobs");
  auto a = store.put_bytes("data");
  ASSERT_TRUE(a.ok());
  struct stat st;
  ASSERT_EQ(::stat(store.path_of(a->sha256).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_TRUE(store.verify(a->sha256).ok());
}

TEST_F(BlobStoreTest, MaterializePlacesTheBytesAtTheDestination) {
  BlobStore store(dir / "blobs");
  auto a = store.put_bytes("payload");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store.materialize(a->sha256, dir / "out.txt").ok());
  EXPECT_EQ(read(dir / "out.txt"), "payload");
  auto again = store.materialize(a->sha256, dir / "out.txt");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.message(), (dir / "out.txt").string() + ": already exists");
}

// A materialized blob is a copy: root writes a 0444 file as it likes, and the blob must not
// change with it.
TEST_F(BlobStoreTest, AMaterializedBlobIsACopyThatAWriteDoesNotReachTheStoreThrough) {
  BlobStore store(dir / "blobs");
  auto a = store.put_bytes("payload");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store.materialize(a->sha256, dir / "out.txt").ok());
  struct stat out, blob;
  ASSERT_EQ(::stat((dir / "out.txt").c_str(), &out), 0);
  ASSERT_EQ(::stat(store.path_of(a->sha256).c_str(), &blob), 0);
  EXPECT_NE(out.st_ino, blob.st_ino);
  EXPECT_EQ(out.st_mode & 0777, 0444u);
  ::chmod((dir / "out.txt").c_str(), 0644);
  std::ofstream(dir / "out.txt", std::ios::app) << "forged";
  EXPECT_EQ(read(store.path_of(a->sha256)), "payload");
  EXPECT_TRUE(store.verify(a->sha256).ok());
}

// A hard-linked blob is checked after use: another link (its ctime moves) is no change,
// a write through the link is, and takes the blob out of the store.
TEST_F(BlobStoreTest, ABlobChangedThroughAHardLinkIsFoundAndTakenOutOfTheStore) {
  BlobStore store(dir / "blobs");
  auto a = store.put_bytes("payload");
  ASSERT_TRUE(a.ok());
  auto before = store.link_to(a->sha256, dir / "in.txt");
  ASSERT_TRUE(before.ok()) << before.message();
  ASSERT_TRUE(store.link_to(a->sha256, dir / "other.txt").ok());
  EXPECT_TRUE(store.unchanged_since(a->sha256, *before).ok());

  ::chmod((dir / "in.txt").c_str(), 0644);
  std::ofstream(dir / "in.txt", std::ios::app) << "forged";
  auto s = store.unchanged_since(a->sha256, *before);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::Mismatch);
  EXPECT_EQ(s.message(), "blob " + a->sha256 + " was changed in place (its bytes now hash to " +
                             sha256_hex("payloadforged") + "); it is out of the store");
  EXPECT_FALSE(store.has(a->sha256));
}

TEST_F(BlobStoreTest, InvalidHashesAreRefusedNotLookedUp) {
  BlobStore store(dir / "blobs");
  EXPECT_FALSE(BlobStore::valid_hash("../../etc/passwd"));
  EXPECT_FALSE(store.has("../../etc/passwd"));
  auto r = store.materialize("../x", dir / "y");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "invalid blob hash '../x'");
}

// Bytes this process has written through write(2) and friends (/proc/self/io "wchar").
uint64_t bytes_written() {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t v = 0;
  while (in >> key >> v)
    if (key == "wchar:") return v;
  return 0;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

TEST_F(BlobStoreTest, StoringKnownContentReadsItButWritesNothing) {
  BlobStore store(dir / "blobs");
  store.set_racy_window_ns(0);  // take the hash-first path for a file written just now
  std::string data = random_bytes(3 << 20, 1);
  ASSERT_TRUE(store.put_bytes(data).ok());
  std::ofstream(dir / "f.bin", std::ios::binary) << data;
  uint64_t before = bytes_written();
  auto r = store.put_file(dir / "f.bin");
  uint64_t after = bytes_written();
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->sha256, sha256_hex(data));
  // Storing it again would write 3 MiB; a few bytes of slack for whatever the runtime
  // writes meanwhile (under ASan 48 bytes appear).
  EXPECT_LT(after - before, 4096u);
  EXPECT_EQ(blob_count(), 1u);
}

TEST_F(BlobStoreTest, NewContentIsCopiedByteForByte) {
  BlobStore store(dir / "blobs");
  store.set_racy_window_ns(0);
  std::string data = random_bytes((5 << 20) + 12345, 2);  // not a multiple of any block
  std::ofstream(dir / "f.bin", std::ios::binary) << data;
  auto r = store.put_file(dir / "f.bin");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->sha256, sha256_hex(data));
  EXPECT_EQ(r->size, data.size());
  EXPECT_EQ(read(store.path_of(r->sha256)), data);
  struct stat st;
  ASSERT_EQ(::stat(store.path_of(r->sha256).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_TRUE(fs::is_empty(dir / "blobs" / "tmp"));
}

int64_t ctime_ns(const fs::path& p) {
  struct stat st;
  ::stat(p.c_str(), &st);
  return int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
}

// Waits (deadline 5 s) until the kernel's coarse clock, which stamps ctime, has moved past
// `ns`, so that the next change of a file gets a different ctime.
bool wait_for_tick_after(int64_t ns) {
  for (int i = 0; i < 5000; ++i) {
    timespec t;
    ::clock_gettime(CLOCK_REALTIME_COARSE, &t);
    if (int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec > ns) return true;
    ::usleep(1000);
  }
  return false;
}

TEST_F(BlobStoreTest, AFileRewrittenBetweenHashingAndCopyingIsRefusedAndNothingStored) {
  BlobStore store(dir / "blobs");
  store.set_racy_window_ns(0);
  fs::path f = dir / "f.bin";
  std::string data = random_bytes(1 << 20, 3), other = random_bytes(1 << 20, 4);
  std::ofstream(f, std::ios::binary) << data;
  ASSERT_TRUE(wait_for_tick_after(ctime_ns(f)));
  int hooks = 0;
  store.set_after_hash_hook([&](const fs::path&) {  // same size, new bytes
    ++hooks;
    std::ofstream(f, std::ios::binary | std::ios::in | std::ios::out) << other;
  });
  auto r = store.put_file(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(hooks, 1);
  EXPECT_EQ(r.error().code, Errc::Changed);
  EXPECT_EQ(r.message(), f.string() + ": changed while being stored");
  EXPECT_FALSE(store.has(sha256_hex(data)));
  EXPECT_FALSE(store.has(sha256_hex(other)));
  EXPECT_TRUE(fs::is_empty(dir / "blobs" / "tmp"));
}

TEST_F(BlobStoreTest, AFileChangedJustNowIsCopiedWhileHashed) {
  BlobStore store(dir / "blobs");  // default racy window: the file below is inside it
  int hooks = 0;
  store.set_after_hash_hook([&](const fs::path&) { ++hooks; });
  std::string data = random_bytes(1 << 20, 5);
  std::ofstream(dir / "f.bin", std::ios::binary) << data;
  auto r = store.put_file(dir / "f.bin");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(hooks, 0);  // one pass: the blob holds exactly the bytes that were hashed
  EXPECT_EQ(read(store.path_of(r->sha256)), data);
  EXPECT_EQ(r->sha256, sha256_hex(data));
}

// A check made every kReadCheckEvery bytes stops the storing of a big file — while it is
// hashed, while it is copied, or while it is copied and hashed at once (a file changed just
// now) — with the check's error, and nothing is stored or left in tmp.
TEST_F(BlobStoreTest, AFailedReadCheckStopsStoringAndLeavesNothing) {
  fs::path f = dir / "big.bin";
  std::ofstream(f).close();
  fs::resize_file(f, uint64_t{200} << 20);  // sparse: 3 checks to hash it, 3 more to copy it
  auto store_with = [&](const fs::path& root, int64_t racy_ns, int fail_at, int& calls) {
    BlobStore store(root);
    store.set_racy_window_ns(racy_ns);
    return store.put_file(f, true, [&]() -> Status {
      return ++calls >= fail_at ? Status(make_error("too late")) : Status();
    });
  };
  auto stopped = [&](const char* name, int64_t racy_ns, int fail_at) {
    SCOPED_TRACE(name);
    fs::path root = dir / "blobs";
    int calls = 0;
    auto r = store_with(root, racy_ns, fail_at, calls);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.message(), "too late");
    EXPECT_EQ(calls, fail_at);
    EXPECT_EQ(blob_count(), 0u);
    EXPECT_TRUE(fs::is_empty(root / "tmp"));
  };
  // First, while the file is still inside the racy window.
  stopped("copying while hashing", BlobStore::kDefaultRacyWindowNs, 2);
  stopped("hashing", 0, 2);
  int calls = 0;
  auto whole = store_with(dir / "passing", 0, 1000, calls);
  ASSERT_TRUE(whole.ok()) << whole.message();
  EXPECT_EQ(whole->size, uint64_t{200} << 20);
  EXPECT_TRUE(calls == 6 || calls == 3) << calls;  // 3: a reflink, which checks nothing
  if (calls == 6) stopped("copying", 0, 5);
}

}  // namespace
}  // namespace drover
