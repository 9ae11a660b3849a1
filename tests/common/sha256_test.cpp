// SHA-256 against the FIPS 180-2 test vectors, streamed and whole.
#include "common/sha256.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace drover {
namespace {

TEST(Sha256Test, MatchesTheStandardVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, StreamingAFileEqualsHashingItWhole) {
  auto path = std::filesystem::temp_directory_path() / "drover-sha-test.bin";
  std::string data;
  for (int i = 0; i < 3 * 1024 * 1024 + 17; ++i) data += static_cast<char>(i * 31);
  std::ofstream(path, std::ios::binary) << data;
  auto d = sha256_file(path);
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ(d->sha256, sha256_hex(data));
  EXPECT_EQ(d->size, data.size());
  std::filesystem::remove(path);
}

TEST(Sha256Test, AMissingFileIsAnErrorNamingIt) {
  auto d = sha256_file("/nonexistent/drover");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.message(), "/nonexistent/drover: No such file or directory");
}

}  // namespace
}  // namespace drover
