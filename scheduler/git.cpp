#include "scheduler/git.hpp"

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "common/process.hpp"

namespace drover {

namespace fs = std::filesystem;

GitInfo git_info(const fs::path& dir) {
  GitInfo g;
  auto top = capture_child({"git", "-C", dir.string(), "rev-parse", "--show-toplevel"});
  if (top.code != 0) return g;
  g.toplevel = top.out;
  auto head = capture_child({"git", "-C", dir.string(), "rev-parse", "HEAD"});
  if (head.code == 0) g.commit = head.out;
  auto st =
      capture_child({"git", "-C", dir.string(), "status", "--porcelain", "--untracked-files=no"});
  g.dirty = st.code != 0 || !st.out.empty();
  return g;
}

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// The .git folder above `dir` ("" when none, or when .git is a file: worktrees and
// submodules, which the cheap path leaves to git itself).
fs::path find_git_dir(fs::path dir) {
  std::error_code ec;
  dir = fs::absolute(dir, ec);
  for (; !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / ".git", ec)) return dir / ".git";
    if (fs::exists(dir / ".git", ec)) return {};
    if (dir == dir.root_path()) break;
  }
  return {};
}

// HEAD's commit from the files of `git_dir` (loose ref or packed-refs); "" when unsure.
std::string head_commit(const fs::path& git_dir) {
  std::string head = slurp(git_dir / "HEAD");
  if (head.rfind("ref: ", 0) != 0) return head;  // detached
  std::string ref = head.substr(5);
  std::string loose = slurp(git_dir / ref);
  if (!loose.empty()) return loose;
  std::ifstream packed(git_dir / "packed-refs");
  std::string line;
  while (std::getline(packed, line))
    if (line.size() > 41 && line.compare(41, std::string::npos, ref) == 0)
      return line.substr(0, 40);
  return "";
}

struct Stamp {
  std::string commit;
  long long index_mtime = 0, index_size = 0, file_mtime = 0, file_size = -1;
  bool operator==(const Stamp&) const = default;
};

long long mtime_ns(const struct stat& st) {
  return static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

struct Entry {
  Stamp stamp;
  GitInfo info;
  std::chrono::steady_clock::time_point at;
};

std::mutex g_mu;
std::map<std::string, Entry> g_cache;

}  // namespace

GitInfo git_info_cached(const fs::path& dir, const fs::path& file,
                        std::chrono::milliseconds max_age) {
  fs::path git_dir = find_git_dir(dir);
  // No .git folder above (not a repository, or a worktree whose .git is a file): only the
  // age bound and the DAG file's stamp decide.
  Stamp stamp;
  if (!git_dir.empty()) stamp.commit = head_commit(git_dir);
  struct stat st;
  if (!git_dir.empty() && ::stat((git_dir / "index").c_str(), &st) == 0) {
    stamp.index_mtime = mtime_ns(st);
    stamp.index_size = st.st_size;
  }
  if (!file.empty() && ::stat(file.c_str(), &st) == 0) {
    stamp.file_mtime = mtime_ns(st);
    stamp.file_size = st.st_size;
  }
  auto now = std::chrono::steady_clock::now();
  std::string key = fs::absolute(dir).lexically_normal().string();
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end() && it->second.stamp == stamp && now - it->second.at < max_age &&
        (git_dir.empty() || !stamp.commit.empty()))
      return it->second.info;
  }
  GitInfo info = git_info(dir);
  std::lock_guard<std::mutex> lock(g_mu);
  g_cache[key] = Entry{stamp, info, now};
  return info;
}

}  // namespace drover
