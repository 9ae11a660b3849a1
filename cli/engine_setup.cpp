#include "cli/engine_setup.hpp"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "executor/proc.hpp"
#include "scheduler/alerts.hpp"
#include "scheduler/config.hpp"

namespace drover::cli {

std::string server_config_path(const std::filesystem::path& home, std::string config_file) {
  if (config_file.empty() && std::filesystem::exists(home / "config.yaml"))
    config_file = (home / "config.yaml").string();
  return config_file;
}

Result<ServerSetup> load_server(const std::filesystem::path& home, std::string config_file) {
  config_file = server_config_path(home, std::move(config_file));
  ServerSetup out;
  if (config_file.empty()) return out;
  auto cfg = load_server_config(config_file);
  if (!cfg) return cfg.error();
  for (auto& w : cfg->warnings) spdlog::warn("{}", w);
  out.secrets = cfg->secrets;
  out.dag_limits = cfg->dags;
  out.alerts = std::make_unique<AlertDispatcher>(std::move(*cfg));
  return out;
}

std::string self_exe() { return self_exe_path(); }

int default_slots() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 2;
}

std::string current_user() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
  return "unknown";
}

}  // namespace drover::cli
