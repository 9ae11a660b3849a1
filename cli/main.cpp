// Entry point: dispatches `drover NAME ...` to the registered subcommand.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "cli/command.hpp"
#include "common/process.hpp"
#include "plugins/task_type.hpp"

namespace drover::cli {

std::map<std::string, CommandDef>& commands() {
  static std::map<std::string, CommandDef> table;
  return table;
}

static void usage(FILE* out) {
  std::fprintf(out,
               "Usage: drover COMMAND [ARGS...]\n\n"
               "Drover runs ML pipelines (DAG files) on schedule, records every run with its\n"
               "exact inputs and outputs, and has the ML steps built in.\n\nCommands:\n");
  for (auto& [name, def] : commands())
    if (!def.hidden) std::fprintf(out, "  %-10s %s\n", name.c_str(), def.summary.c_str());
  std::fprintf(out,
               "\nRun 'drover COMMAND --help' for a command's options.\n"
               "Exit codes: 0 success, 1 failure, 2 usage error.\n");
}

}  // namespace drover::cli

int main(int argc, char** argv) {
  using namespace drover::cli;
  // Descriptors inherited from our own parent (a shell's, a supervisor's) never pass on.
  drover::cloexec_all_above_stdio();
  drover::register_builtin_task_types();
  // Logs go to stderr: stdout belongs to the command's output (--json and friends).
  spdlog::set_default_logger(spdlog::stderr_color_mt("drover"));
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("drover 0.1.0\n");
    return kExitOk;
  }
  auto it = commands().find(argv[1]);
  if (it == commands().end()) {
    std::fprintf(stderr, "drover: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return kExitUsage;
  }
  std::string prog = std::string("drover ") + argv[1];
  argv[1] = prog.data();
  return it->second.fn(argc - 1, argv + 1);
}
