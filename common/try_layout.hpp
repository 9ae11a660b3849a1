// The folders of runs and tries under a drover home (DESIGN.md §5), named in one place:
//
//   HOME/runs/RUN/owner.lock            held by the `drover run` that owns RUN
//   HOME/runs/RUN/TASK.TRY/             one try's folder (TrySpec::try_dir), e.g. train.2
//                                       (drovers before session 7 made RUN/TASK/TRY/; a
//                                       record names its folder, so those are still read):
//       work/                           the task's cwd; declared outputs are collected here
//       inputs/UPSTREAM/...             upstream outputs, materialized read-only
//       log                             stdout and stderr, and "drover: ..." notes
//       result.json                     exit code, outputs, values, metrics, alerts
//       values.json, metrics.jsonl      what the task publishes (DROVER_VALUES_FILE,
//                                       DROVER_METRICS_FILE), read into result.json
//       environment.json                a train's interpreter and packages
//                                       (DROVER_ENVIRONMENT_FILE)
//       pid                             "PID START [WRITER WRITER_START]" (executor/proc.hpp)
//       dispatch                        "PID START" of the worker the try was handed to
//                                       (written by drovers before session 6; still read)
//   HOME/workers/PID                    "PID START", then the try folders that warm worker
//                                       holds (running, or handed to it to start), one a line
//
// The engine builds try folders from it, executors and workers read and write inside one,
// recovery reads them back. Pure functions of their arguments; thread-safe.
#pragma once

#include <filesystem>
#include <string>

namespace drover::layout {

inline std::filesystem::path runs_dir(const std::filesystem::path& home) { return home / "runs"; }
inline std::filesystem::path run_dir(const std::filesystem::path& home, const std::string& run) {
  return runs_dir(home) / run;
}
inline std::filesystem::path owner_lock(const std::filesystem::path& home, const std::string& run) {
  return run_dir(home, run) / "owner.lock";
}
inline std::filesystem::path try_dir(const std::filesystem::path& home, const std::string& run,
                                     const std::string& task, int try_number) {
  // One folder per try, not a task's folder with one per try in it: a new folder costs a
  // disk file system an inode and a block, and a try is made in the path of a chain's start.
  return run_dir(home, run) / (task + "." + std::to_string(try_number));
}
// The home a try folder lies in: HOME/runs/RUN/TASK.TRY, or HOME/runs/RUN/TASK/TRY (a try
// number alone) as drovers before session 7 made them.
inline std::filesystem::path home_of_try_dir(const std::filesystem::path& try_dir) {
  std::string name = try_dir.filename().string();
  bool old = !name.empty() && name.find_first_not_of("0123456789") == std::string::npos;
  std::filesystem::path run = old ? try_dir.parent_path().parent_path() : try_dir.parent_path();
  return run.parent_path().parent_path();
}
inline std::filesystem::path workers_dir(const std::filesystem::path& home) {
  return home / "workers";
}
inline std::filesystem::path worker_record(const std::filesystem::path& home, int pid) {
  return workers_dir(home) / std::to_string(pid);
}

// Inside a try's folder.
inline std::filesystem::path work(const std::filesystem::path& try_dir) { return try_dir / "work"; }
inline std::filesystem::path inputs(const std::filesystem::path& try_dir) {
  return try_dir / "inputs";
}
inline std::filesystem::path input(const std::filesystem::path& try_dir, const std::string& task) {
  return inputs(try_dir) / task;
}
inline std::filesystem::path log(const std::filesystem::path& try_dir) { return try_dir / "log"; }
inline std::filesystem::path result(const std::filesystem::path& try_dir) {
  return try_dir / "result.json";
}
inline std::filesystem::path pid(const std::filesystem::path& try_dir) { return try_dir / "pid"; }
// What the task publishes, by DROVER_VALUES_FILE and DROVER_METRICS_FILE.
inline std::filesystem::path values(const std::filesystem::path& try_dir) {
  return try_dir / "values.json";
}
inline std::filesystem::path metrics(const std::filesystem::path& try_dir) {
  return try_dir / "metrics.jsonl";
}
// What a train's Python helper writes about the interpreter and packages (a train sets
// DROVER_ENVIRONMENT_FILE to it).
inline std::filesystem::path environment(const std::filesystem::path& try_dir) {
  return try_dir / "environment.json";
}
inline std::filesystem::path dispatch(const std::filesystem::path& try_dir) {
  return try_dir / "dispatch";
}

}  // namespace drover::layout
