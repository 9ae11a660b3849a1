// Shared set-up of the commands that run the engine (serve, run): the store path, the
// path of this binary (for workers), the default slot count.
#pragma once

#include <filesystem>
#include <string>

namespace drover::cli {

inline std::filesystem::path store_path(const std::filesystem::path& home) {
  return home / "drover.db";
}
std::string self_exe();
int default_slots();
std::string current_user();

}  // namespace drover::cli
