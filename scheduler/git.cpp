#include "scheduler/git.hpp"

#include <vector>

#include "common/process.hpp"

namespace drover {

GitInfo git_info(const std::filesystem::path& dir) {
  GitInfo g;
  auto top = capture_child({"git", "-C", dir.string(), "rev-parse", "--show-toplevel"});
  if (top.code != 0) return g;
  g.toplevel = top.out;
  auto head = capture_child({"git", "-C", dir.string(), "rev-parse", "HEAD"});
  if (head.code == 0) g.commit = head.out;
  auto st = capture_child(
      {"git", "-C", dir.string(), "status", "--porcelain", "--untracked-files=no"});
  g.dirty = st.code != 0 || !st.out.empty();
  return g;
}

}  // namespace drover
