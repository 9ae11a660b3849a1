// The hashing floor for bench/data_bench.sh: the least a program can do to SHA-256 a set of
// files from the page cache with the library drover links (OpenSSL EVP, SHA-NI where the
// CPU has it): THREADS threads take files from a shared counter and read each in 128 KiB
// blocks into the hash. No walk, no store, no records. Prints the wall seconds.
// Usage: hash_floor THREADS FILE...
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: hash_floor THREADS FILE...\n");
    return 2;
  }
  int threads = std::atoi(argv[1]);
  std::vector<const char*> files(argv + 2, argv + argc);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto t0 = std::chrono::steady_clock::now();
  auto work = [&] {
    std::vector<char> buf(128 << 10);
    for (size_t i; (i = next++) < files.size();) {
      int fd = ::open(files[i], O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        failed = true;
        return;
      }
      EVP_MD_CTX* ctx = EVP_MD_CTX_new();
      EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
      ssize_t n;
      while ((n = ::read(fd, buf.data(), buf.size())) > 0)
        EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned len = 0;
      EVP_DigestFinal_ex(ctx, md, &len);
      EVP_MD_CTX_free(ctx);
      ::close(fd);
      if (n < 0) failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.6f\n", s);
  return failed ? 1 : 0;
}
