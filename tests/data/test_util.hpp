// Helpers shared by the snapshot tests: temp folders, file writing, tree comparison.
// Test-only; not thread-safe.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace drover::data::testing {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "drover-snap-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (!p) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    // Blobs are read-only; make everything writable before removing.
    for (auto it = fs::recursive_directory_iterator(path_, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec))
      if (!it->is_symlink()) ::chmod(it->path().c_str(), 0755);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& s) const { return path_ / s; }

 private:
  fs::path path_;
};

inline void write(const fs::path& p, const std::string& content, int mode = 0644) {
  fs::create_directories(p.parent_path());
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ::chmod(p.c_str(), static_cast<mode_t>(mode));
}

inline std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sets every regular file's mtime an hour back, out of the stat cache's racy window.
inline void age_files(const fs::path& root) {
  struct timespec ts[2];
  ::clock_gettime(CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec -= 3600;
  ts[1] = ts[0];
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && !e.is_symlink()) ::utimensat(AT_FDCWD, e.path().c_str(), ts, 0);
  if (fs::is_regular_file(root)) ::utimensat(AT_FDCWD, root.c_str(), ts, 0);
}

// A description of a tree: path -> "file MODE CONTENT" | "link TARGET" | "dir[ empty]".
inline std::map<std::string, std::string> describe(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root)) {
    std::string rel = e.path().lexically_relative(root).string();
    struct stat st;
    ::lstat(e.path().c_str(), &st);
    if (S_ISLNK(st.st_mode)) {
      out[rel] = "link " + fs::read_symlink(e.path()).string();
    } else if (S_ISDIR(st.st_mode)) {
      out[rel] = fs::is_empty(e.path()) ? "dir empty" : "dir";
    } else {
      std::ostringstream m;
      m << std::oct << (st.st_mode & 07777);
      out[rel] = "file " + m.str() + " " + read(e.path());
    }
  }
  return out;
}

inline size_t count_blobs(const fs::path& home) {
  size_t n = 0;
  fs::path root = home / "blobs";
  if (!fs::exists(root)) return 0;
  for (auto& sub : fs::directory_iterator(root)) {
    if (sub.path().filename() == "tmp") continue;
    for (auto& f : fs::directory_iterator(sub.path())) {
      (void)f;
      ++n;
    }
  }
  return n;
}

}  // namespace drover::data::testing
