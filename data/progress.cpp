#include "data/progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace drover::data {

std::string human_bytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 5) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, uint64_t total_items, bool enabled)
    : label_(std::move(label)), total_(total_items), enabled_(enabled) {
  if (!enabled_) return;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (!stop_) draw();
    }
  });
}

Progress::~Progress() {
  if (!enabled_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  draw();
  std::fputc('\n', stderr);
}

void Progress::draw() {
  uint64_t done = items_.load(std::memory_order_relaxed);
  uint64_t pct = total_ ? done * 100 / total_ : 100;
  constexpr int kWidth = 30;
  int filled = static_cast<int>(pct * kWidth / 100);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r%s [%s] %3llu%% %llu/%llu files %s  ", label_.c_str(), bar.c_str(),
               static_cast<unsigned long long>(pct), static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total_),
               human_bytes(bytes_.load(std::memory_order_relaxed)).c_str());
  std::fflush(stderr);
}

}  // namespace drover::data
