// Builds the resolved TrySpec of one try: its command, env and `with:` rendered from the
// DAG's templates (the names scheduler/template.hpp classifies), its inputs (the output
// files of every upstream it reads) and upstream values. What a try sees is decided here
// and nowhere else. Pure apart from the lookups it is given; not thread-safe only as far as
// they are not.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "plugins/task_type.hpp"
#include "scheduler/dag.hpp"
#include "scheduler/store.hpp"

namespace drover {

struct TrySpecContext {
  const RunRecord& run;
  const DagSpec& dag;
  std::filesystem::path home;  // absolute; the try's folder is under it (common/try_layout.hpp)
  std::string project_dir;     // {{ project_dir }}
  // The secret store; {{ secrets.NAME }} reads it first, then $DROVER_SECRET_NAME.
  const std::map<std::string, std::string>& secrets;
  // The latest successful try of a task of this run (0: none), and what that try published.
  std::function<int(const std::string& task)> successful_try;
  std::function<Result<json>(const std::string& task, int try_number)> values;
  std::function<Result<std::vector<FileRecord>>(const std::string& task, int try_number)> files;
  // The artifacts of the model version the run pinned for a task's `uses:`.
  std::function<Result<std::vector<FileRecord>>(const std::string& task)> model_files;
};

// An error (a template naming a value that is not there, a lookup that failed) fails the
// try before it starts, with that message.
Result<TrySpec> build_try_spec(const TrySpecContext& c, const TaskSpec& t, int try_number);

}  // namespace drover
