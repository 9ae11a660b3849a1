// Prints a run record (the JSON of scheduler/store_json.hpp) for people: header, per-task
// table, inputs and outputs with short hashes, and each failed try's error with the last
// lines of its log. Shared by `runs show` and `run`; implemented in cli/cmd_runs.cpp.
// Thread-safe except that the printers write to stdout/the FILE given.
#pragma once

#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace drover::cli {

constexpr int kLogTailLines = 10;                       // log lines shown per failed try
constexpr unsigned long long kLogTailBytes = 64 << 10;  // at most this much is read for them

// The last `lines` lines of a try's log (`t` is one entry of the record's "tasks"), or why
// they cannot be read.
using LogTail = std::function<Result<std::string>(const nlohmann::json& t, int lines)>;

// The last `lines` lines of `text`, each ending in '\n'. With `cut`, text starts mid-line
// (a tail of a longer file) and its first, partial line is dropped when others remain.
std::string last_lines(std::string_view text, int lines, bool cut);

// The last `lines` lines of the file at `path`, reading at most its last kLogTailBytes.
// Errors: "PATH: strerror".
Result<std::string> tail_file(const std::string& path, int lines);

// tail_file of the try's "log" path, read on this machine.
Result<std::string> local_log_tail(const nlohmann::json& t, int lines);

// What a failed try says went wrong: its recorded error, else "killed by signal N",
// "exit code N", or its state.
std::string try_error(const nlohmann::json& t);

// One block per try whose state is failed, timed_out or lost, in record order:
//   Failed tries:
//     TASK (try N): ERROR
//       log: PATH (last N lines)
//       | line
// Empty when no try failed.
std::string format_failures(const nlohmann::json& record, const LogTail& tail = local_log_tail,
                            int lines = kLogTailLines);

// Header, task table, files; then, with `with_failures`, a blank line and format_failures.
void print_run_record(const nlohmann::json& record, bool with_failures = true,
                      const LogTail& tail = local_log_tail);

}  // namespace drover::cli
