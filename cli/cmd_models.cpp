// `drover models ls | show REF | history NAME | alias NAME ALIAS VERSION | tag REF KEY=VALUE…
// | untag REF KEY… | describe REF TEXT | download REF DIR`: the model registry
// (docs/models.md) in the store under --home, read and changed directly as the ML tools may
// (DESIGN.md §2); REF is NAME (its latest version), NAME/V or NAME@ALIAS.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/engine_setup.hpp"
#include "cli/usage_formatter.hpp"
#include "common/blob_store.hpp"
#include "common/clock.hpp"
#include "common/fs.hpp"
#include "common/model_ref.hpp"
#include "common/utf8.hpp"
#include "scheduler/store.hpp"
#include "scheduler/store_models.hpp"

namespace drover::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Options {
  std::string home;
  bool json = false;
  fs::path home_dir() const { return home.empty() ? ".drover" : home; }
};

Result<std::unique_ptr<Store>> open_registry(const Options& o) {
  fs::path db = store_path(o.home_dir());
  std::error_code ec;
  if (!fs::exists(db, ec))
    return make_error("no store at " + db.string() +
                      " (nothing has run under this --home; a train task registers models)");
  return open_sqlite_store(db);
}

std::string text_of(const json& v) {
  if (v.is_string()) return printable(v.get<std::string>());
  return v.dump();
}

// KEY=VALUE (the first '=' ends the key): Errc::Invalid when there is none.
Result<std::pair<std::string, std::string>> split_tag(const std::string& arg) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos)
    return make_error("'" + printable(arg.substr(0, 100)) + "': a tag is KEY=VALUE", Errc::Invalid);
  return std::make_pair(arg.substr(0, eq), arg.substr(eq + 1));
}

int models_ls(const Options& o, const std::vector<std::string>& tag_args) {
  TagFilter tagged;
  for (const std::string& arg : tag_args) {
    auto kv = split_tag(arg);
    if (!kv) return fail("--tag " + kv.message());
    if (!models::valid_tag_key(kv->first))
      return fail("--tag '" + printable(kv->first.substr(0, 100)) +
                  "': a key is 1 to 64 of [A-Za-z0-9_.-]");
    tagged.push_back(*kv);
  }
  auto store = open_registry(o);
  if (!store) return fail(store.message());
  auto j = models_listing_json(**store, tagged);
  if (!j) return fail(j.message());
  if (o.json) {
    std::printf("%s\n", j->dump(2).c_str());
    return kExitOk;
  }
  if ((*j)["models"].empty()) {
    std::printf(tagged.empty() ? "no models yet (a train task registers them)\n"
                               : "no version has those tags\n");
    return kExitOk;
  }
  std::printf("%-24s %8s %6s  %-27s  %s%s\n", "MODEL", "VERSIONS", "LATEST", "UPDATED", "ALIASES",
              tagged.empty() ? "" : "  (TAGGED)");
  for (auto& m : (*j)["models"]) {
    std::string aliases;
    for (auto& [alias, v] : m["aliases"].items())
      aliases += (aliases.empty() ? "" : ", ") + alias + "=" + std::to_string(v.get<int64_t>());
    if (m.contains("tagged")) {
      std::string versions;
      for (auto& v : m["tagged"])
        versions += (versions.empty() ? "" : ", ") + std::to_string(v.get<int64_t>());
      aliases += (aliases.empty() ? "(" : "  (") + versions + ")";
    }
    std::printf("%-24s %8lld %6lld  %-27s  %s\n", m["name"].get<std::string>().c_str(),
                static_cast<long long>(m["versions"].get<int64_t>()),
                static_cast<long long>(m["latest"].get<int64_t>()),
                m["updated_at"].get<std::string>().c_str(), aliases.c_str());
  }
  return kExitOk;
}

