// Git facts of a DAG file for the run record: the commit of its repository and whether
// the work tree is dirty. Runs `git` with an argv (no shell). Thread-safe.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace drover {

struct GitInfo {
  std::string toplevel;  // empty when not in a git work tree
  std::string commit;
  bool dirty = false;
};

GitInfo git_info(const std::filesystem::path& dir);

}  // namespace drover
