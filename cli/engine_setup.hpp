// Shared set-up of the commands that run the engine (serve, run): the store path, the
// path of this binary (for workers), the default slot count.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace drover {
class AlertDispatcher;
}

namespace drover::cli {

// The alert dispatcher of the server config `config_file` (default HOME/config.yaml when
// it exists; null when there is no config). Prints the config's warnings; an invalid
// config is an error with file:line:col.
Result<std::unique_ptr<AlertDispatcher>> load_alerts(const std::filesystem::path& home,
                                                     std::string config_file);

inline std::filesystem::path store_path(const std::filesystem::path& home) {
  return home / "drover.db";
}
std::string self_exe();
int default_slots();
std::string current_user();

}  // namespace drover::cli
