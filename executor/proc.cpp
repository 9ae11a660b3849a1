#include "executor/proc.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/fs.hpp"
#include "common/try_layout.hpp"

namespace drover {

static bool read_stat(int pid, char& state, long long& start) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  // Fields after ")": 3=state ... 22=starttime.
  rest >> state;
  for (int i = 4; i <= 22; ++i) rest >> field;
  start = std::atoll(field.c_str());
  return true;
}

std::string self_exe_path() {
  // Read once: the binary this process started from, even if the file is replaced later.
  static const std::string path = [] {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return std::string("drover");
    buf[n] = 0;
    return std::string(buf);
  }();
  return path;
}

long long process_start_ticks(int pid) {
  char state;
  long long start = 0;
  return read_stat(pid, state, start) ? start : 0;
}

bool process_alive(int pid, long long start) {
  if (pid <= 0) return false;
  char state = 0;
  long long s = 0;
  if (!read_stat(pid, state, s)) return false;
  if (state == 'Z' || state == 'X') return false;
  return start == 0 || s == start;
}

PidFile read_pid_file(const std::string& try_dir) {
  PidFile p;
  std::ifstream in(layout::pid(try_dir));
  in >> p.pid >> p.start;
  if (!in) return {};
  if (!(in >> p.writer >> p.writer_start)) p.writer = 0, p.writer_start = 0;
  return p;
}

void write_pid_file(const std::string& try_dir, int pid, long long start, int writer,
                    long long writer_start) {
  std::string text = std::to_string(pid) + " " + std::to_string(start);
  if (writer > 0) text += " " + std::to_string(writer) + " " + std::to_string(writer_start);
  text += "\n";
  // No fsync: after a machine crash the process is gone anyway.
  std::string tmp = try_dir + "/pid.tmp";
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fputs(text.c_str(), f);
    std::fclose(f);
    std::rename(tmp.c_str(), layout::pid(try_dir).c_str());
  }
}

}  // namespace drover