int models_show(const Options& o, const std::string& text) {
  auto ref = models::parse_model_ref(text);
  if (!ref) return fail(ref.message());
  auto store = open_registry(o);
  if (!store) return fail(store.message());
  auto j = model_version_json(**store, *ref);
  if (!j) return fail(j.message());
  if (o.json) {
    std::printf("%s\n", j->dump(2).c_str());
    return kExitOk;
  }
  const json& v = *j;
  std::string aliases;
  for (auto& a : v["aliases"]) aliases += (aliases.empty() ? "" : ", ") + a.get<std::string>();
  std::printf("%s%s\n", v["ref"].get<std::string>().c_str(),
              aliases.empty() ? "" : ("  (" + aliases + ")").c_str());
  std::printf("  made by:     run %s, task %s, try %d, at %s\n",
              v["run"].get<std::string>().c_str(), v["task"].get<std::string>().c_str(),
              v["try"].get<int>(), v["created_at"].get<std::string>().c_str());
  std::printf("  dag:         %s (file %s)\n", v["dag"].get<std::string>().c_str(),
              v["dag_hash"].get<std::string>().substr(0, 12).c_str());
  const json& git = v["git"];
  if (git.value("commit", std::string()).empty())
    std::printf("  code:        not in a git repository\n");
  else
    std::printf("  code:        git %s%s\n", git["commit"].get<std::string>().c_str(),
                git.value("dirty", false) ? " (with uncommitted changes)" : "");
  if (!v["description"].get<std::string>().empty())
    std::printf("  description: %s\n", printable(v["description"].get<std::string>()).c_str());
  if (!v["tags"].empty()) {
    std::printf("  tags:\n");
    for (auto& [k, val] : v["tags"].items())
      std::printf("    %s = %s\n", k.c_str(), printable(val.get<std::string>()).c_str());
  }
  std::printf("  params:\n");
  for (auto& [k, val] : v["params"].items())
    std::printf("    %s = %s\n", printable(k).c_str(), text_of(val).c_str());
  std::printf("  metrics:\n");
  for (auto& [k, val] : v["metrics"].items())
    std::printf("    %s = %s\n", printable(k).c_str(), val.dump().c_str());
  if (!v["step_metrics"].empty())
    std::printf("  step metrics: %zu points\n", v["step_metrics"].size());
  std::printf("  artifacts:\n");
  for (auto& a : v["artifacts"])
    std::printf("    %-32s %12llu  %s\n", printable(a["path"].get<std::string>()).c_str(),
                static_cast<unsigned long long>(a["size"].get<uint64_t>()),
                a["sha256"].get<std::string>().c_str());
  std::printf("  trained on:\n");
  if (v["inputs"].empty()) std::printf("    (no inputs)\n");
  for (auto& i : v["inputs"]) {
    std::string from = i.contains("dataset")
                           ? "dataset " + i["dataset"].get<std::string>() + " version " +
                                 i["dataset_version"].get<std::string>().substr(0, 12)
                           : "task " + i["from_task"].get<std::string>();
    std::printf("    %-32s %s  (%s)\n", printable(i["path"].get<std::string>()).c_str(),
                i["sha256"].get<std::string>().substr(0, 12).c_str(), from.c_str());
  }
  const json& env = v["environment"];
  if (!env.empty()) {
    std::printf("  environment: host %s", env.value("hostname", std::string("?")).c_str());
    if (env.contains("python") && env["python"].is_string())
      std::printf(", python %s", env["python"].get<std::string>().c_str());
    if (env.contains("packages") && env["packages"].is_object()) {
      std::string pk;
      for (auto& [name, ver] : env["packages"].items())
        if (ver.is_string()) pk += (pk.empty() ? "" : ", ") + name + " " + ver.get<std::string>();
      if (!pk.empty()) std::printf("; %s", printable(pk).c_str());
    }
    std::printf("\n");
  }
  return kExitOk;
}

int models_history(const Options& o, const std::string& name) {
  if (!models::valid_model_name(name)) return fail("'" + name + "' is not a model name");
  auto store = open_registry(o);
  if (!store) return fail(store.message());
  auto j = alias_history_json(**store, name);
  if (!j) return fail(j.message());
  if (o.json) {
    std::printf("%s\n", j->dump(2).c_str());
    return kExitOk;
  }
  if ((*j)["events"].empty()) {
    std::printf("no alias of %s has been set\n", name.c_str());
    return kExitOk;
  }
  std::printf("%-27s  %-12s %5s %5s  %-20s  %s\n", "AT", "ALIAS", "FROM", "TO", "BY", "REASON");
  for (auto& e : (*j)["events"]) {
    std::string reason = e["reason"].get<std::string>();
    if (e["forced"].get<bool>()) reason = "(forced) " + reason;
    if (e["run"].is_string())
      reason += (reason.empty() ? "" : " ") + ("[run " + e["run"].get<std::string>() + "]");
    std::printf("%-27s  %-12s %5s %5lld  %-20s  %s\n", e["at"].get<std::string>().c_str(),
                e["alias"].get<std::string>().c_str(),
                e["from"].is_null() ? "-" : std::to_string(e["from"].get<int64_t>()).c_str(),
                static_cast<long long>(e["to"].get<int64_t>()),
                printable(e["by"].get<std::string>()).c_str(), printable(reason).c_str());
  }
  return kExitOk;
}

