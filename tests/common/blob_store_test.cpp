// The content-addressed blob store: dedup, atomic writes, read-only blobs, materialize.
#include "common/blob_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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
  EXPECT_EQ(store.path_of(a->sha256),
            dir / "blobs" / a->sha256.substr(0, 2) / a->sha256.substr(2));
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

TEST_F(BlobStoreTest, InvalidHashesAreRefusedNotLookedUp) {
  BlobStore store(dir / "blobs");
  EXPECT_FALSE(BlobStore::valid_hash("../../etc/passwd"));
  EXPECT_FALSE(store.has("../../etc/passwd"));
  auto r = store.materialize("../x", dir / "y");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "invalid blob hash '../x'");
}

}  // namespace
}  // namespace drover
