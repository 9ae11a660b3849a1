// The Service the API calls (scheduler/service.hpp), on the Engine's state and store.
#include "common/time.hpp"
#include "scheduler/engine_impl.hpp"
#include "scheduler/store_json.hpp"
#include "scheduler/store_models.hpp"

namespace drover {

using namespace engine;

namespace {

json dag_entry_json(const DagEntry& e, Store& store) {
  const DagSpec& d = *e.dag;
  json params = json::object();
  for (auto& p : d.params) {
    json pj = {{"type", ParamSpec::type_name(p.type)}, {"default", p.default_value}};
    auto bound = [&](double v) {  // an int param's bounds are integers
      return p.type == ParamSpec::Type::Int ? json(static_cast<int64_t>(v)) : json(v);
    };
    if (p.min) pj["min"] = bound(*p.min);
    if (p.max) pj["max"] = bound(*p.max);
    if (!p.choices.empty()) pj["enum"] = p.choices;
    if (p.pattern) pj["pattern"] = *p.pattern;
    if (!p.description.empty()) pj["description"] = p.description;
    params[p.name] = pj;
  }
  json tasks = json::array();
  for (auto& t : d.tasks) tasks.push_back(t.id);
  auto paused = store.paused(d.id);
  return {{"dag", d.id},
          {"file", e.file},
          {"file_hash", d.file_hash},
          {"description", d.description},
          {"owner", d.owner},
          {"tags", d.tags},
          {"schedule", d.schedule ? json(d.schedule->text()) : json(nullptr)},
          {"timezone", d.timezone},
          {"next_fire", e.next_fire ? json(format_iso_utc(*e.next_fire)) : json(nullptr)},
          {"paused", paused && *paused},
          {"params", params},
          {"tasks", tasks}};
}

}  // namespace

json Engine::list_dags() {
  json out = {{"dags", json::array()}, {"errors", json::array()}};
  for (auto& [id, e] : impl_->dags) {
    json j = dag_entry_json(e, impl_->store);
    RunFilter f;
    f.dag = id;
    f.limit = 1;
    auto runs = impl_->store.list_runs(f);
    j["last_run"] = runs && !runs->empty() ? run_summary_json(runs->front()) : json(nullptr);
    out["dags"].push_back(j);
  }
  for (auto& [file, diags] : impl_->load_errors)
    for (auto& d : diags)
      out["errors"].push_back(
          {{"file", d.file}, {"line", d.line}, {"col", d.col}, {"message", d.message}});
  return out;
}

Result<json> Engine::get_dag(const std::string& dag) {
  auto it = impl_->dags.find(dag);
  if (it == impl_->dags.end()) return make_error("no DAG '" + dag + "'", Errc::NotFound);
  json j = dag_entry_json(it->second, impl_->store);
  RunFilter f;
  f.dag = dag;
  f.limit = 10;
  json runs = json::array();
  if (auto r = impl_->store.list_runs(f))
    for (auto& run : *r) runs.push_back(run_summary_json(run));
  j["runs"] = runs;
  json errors = json::array();
  auto le = impl_->load_errors.find(it->second.file);
  if (le != impl_->load_errors.end())
    for (auto& d : le->second) errors.push_back(d.str());
  j["errors"] = errors;
  return j;
}

Result<std::string> Engine::trigger(const std::string& dag, const json& body,
                                    const std::string& user) {
  auto it = impl_->dags.find(dag);
  if (it == impl_->dags.end()) return make_error("no DAG '" + dag + "'", Errc::NotFound);
  // body: {"params": {typed}} and/or {"cli_params": {"name": "text"}}; a bare object is params.
  json params = json::object(), cli = json::object();
  if (body.is_object() && (body.contains("params") || body.contains("cli_params"))) {
    if (body.contains("params")) params = body["params"];
    if (body.contains("cli_params")) cli = body["cli_params"];
  } else if (body.is_object()) {
    params = body;
  }
  if (!params.is_object() || !cli.is_object())
    return make_error("params must be a JSON object", Errc::Invalid);
  for (auto& [k, v] : cli.items()) {
    const ParamSpec* p = it->second.dag->param(k);
    if (!p) {
      params[k] = v;
      continue;
    }
    auto parsed = p->parse_cli(v.is_string() ? v.get<std::string>() : v.dump());
    if (!parsed) return make_error(parsed.message(), Errc::Invalid);
    params[k] = *parsed;
  }
  return impl_->create_run(it->second.dag, params, false, "manual", user, std::nullopt, nullptr);
}

Result<json> Engine::list_runs(const RunFilter& given) {
  return run_listing_json(impl_->store, given);
}

Result<json> Engine::get_run(const std::string& run_id) {
  return run_record_json(impl_->store, run_id);
}

Result<json> StoreRunReads::list_runs(const RunFilter& filter) {
  return run_listing_json(*store_, filter);
}

Result<json> StoreRunReads::get_run(const std::string& run_id) {
  return run_record_json(*store_, run_id);
}

Result<json> StoreRunReads::list_models() { return models_listing_json(*store_); }

Result<json> StoreRunReads::get_model(const models::ModelRef& ref) {
  return model_version_json(*store_, ref);
}

Result<json> StoreRunReads::model_history(const std::string& name) {
  return alias_history_json(*store_, name);
}

Result<json> Engine::list_models() { return models_listing_json(impl_->store); }

Result<json> Engine::get_model(const models::ModelRef& ref) {
  return model_version_json(impl_->store, ref);
}

Result<json> Engine::model_history(const std::string& name) {
  return alias_history_json(impl_->store, name);
}

// On the loop and the Engine's own store connection, where every other write of the daemon
// happens (trigger, cancel, and promote's moves, committed with their try's end): the daemon
// stays the one writer of its store, and an API move is ordered with those commits instead
// of contending with them from the read thread's connection, which only reads. A `drover
// models alias` in another process may move the same alias meanwhile: Store::move_alias is a
// compare-and-set on the version the alias names, so of two moves from the same version one
// is refused (Errc::Conflict), never both recorded.
Result<json> Engine::set_model_alias(const AliasMove& given) {
  AliasMove m = given;
  m.at = impl_->steady.now();
  auto moved = move_model_alias(impl_->store, m);
  if (moved)
    spdlog::info("model {}: alias {} -> version {} by {}{}", m.name, m.alias, m.version, m.by,
                 m.force ? " (forced)" : "");
  return moved;
}

// On the loop, as an alias move is; tags need no compare-and-set (the later event of a key is
// its tag), so a `drover models tag` in another process meanwhile only orders after or before.
Result<json> Engine::set_model_tags(const TagChange& given) {
  TagChange c = given;
  c.at = impl_->steady.now();
  auto changed = change_model_tags(impl_->store, c);
  if (changed)
    spdlog::info("model {}: {} tag event(s) by {}", (*changed)["ref"].get<std::string>(),
                 (*changed)["events"].size(), c.by);
  return changed;
}

Status Engine::cancel(const std::string& run_id, const std::string& user) {
  auto it = impl_->active.find(run_id);
  if (it == impl_->active.end() || is_terminal(it->second.run.state)) {
    auto r = impl_->store.get_run(run_id);
    if (!r) return r.error();
    if (!*r) return make_error("no run '" + run_id + "'", Errc::NotFound);
    return make_error("run '" + run_id + "' is already " + to_string((*r)->state), Errc::Conflict);
  }
  ActiveRun& v = it->second;
  bool was_running = v.run.state == RunState::Running;
  core::RunStep step = impl_->progress_of(v).cancel();
  Effects fx;
  {
    Transaction txn(impl_->store);
    fx.writes(txn.status());
    if (fx.writes.ok()) impl_->apply_step(v, step, impl_->steady.now(), fx);
    if (!impl_->commit(fx, txn)) {
      // Nothing was cancelled: the run is as the store has it, and the caller hears why.
      if (auto s = impl_->reload_run(v); !s)
        spdlog::error("run {}: reading it back after a failed commit: {}", run_id, s.message());
      return fx.writes.error();
    }
  }
  impl_->left_running(v, was_running);
  spdlog::info("run {} cancelled by {}", run_id, user);
  for (auto& [key, rt] : impl_->running) {
    if (rt.run_id != run_id) continue;
    rt.cancelled = true;
    fx.kills.push_back(
        {key, "run " + run_id + " cancelled by " + user + "; killing its process group"});
  }
  fx.run_changes.push_back({run_id, RunState::Cancelled});
  impl_->act(fx);
  impl_->post_pump();
  return {};
}

json Engine::alert_deliveries() {
  return impl_->opts.alerts ? impl_->opts.alerts->deliveries() : json::array();
}

Result<LogChunk> Engine::read_log(const std::string& run_id, const std::string& task,
                                  std::optional<int> try_number, unsigned long long offset,
                                  size_t max) {
  auto tries = impl_->store.tries_of(run_id);
  if (!tries) return tries.error();
  const TryRecord* best = nullptr;
  for (auto& t : *tries) {
    if (t.task != task) continue;
    if (try_number && t.try_number != *try_number) continue;
    if (!best || t.try_number > best->try_number) best = &t;
  }
  std::string none = "no log for task '" + task + "' of run '" + run_id + "'";
  if (!best) return make_error(none, Errc::NotFound);
  // A running try's facts may be newer in memory (its Started not written yet).
  const TryRecord* rec = best;
  auto live = impl_->running.find(try_key(best->run_id, best->task, best->try_number));
  if (live != impl_->running.end()) rec = &live->second.rec;
  auto chunk = impl_->exec.read_log(try_key(rec->run_id, rec->task, rec->try_number),
                                    Impl::handle_of(*rec), offset, max);
  if (!chunk && chunk.error().code == Errc::NotFound) return make_error(none, Errc::NotFound);
  return chunk;
}

}  // namespace drover
