// Helpers shared by the subcommands: argument parsing with Drover's exit codes, the error
// line, and formatting of API JSON for tables. Header-only; thread-safe (pure functions).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"

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
