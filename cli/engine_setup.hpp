// Shared set-up of the commands that run the engine (serve, run): the server config, the
// store path, the path of this binary (for workers), the default slot count.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "scheduler/dag_loader.hpp"

namespace drover {
class AlertDispatcher;
}

namespace drover::cli {

// The server config file a command reads: `config_file` when given, else HOME/config.yaml
// when it exists, else "" (none). serve, run and lint share this rule.
std::string server_config_path(const std::filesystem::path& home, std::string config_file);

// What the engine takes from the server config (server_config_path): the alert dispatcher
// (null when there is no config), the secret store and the DAG file limits.
struct ServerSetup {
  std::unique_ptr<AlertDispatcher> alerts;
  std::map<std::string, std::string> secrets;
  DagLimits dag_limits;
};
// Prints the config's warnings; an invalid config is an error with file:line:col.
Result<ServerSetup> load_server(const std::filesystem::path& home, std::string config_file);

inline std::filesystem::path store_path(const std::filesystem::path& home) {
  return home / "drover.db";
}
std::string self_exe();
int default_slots();
std::string current_user();

}  // namespace drover::cli
