// Starting child processes for task types: posix_spawn (no shell, argv as given), the
// child stays in the caller's process group so a kill of the try's group reaches it.
// Thread-safe.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace drover {

// Runs argv[0] (looked up on PATH when it has no '/') with the current environment plus
// `extra_env`, in `cwd`, inheriting stdin/stdout/stderr; waits. Returns the exit code, or
// 128 + signal when a signal ended it. An error when it could not be started.
Result<int> spawn_and_wait(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& extra_env,
                           const std::filesystem::path& cwd);

// The current environment with `extra` set on top, as "NAME=value" strings.
std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra);

}  // namespace drover