int models_alias(const Options& o, const std::string& name, const std::string& alias,
                 int64_t version, const std::string& reason, bool force) {
  if (!models::valid_model_name(name)) return fail("'" + name + "' is not a model name");
  auto store = open_registry(o);
  if (!store) return fail(store.message());
  AliasMove m{name, alias, version, current_user(), reason, "", force, SystemClock().now()};
  auto e = move_model_alias(**store, m);
  if (!e) return fail(e.message());
  if (o.json) {
    std::printf("%s\n", e->dump(2).c_str());
    return kExitOk;
  }
  std::printf("%s@%s -> %s/%lld (was %s)\n", name.c_str(), alias.c_str(), name.c_str(),
              static_cast<long long>(version),
              (*e)["from"].is_null()
                  ? "unset"
                  : (name + "/" + std::to_string((*e)["from"].get<int64_t>())).c_str());
  return kExitOk;
}

// The answer of a tag, untag or describe: the JSON, or a line saying what changed.
int print_change(const Options& o, const json& j, const std::string& what) {
  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%s: %s\n", j["ref"].get<std::string>().c_str(),
              j["events"].empty() ? "unchanged" : what.c_str());
  return kExitOk;
}

int models_tag(const Options& o, const std::string& text, const std::vector<std::string>& args,
               bool remove) {
  auto ref = models::parse_model_ref(text);
  if (!ref) return fail(ref.message());
  TagChange c{*ref, {}, current_user(), SystemClock().now()};
  for (const std::string& arg : args) {
    if (remove) {
      c.tags.emplace_back(arg, std::nullopt);
      continue;
    }
    auto kv = split_tag(arg);
    if (!kv) return fail(kv.message());
    c.tags.emplace_back(kv->first, kv->second);
  }
  auto store = open_registry(o);
  if (!store) return fail(store.message());
  auto j = change_model_tags(**store, c);
  if (!j) return fail(j.message());
  std::string keys;
  for (auto& e : (*j)["events"]) {
    keys += keys.empty() ? "" : ", ";
    keys += e["value"].is_null()
                ? e["key"].get<std::string>()
                : e["key"].get<std::string>() + "=" + printable(e["value"].get<std::string>());
  }
  return print_change(o, *j, (remove ? "removed " : "tagged ") + keys);
}

int models_describe(const Options& o, const std::string& text, const std::string& description) {
  auto ref = models::parse_model_ref(text);
  if (!ref) return fail(ref.message());
  auto store = open_registry(o);
  if (!store) return fail(store.message());
  auto j =
      describe_model_version(**store, {*ref, description, current_user(), SystemClock().now()});
  if (!j) return fail(j.message());
  return print_change(o, *j, "description set");
}

int models_download(const Options& o, const std::string& text, const std::string& dir) {
  auto ref = models::parse_model_ref(text);
  if (!ref) return fail(ref.message());
  auto store = open_registry(o);
  if (!store) return fail(store.message());
  auto v = resolve_model_ref(**store, *ref);
  if (!v) return fail(v.message());
  BlobStore blobs(o.home_dir() / "blobs");
  fs::path out(dir);
  std::error_code ec;
  for (const FileRecord& f : v->artifacts) {
    if (!is_inside_relative(f.path))
      return fail("artifact path '" + f.path + "' leaves the folder");
    fs::path dest = out / f.path;
    if (fs::symlink_status(dest, ec).type() != fs::file_type::not_found)
      return fail(dest.string() + " exists: download into an empty folder");
  }
  for (const FileRecord& f : v->artifacts) {
    // Verified before it leaves the store: a blob whose bytes no longer match its name is
    // never handed out as the model.
    if (auto s = blobs.verify(f.sha256); !s)
      return fail("artifact " + f.path + " of " + v->name + "/" + std::to_string(v->version) +
                  ": " + s.message());
    fs::path dest = out / f.path;
    if (auto s = make_dirs(dest.parent_path()); !s) return fail(s.message());
    if ((f.mode & S_IFMT) == S_IFLNK) {
      auto target = read_file(blobs.path_of(f.sha256), 4096);
      if (!target) return fail(target.message());
      if (::symlink(target->c_str(), dest.c_str()) != 0)
        return fail(dest.string() + ": " + std::strerror(errno));
      continue;
    }
    if (auto s = blobs.materialize(f.sha256, dest); !s) return fail(s.message());
    ::chmod(dest.c_str(), static_cast<mode_t>(f.mode & 0777) | S_IRUSR);
  }
  if (!o.json)
    std::printf("%s/%lld: %zu artifact(s) into %s, each verified by its sha256\n", v->name.c_str(),
                static_cast<long long>(v->version), v->artifacts.size(), dir.c_str());
  else
    std::printf("%s\n", json({{"ref", v->name + "/" + std::to_string(v->version)},
                              {"dir", dir},
                              {"files", v->artifacts.size()}})
                            .dump(2)
                            .c_str());
  return kExitOk;
}

