// Progress: a one-line progress bar on stderr ("hashing  42% 1200/2900 files 1.2 GB"),
// redrawn at most 10 times a second by its own thread, shown only when enabled (the CLI
// enables it when stderr is a terminal). add() is thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace drover::data {

class Progress {
 public:
  Progress(std::string label, uint64_t total_items, bool enabled);
  ~Progress();  // draws the final state and ends the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t items, uint64_t bytes) {
    items_.fetch_add(items, std::memory_order_relaxed);
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  static bool stderr_is_terminal();

 private:
  void draw();
  std::string label_;
  uint64_t total_;
  bool enabled_;
  std::atomic<uint64_t> items_{0}, bytes_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// "1.2 GB", "340 KB", "12 B" (powers of 1000).
std::string human_bytes(uint64_t n);

}  // namespace drover::data
