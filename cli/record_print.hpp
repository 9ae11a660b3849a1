// Prints a run record (the JSON of scheduler/store_json.hpp) for people: header, per-task
// table, inputs and outputs with short hashes. Shared by `runs show` and `run`.
#pragma once

#include <nlohmann/json.hpp>

namespace drover::cli {

void print_run_record(const nlohmann::json& record);

}  // namespace drover::cli
