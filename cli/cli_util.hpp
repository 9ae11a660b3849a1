// Helpers shared by the subcommands: argument parsing with Drover's exit codes, the error
// line, the client options of the daemon's CLI clients (--home, --server, where the token
// comes from), and formatting of API JSON for tables. Header-only; thread-safe (no state).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/command.hpp"
#include "cli/engine_setup.hpp"
#include "web/client.hpp"

namespace drover::cli {

// Parses argv into `app`. Returns -1 to go on, or the exit code to return now: 0 after
// --help, kExitUsage after a usage error (CLI11 has printed the message; with
// `help_on_error` the help follows it on stderr).
inline int parse_args(CLI::App& app, int argc, char** argv, bool help_on_error = false) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e) == 0 ? kExitOk : kExitUsage;
    app.exit(e);
    if (help_on_error) std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  return -1;
}

// Prints "drover: MESSAGE" on stderr and returns kExitFailure.
inline int fail(const std::string& message) {
  std::fprintf(stderr, "drover: %s\n", message.c_str());
  return kExitFailure;
}

// The options every client of the daemon takes (trigger, runs, logs, cancel, dags). The
// server is --server, else $DROVER_SERVER, else HOME/server.json; the token $DROVER_TOKEN,
// else the token file HOME/token (web/client.hpp, resolve_client).
struct ClientOptions {
  std::string home;    // --home; empty: ./.drover
  std::string server;  // --server; empty: look further

  std::filesystem::path home_dir() const { return home.empty() ? ".drover" : home; }
};

inline void add_client_options(CLI::App* app, ClientOptions& o) {
  app->add_option("--home", o.home, "The daemon's state folder (default ./.drover)");
  app->add_option("--server", o.server,
                  "The daemon's URL (default: $DROVER_SERVER, HOME/server.json)");
}

// A reading command's options: the client's, and --json (print the daemon's JSON).
struct ReadOptions {
  ClientOptions client;
  bool json = false;
};

inline void add_read_options(CLI::App* app, ReadOptions& o) {
  app->add_flag("--json", o.json, "Print the daemon's JSON");
  add_client_options(app, o.client);
}

inline Result<ClientConfig> client_config(const ClientOptions& o) {
  return ::drover::resolve_client(o.home, o.server);
}

// Where a reading command (runs, logs) gets its answers: the daemon when one is configured;
// else, when no --server was given and HOME holds a store (what `drover run` wrote), that
// store directly. Exactly one of the two is set; the error is resolve_client's.
struct ClientSource {
  std::optional<ClientConfig> daemon;
  std::filesystem::path store;  // non-empty: read this SQLite store directly
};

inline Result<ClientSource> resolve_source(const ClientOptions& o) {
  auto config = client_config(o);
  ClientSource src;
  if (config) {
    src.daemon = std::move(*config);
    return src;
  }
  std::error_code ec;
  if (o.server.empty() && std::filesystem::exists(store_path(o.home_dir()), ec)) {
    src.store = store_path(o.home_dir());
    return src;
  }
  return config.error();
}

// A JSON field as table text: "-" when absent, null or empty.
inline std::string str(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "-";
  const nlohmann::json& v = j[key];
  if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// An ISO time without its fractional seconds, for tables: "2026-11-25T10:06:00Z".
inline std::string when(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "-";
  std::string t = j[key].get<std::string>();
  auto dot = t.find('.');
  if (dot == std::string::npos) return t;
  auto end = t.find_first_not_of("0123456789", dot + 1);
  return t.substr(0, dot) + (end == std::string::npos ? "" : t.substr(end));
}

}  // namespace drover::cli
