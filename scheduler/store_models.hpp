// The model registry as people use it (docs/models.md): a reference (`NAME`, `NAME/V`,
// `NAME@ALIAS`, common/model_ref.hpp) resolved to a version, the JSON shapes behind
// `drover models … --json` and the API, and an alias move with its checks. Built on any
// Store; pure functions of what the store returns (thread-safe as the Store is).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.hpp"
#include "common/model_ref.hpp"
#include "common/result.hpp"
#include "scheduler/store.hpp"

namespace drover {

// The version `ref` names: NAME/V, the version NAME@ALIAS names now, or NAME's latest.
// Errc::NotFound saying which part is missing ("no model 'x'", "model 'x' has no alias
// 'production'", "no version 7 of model 'x'").
Result<ModelVersion> resolve_model_ref(Store& store, const models::ModelRef& ref);

// {"models": [{name, versions, latest, aliases {alias: version}, created_at, updated_at}]}
Result<json> models_listing_json(Store& store);

// One version: name, version, ref ("NAME/V"), run, task, try, params, metrics,
// step_metrics, artifacts[] {path, size, sha256, mode}, inputs[] {path, sha256, size,
// from_task, dataset, dataset_version}, dag, dag_hash, git {commit, dirty}, environment,
// description, aliases[] (those naming it now), validations[] {run, task, try, passed, at,
// gates} oldest first, created_at.
Result<json> model_version_json(Store& store, const models::ModelRef& ref);

// {"name", "events": [{seq, alias, from, to, by, at, reason, run, forced}]}, oldest first.
Result<json> alias_history_json(Store& store, const std::string& name);

// Moves NAME's `alias` to `version` as one event (Store::move_alias, from the version it
// names now) and returns the event as alias_history_json gives it. Errc::Invalid for a bad
// alias; Errc::NotFound for a version that is not there; Errc::Conflict when the alias names
// `version` already (nothing to record), when another move won the race, or, unless
// `force`, when the version's latest validation did not pass or none ran.
struct AliasMove {
  std::string name, alias;
  int64_t version = 0;
  std::string by, reason, run_id;
  bool force = false;
  TimePoint at{};
};
Result<json> move_model_alias(Store& store, const AliasMove& move);

}  // namespace drover
