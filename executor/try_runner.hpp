// The one execution path of a try (DESIGN.md §2): materialize inputs from the blob store,
// run the task type with stdout/stderr in the try's log, collect declared outputs into the
// blob store and write result.json atomically. Runs in the try process (forked by a warm
// worker, or `drover exec`). Not thread-safe: it changes the process's cwd and fds.
#pragma once

#include <nlohmann/json.hpp>

#include "plugins/task_type.hpp"

namespace drover {

// Exit code of the task (0 success). result.json holds:
// {"exit_code", "error", "outputs":[FileEntry], "values":{}, "metrics":[{name,value,step}],
//  "started_at","ended_at" (µs since epoch)}
int run_try(const TrySpec& spec);

// Reads a finished try's result.json; null json when absent or unreadable.
nlohmann::json read_try_result(const std::string& try_dir);

}  // namespace drover
