// `drover worker` (internal): a warm worker process of the local executor.
// `drover exec SPEC.json` (internal): runs one try from a spec file, here (what Slurm or a
// shell launches). Both share executor/try_runner.
#include <cstdio>
#include <cstring>

#include "cli/command.hpp"
#include "executor/worker.hpp"

namespace {

int cmd_worker(int argc, char** argv) {
  if (argc > 1) {
    std::fprintf(argc > 1 && !std::strcmp(argv[1], "--help") ? stdout : stderr,
                 "Usage: drover worker\n\nInternal: reads try specs as JSON lines on stdin and "
                 "runs them (started by the local executor).\nExit codes: 0 end of input.\n");
    return std::strcmp(argv[1], "--help") ? drover::cli::kExitUsage : 0;
  }
  return drover::worker_main(0, 1);
}

int cmd_exec(int argc, char** argv) {
  if (argc != 2 || !std::strcmp(argv[1], "--help")) {
    std::fprintf(argc == 2 ? stdout : stderr,
                 "Usage: drover exec SPEC.json\n\nInternal: runs one task try from a resolved "
                 "spec, in this process.\nExit codes: the task's exit code; 1 on a bad spec.\n");
    return argc == 2 ? 0 : drover::cli::kExitUsage;
  }
  return drover::exec_try_file(argv[1]);
}

}  // namespace

DROVER_INTERNAL_COMMAND("worker", "Run tries handed over stdin (internal)", cmd_worker);
DROVER_INTERNAL_COMMAND("exec", "Run one try from a spec file (internal)", cmd_exec);
