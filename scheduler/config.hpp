// ServerConfig: the daemon's own config file (`drover serve --config FILE`, default
// HOME/config.yaml): alert channels, the UI link base, secrets, the DAG file limits (also
// read by `drover run` and `drover lint`). Parsed and validated by
// load_server_config() in scheduler/config.cpp; a plain value, safe to share once loaded.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "scheduler/dag_loader.hpp"

namespace drover {

// One named alert channel (`alerts.channels.NAME`).
struct AlertChannel {
  enum class Type { Webhook, Email, Command };
  std::string name;
  Type type = Type::Webhook;
  // webhook
  std::string url;
  // email
  std::string smtp;  // smtp://host:port or smtps://host:port
  std::string from;
  std::vector<std::string> to;
  bool starttls = false;
  std::string username_env, password_env;  // names of environment variables, never values
  // command
  std::vector<std::string> run;  // argv, no shell
  // webhook (https) and email (TLS): a PEM file of CA certificates to trust instead of the
  // system's (an internal CA, or a test's own)
  std::string ca_file;
  // every type: one delivery attempt is abandoned after this long
  Micros timeout = std::chrono::seconds(30);

  static const char* type_name(Type t);
};

struct AlertsConfig {
  std::map<std::string, AlertChannel> channels;
  int retries = 3;                               // retries after the first attempt
  Micros retry_delay = std::chrono::seconds(2);  // doubles each retry
};

struct ServerConfig {
  std::string path;  // the file it came from ("" when built in code)
  AlertsConfig alerts;
  std::string ui_url;  // base for links to runs, e.g. http://127.0.0.1:8080
  // The secret store: `secrets: {NAME: value}`, read by {{ secrets.NAME }} (before the
  // environment's DROVER_SECRET_NAME). Values are redacted from logs and records.
  std::map<std::string, std::string> secrets;
  // `dags: {max_file_bytes, max_yaml_nodes}`: the bounds on every DAG file loaded (the DAG
  // folder, `drover run`, `drover lint`, recovery's reload of a run's stored DAG).
  DagLimits dags;
  // Sections owned by other modules, kept as JSON for them (e.g. "remotes").
  nlohmann::json extra = nlohmann::json::object();
  std::vector<std::string> warnings;  // e.g. a group/other-readable file
};

// Parses YAML text. Errors are "FILE:LINE:COL: message", one per line, every problem found.
Result<ServerConfig> parse_server_config(std::string_view text, const std::string& file);
// Reads and parses `path`; warns (spdlog + `warnings`) when it is group/other-readable.
Result<ServerConfig> load_server_config(const std::filesystem::path& path);

// The link to a run in the UI: "{ui_url}/runs/{run_id}", or "" when either is empty.
std::string run_url(const std::string& ui_url, const std::string& run_id);

}  // namespace drover
