// Subcommands of the `drover` binary. Each lives in its own cli/cmd_*.cpp and registers
// itself with DROVER_COMMAND; cli/main.cpp dispatches on argv[1]. Exit codes shared by all
// commands: 0 success, 1 failure (a failed run, invalid input), 2 usage error; commands
// document any others in their --help.
#pragma once

#include <map>
#include <string>

namespace drover::cli {

// argv[0] is "drover NAME" for help output; argv[1..] are the command's own arguments.
using CommandFn = int (*)(int argc, char** argv);

struct CommandDef {
  std::string summary;
  CommandFn fn;
  bool hidden = false;  // internal commands (worker, exec) are not listed in --help
};

std::map<std::string, CommandDef>& commands();

struct CommandRegistrar {
  CommandRegistrar(const char* name, const char* summary, CommandFn fn, bool hidden = false) {
    commands()[name] = CommandDef{summary, fn, hidden};
  }
};

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace drover::cli

#define DROVER_CONCAT_(a, b) a##b
#define DROVER_CONCAT(a, b) DROVER_CONCAT_(a, b)
#define DROVER_COMMAND(name, summary, fn) \
  static ::drover::cli::CommandRegistrar DROVER_CONCAT(drover_cmd_, __LINE__)(name, summary, fn)
#define DROVER_INTERNAL_COMMAND(name, summary, fn)                                               \
  static ::drover::cli::CommandRegistrar DROVER_CONCAT(drover_cmd_, __LINE__)(name, summary, fn, \
                                                                              true)