int cmd_models(int argc, char** argv) {
  CLI::App app{
      "The model registry: versions that train tasks registered, their lineage, their\n"
      "aliases (production, staging, ...), tags and descriptions. REF is NAME (its latest\n"
      "version), NAME/VERSION or NAME@ALIAS. Reads and writes the store under --home.",
      "drover models"};
  use_usage_first(app);
  app.footer(
      "Exit codes:\n"
      "  0  success\n"
      "  1  no such model, version, alias or tag; a refused alias move; a bad tag or\n"
      "     description\n"
      "  2  usage error");
  app.require_subcommand(1);
  Options o;
  auto common = [&](CLI::App* c) {
    use_usage_first(*c);
    c->add_flag("--json", o.json, "Print JSON");
    c->add_option("--home", o.home, "The drover home (default ./.drover)");
  };
  std::string ref, name, alias, dir, reason, description;
  std::vector<std::string> tags;
  int64_t version = 0;
  bool force = false;
  CLI::App* ls = app.add_subcommand("ls", "List models: versions, latest, aliases");
  common(ls);
  ls->add_option("--tag", tags,
                 "Only models with a version tagged KEY=VALUE now (repeat: all of them, on one "
                 "version); --json lists those versions as \"tagged\"");
  CLI::App* show = app.add_subcommand(
      "show", "Show a version: its run, params, metrics, artifacts, data, code, environment");
  common(show);
  show->add_option("ref", ref, "NAME, NAME/VERSION or NAME@ALIAS")->required();
  CLI::App* history = app.add_subcommand("history", "Every alias move of a model, oldest first");
  common(history);
  history->add_option("name", name, "The model")->required();
  CLI::App* al =
      app.add_subcommand("alias", "Move ALIAS of NAME to VERSION (one event; also the rollback)");
  common(al);
  al->add_option("name", name, "The model")->required();
  al->add_option("alias", alias, "The alias: [a-z0-9_-]+, e.g. production")->required();
  al->add_option("version", version, "The version it names from now on")
      ->required()
      ->check(CLI::PositiveNumber);
  al->add_option("--reason", reason, "Why (kept in the history)");
  al->add_flag("--force", force, "Recorded in the event as forced");
  CLI::App* tag =
      app.add_subcommand("tag", "Set tags KEY=VALUE on a version (one event per tag that changes)");
  common(tag);
  tag->add_option("ref", ref, "NAME, NAME/VERSION or NAME@ALIAS")->required();
  tag->add_option("tags", tags,
                  "KEY=VALUE: KEY 1 to 64 of [A-Za-z0-9_.-], VALUE text up to 1024 bytes")
      ->required();
  CLI::App* untag = app.add_subcommand("untag", "Remove tags of a version (one event per tag)");
  common(untag);
  untag->add_option("ref", ref, "NAME, NAME/VERSION or NAME@ALIAS")->required();
  untag->add_option("keys", tags, "The tags' keys")->required();
  CLI::App* describe =
      app.add_subcommand("describe", "Set the description of a version (an edit event)");
  common(describe);
  describe->add_option("ref", ref, "NAME, NAME/VERSION or NAME@ALIAS")->required();
  describe->add_option("text", description, "The description: text up to 4096 bytes")->required();
  CLI::App* dl = app.add_subcommand(
      "download", "Copy a version's artifacts into DIR, each verified by its sha256");
  common(dl);
  dl->add_option("ref", ref, "NAME, NAME/VERSION or NAME@ALIAS")->required();
  dl->add_option("dir", dir, "The folder to copy them into (created)")->required();
  if (int rc = parse_args(app, argc, argv, /*help_on_error=*/true); rc >= 0) return rc;
  if (ls->parsed()) return models_ls(o, tags);
  if (show->parsed()) return models_show(o, ref);
  if (history->parsed()) return models_history(o, name);
  if (al->parsed()) return models_alias(o, name, alias, version, reason, force);
  if (tag->parsed()) return models_tag(o, ref, tags, /*remove=*/false);
  if (untag->parsed()) return models_tag(o, ref, tags, /*remove=*/true);
  if (describe->parsed()) return models_describe(o, ref, description);
  return models_download(o, ref, dir);
}

}  // namespace

DROVER_COMMAND("models", "The model registry: versions, lineage, aliases, tags, downloads",
               cmd_models);

}  // namespace drover::cli
