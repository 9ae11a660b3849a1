// The `command` task type: runs `run:` (an argv, or a string under /bin/sh -c with every
// substituted value shell-quoted — the daemon renders it). Declared `outputs:` are
// collected by the try runner for every type.
#include <cstdio>

#include "common/process.hpp"
#include "plugins/task_type.hpp"

namespace drover {
namespace {

class CommandTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "command"; }
  RunField run_field() const override { return RunField::Required; }
  void validate(const json& with, std::vector<ConfigError>& errors) const override {
    if (!with.is_object() || !with.empty())
      errors.push_back({"", "task type 'command' takes no 'with:' block"});
  }
  int run(TaskContext& ctx) const override { return run_task_command(ctx.spec.argv); }
};

}  // namespace

int run_task_command(const std::vector<std::string>& argv,
                     std::optional<std::vector<std::string>> env) {
  // The try process has stdin /dev/null and stdout/stderr on the log: the command
  // inherits those three and nothing else, and stays in the try's process group.
  SpawnOptions o;
  o.argv = argv;
  o.env = std::move(env);
  o.in = ChildFd::inherit();
  o.new_process_group = false;
  auto rc = run_child(o);
  if (!rc) {
    std::fprintf(stderr, "drover: %s\n", rc.message().c_str());
    return 127;
  }
  return *rc;
}

std::unique_ptr<TaskType> make_command_task_type() { return std::make_unique<CommandTaskType>(); }

}  // namespace drover
