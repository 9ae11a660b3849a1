// The run record of DESIGN.md §5 as JSON: the one shape behind `drover runs show --json`
// and `GET /api/v1/runs/{run}`, plus the short summary used by listings. Built from any
// Store; pure functions of what the store returns (thread-safe as the Store is).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.hpp"
#include "scheduler/store.hpp"

namespace drover {

// The full record of run `run_id`: run fields, git, trigger, data interval, timestamps
// (ISO 8601 UTC, null when absent), `tasks` (one entry per try, tasks in the order the run
// created them, then by try number, with files, values and metrics) and `task_states`
// ({task: state}, including tasks that never ran). Errc::NotFound when no such run.
Result<json> run_record_json(Store& store, const std::string& run_id);

// The listing line of a run: id, dag, seq, state, trigger {kind, user}, logical_date,
// created_at, started_at, ended_at.
json run_summary_json(const RunRecord& run);

// A listing: {"runs": [summary...]}, newest first, as Store::list_runs filters it.
Result<json> run_listing_json(Store& store, const RunFilter& filter);

}  // namespace drover
