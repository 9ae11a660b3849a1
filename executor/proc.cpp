#include "executor/proc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/fs.hpp"
#include "common/try_layout.hpp"

namespace drover {

static bool read_stat(int pid, char& state, long long& start) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  // "PID (COMM) STATE ...": COMM may hold spaces and ')', so fields count from the last ')'.
  char* p = std::strrchr(buf, ')');
  if (!p || p[1] != ' ' || !p[2]) return false;
  p += 2;
  state = *p;
  // Fields after ")": 3=state ... 22=starttime.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (!p) return false;
    ++p;
  }
  start = std::atoll(p);
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
  // Written once in place (write_file_once): without its final newline it is not there yet,
  // or its writer died writing it.
  auto text = read_file(layout::pid(try_dir), 256);
  if (!text || text->empty() || text->back() != '\n') return {};
  PidFile p;
  int n =
      std::sscanf(text->c_str(), "%d %lld %d %lld", &p.pid, &p.start, &p.writer, &p.writer_start);
  if (n < 2 || p.pid <= 0) return {};
  if (n < 4) p.writer = 0, p.writer_start = 0;
  return p;
}

static std::string pid_line(int pid, long long start, int writer, long long writer_start) {
  std::string text = std::to_string(pid) + " " + std::to_string(start);
  if (writer > 0) text += " " + std::to_string(writer) + " " + std::to_string(writer_start);
  return text + "\n";
}

void write_pid_file(const std::string& try_dir, int pid, long long start, int writer,
                    long long writer_start) {
  // No fsync: after a machine crash the process is gone anyway.
  (void)write_file_once(layout::pid(try_dir), pid_line(pid, start, writer, writer_start));
}

int claim_pid_file(const std::string& try_dir) {
  return ::open(layout::pid(try_dir).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0644);
}

void write_claimed_pid_file(int fd, int pid, long long start, int writer, long long writer_start) {
  if (fd < 0) return;
  (void)write_all(fd, pid_line(pid, start, writer, writer_start));
  ::close(fd);
}

bool disarm_pid_file(const std::string& try_dir) {
  // The folder may not be there yet: the worker makes it when it prepares the try.
  (void)make_dirs(try_dir);
  int fd = ::open(layout::pid(try_dir).c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  (void)write_all(fd, "disarmed\n");
  ::close(fd);
  return true;
}

}  // namespace drover
