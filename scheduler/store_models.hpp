// The model registry as people use it (docs/models.md): a reference (`NAME`, `NAME/V`,
// `NAME@ALIAS`, common/model_ref.hpp) resolved to a version, the JSON shapes behind
// `drover models … --json` and the API, an alias move with its checks, and tag and
// description changes with theirs. Built on any Store; pure functions of what the store
// returns (thread-safe as the Store is).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/model_ref.hpp"
#include "common/result.hpp"
#include "scheduler/store.hpp"

namespace drover {

// The version `ref` names: NAME/V, the version NAME@ALIAS names now, or NAME's latest.
// Errc::NotFound saying which part is missing ("no model 'x'", "model 'x' has no alias
// 'production'", "no version 7 of model 'x'").
Result<ModelVersion> resolve_model_ref(Store& store, const models::ModelRef& ref);

// {"models": [{name, versions, latest, aliases {alias: version}, created_at, updated_at}]}.
// With `tagged` (KEY, VALUE pairs), only the models with a version that has every one of
// those tags now, each with "tagged": those versions, ascending.
using TagFilter = std::vector<std::pair<std::string, std::string>>;
Result<json> models_listing_json(Store& store, const TagFilter& tagged = {});

// One version: name, version, ref ("NAME/V"), run, task, try, params, metrics,
// step_metrics, artifacts[] {path, size, sha256, mode}, inputs[] {path, sha256, size,
// from_task, dataset, dataset_version}, dag, dag_hash, git {commit, dirty}, environment,
// description (the latest edit's, else the train's), description_events[] {seq,
// description, by, at}, tags {key: value} (now), tag_events[] {seq, key, value (null: removed),
// by, at}, aliases[] (those naming it now), validations[] {run, task, try, passed, at, gates},
// created_at; every list oldest first.
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

// Sets (a value) or removes (nullopt) tags of the version `ref` names: one event per key
// whose tag changes, all recorded or none; a key set to the value it has already records
// nothing. Returns {"ref", "tags" (after), "events": [the events recorded]}. Errc::Invalid,
// naming the tag, for a key that is not [A-Za-z0-9_.-]{1,64}, a value that is not UTF-8, is
// over 1024 bytes or holds a control character, or a key given twice; Errc::NotFound for an
// unknown ref, or a removal of a key the version does not have. Two changes of one key at
// once both record: the later event is the tag.
struct TagChange {
  models::ModelRef ref;
  std::vector<std::pair<std::string, std::optional<std::string>>> tags;  // in order
  std::string by;
  TimePoint at{};
};
Result<json> change_model_tags(Store& store, const TagChange& change);

// Sets the description of the version `ref` names as one edit event (none when it is the
// description already). Returns {"ref", "description", "events": [the event recorded]}.
// Errc::Invalid for a text that is not UTF-8, is over 4096 bytes or holds a control
// character other than tab and newline; Errc::NotFound for an unknown ref.
struct DescriptionEdit {
  models::ModelRef ref;
  std::string description;
  std::string by;
  TimePoint at{};
};
Result<json> describe_model_version(Store& store, const DescriptionEdit& edit);

}  // namespace drover
