// The one execution path of a try (DESIGN.md §2): materialize inputs from a BlobSource
// (executor/blob_source.hpp), run the task type with stdout/stderr in the try's log,
// collect declared outputs into that BlobSource and write result.json atomically. Runs in the try
// process (forked by a warm worker, or `drover exec`). Not thread-safe: it changes the process's
// cwd and fds.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "executor/blob_source.hpp"
#include "plugins/task_type.hpp"

namespace drover {

// Exit code of the task (0 success). result.json holds:
// {"exit_code", "error", "outputs":[FileEntry], "values":{}, "metrics":[{name,value,step}],
//  "alerts":[…], "model" (a train's version to register, when it succeeded),
//  "started_at","ended_at" (µs since epoch)}
// The same JSON is written to `result_fd` (when >= 0) at the end, also when result.json
// cannot be written (then with exit_code 1 at least and the error saying so).
int run_try(const TrySpec& spec, BlobSource& blobs, int result_fd = -1);

// The blobs of a try on this host: HOME/blobs of spec.home (LocalBlobSource).
std::unique_ptr<BlobSource> blob_source_for(const TrySpec& spec);

// The steps of run_try, for callers that run the task themselves (the worker spawns a
// `command` try's argv directly, with no try process in between):
// prepare_try makes the work dir and materializes the inputs;
Status prepare_try(const TrySpec& spec, BlobSource& blobs);
// try_environment is the task's whole environment: plain_environment (common/process.hpp)
// with the try's DROVER_* variables and its `env:` on top;
std::vector<std::string> try_environment(const TrySpec& spec);
// make_try_result collects declared outputs (when code == 0) and builds result.json's
// content with the final exit code (a declared output missing turns 0 into 1); it writes
// the reason of a failure into the log. write_try_result writes it atomically (not fsynced).
// `collect_by` bounds collection (the try's timeout, on the monotonic clock): a try whose
// outputs are still being collected then fails, so that the slot it holds is given back.
using CollectBy = std::optional<std::chrono::steady_clock::time_point>;
struct TryResult {
  int code = 0;
  nlohmann::json result;
};
// What a task type published through its Publisher (plugins/task_type.hpp).
struct Published {
  nlohmann::json values = nlohmann::json::object();
  nlohmann::json metrics = nlohmann::json::array();
  std::vector<FileEntry> files;
  nlohmann::json alerts = nlohmann::json::array();
  nlohmann::json model;  // Publisher::model's version to register; null: none
};
TryResult make_try_result(const TrySpec& spec, BlobSource& blobs, int code, std::string error,
                          long long started_us, Published pub = {},
                          long long ended_us = 0,  // 0: now
                          CollectBy collect_by = {});
Status write_try_result(const TrySpec& spec, const nlohmann::json& result);
// finish_try is both: it returns the final exit code (at least 1 when result.json cannot be
// written), and writes the result to `result_fd` as run_try does.
int finish_try(const TrySpec& spec, BlobSource& blobs, int code, std::string error,
               long long started_us, Published pub = {}, int result_fd = -1);

// Reads a finished try's result.json; null json when absent or unreadable.
nlohmann::json read_try_result(const std::string& try_dir);

}  // namespace drover
