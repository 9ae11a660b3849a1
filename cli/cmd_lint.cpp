// `drover lint PATH...`: validates DAG files (files, or folders searched for *.yaml/*.yml)
// and prints every diagnostic as `file:line:col: message`, sorted by file and line. Also
// reports a DAG id used by more than one of the files. The DAG file limits are the server
// config's (`dags:`), found as `drover serve` and `drover run` find it, so lint says what
// they will accept.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/engine_setup.hpp"
#include "cli/usage_formatter.hpp"
#include "common/model_ref.hpp"
#include "scheduler/config.hpp"
#include "scheduler/dag_loader.hpp"
#include "scheduler/store.hpp"
#include "scheduler/store_models.hpp"

namespace drover::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFooter =
    "Each PATH is a DAG file or a folder searched recursively for *.yaml and *.yml files\n"
    "(hidden folders skipped). Every error of every file is printed on its own line as\n"
    "FILE:LINE:COL: MESSAGE, sorted by file and line. See docs/dag-format.md.\n"
    "The limits on a DAG file's size are the server config's `dags:` section (--config FILE,\n"
    "else HOME/config.yaml if present; docs/alerts.md), as for drover serve and drover run.\n"
    "\nExit codes:\n"
    "When HOME holds a store (drover.db), each `uses: {model: REF}` is looked up in its model\n"
    "registry and a REF it cannot resolve is a warning (FILE:LINE:COL: warning: ...): a\n"
    "trigger of that DAG would be refused. Warnings do not change the exit code.\n"
    "  0  every file is a valid DAG\n"
    "  1  at least one file is invalid, unreadable, or no DAG file was found; or the server\n"
    "     config is invalid\n"
    "  2  usage error\n";

int cmd_lint(int argc, char** argv) {
  CLI::App app("Validate DAG files");
  app.name(argv[0]);
  use_usage_first(app);
  app.footer(kFooter);
  std::vector<std::string> paths;
  bool as_json = false;
  std::string home = ".drover", config_file;
  app.add_option("PATH", paths, "DAG files or folders")->required();
  app.add_flag("--json", as_json,
               "Print a JSON array of {\"file\", \"line\", \"col\", \"message\"}");
  app.add_option("--config", config_file,
                 "Server config whose `dags:` sets the DAG file limits (default "
                 "HOME/config.yaml if present)");
  app.add_option("--home", home, "Where the default config is (default ./.drover)");
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;

  DagLimits limits;
  if (std::string path = server_config_path(home, config_file); !path.empty()) {
    auto cfg = load_server_config(path);  // warns itself about a group-readable file
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.message().c_str());
      return kExitFailure;
    }
    limits = cfg->dags;
  }

  // The files, in the order given (folders expanded, sorted), each once.
  std::vector<fs::path> files;
  std::set<std::string> seen;
  std::vector<Diagnostic> diags;
  auto add = [&](const fs::path& p) {
    std::error_code ec;
    fs::path key = fs::weakly_canonical(p, ec);
    if (seen.insert(ec ? p.string() : key.string()).second) files.push_back(p);
  };
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      auto found = find_dag_files(p);
      if (found.empty())
        std::fprintf(stderr, "drover lint: no *.yaml or *.yml files under %s\n", p.c_str());
      for (const auto& f : found) add(f);
    } else {
      add(p);  // a missing or unreadable file is reported by the loader
    }
  }

  // The registry under HOME, when there is one: `uses:` references are checked against it.
  std::unique_ptr<Store> registry;
  {
    std::error_code ec;
    fs::path db = store_path(home);
    if (fs::exists(db, ec))
      if (auto s = open_sqlite_store(db)) registry = std::move(*s);
  }
  std::vector<Diagnostic> warnings;

  // dag id -> the first file that declared it.
  std::map<std::string, std::string> ids;
  size_t bad_files = 0;
  for (const auto& f : files) {
    LoadResult r = load_dag_file(f, limits);
    if (!r.dag) {
      ++bad_files;
      diags.insert(diags.end(), r.diagnostics.begin(), r.diagnostics.end());
      continue;
    }
    if (registry)
      for (const TaskSpec& t : r.dag->tasks) {
        if (t.uses_model.empty()) continue;
        auto ref = models::parse_model_ref(t.uses_model);
        if (!ref) continue;  // the loader reported it
        if (auto v = resolve_model_ref(*registry, *ref); !v)
          warnings.push_back(Diagnostic{r.dag->file, t.loc.line, t.loc.col,
                                        "warning: task '" + t.id + "' uses model " + t.uses_model +
                                            ": " + v.message() + " (in " +
                                            store_path(home).string() + ")"});
      }
    auto [it, inserted] = ids.emplace(r.dag->id, r.dag->file);
    if (!inserted) {
      ++bad_files;
      diags.push_back(
          Diagnostic{r.dag->file, r.dag->id_loc.line, r.dag->id_loc.col,
                     "duplicate dag id '" + r.dag->id + "' (also in " + it->second + ")"});
    }
  }
  std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.file, a.line, a.col) < std::tie(b.file, b.line, b.col);
  });

  if (as_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : diags)
      out.push_back({{"file", d.file}, {"line", d.line}, {"col", d.col}, {"message", d.message}});
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    for (const auto& d : diags) std::printf("%s\n", d.str().c_str());
    for (const auto& d : warnings) std::fprintf(stderr, "%s\n", d.str().c_str());
    if (diags.empty() && !files.empty()) {
      std::fprintf(stderr, "drover lint: %zu file%s, all valid\n", files.size(),
                   files.size() == 1 ? "" : "s");
    } else if (!diags.empty()) {
      std::fprintf(stderr, "drover lint: %zu error%s in %zu of %zu file%s\n", diags.size(),
                   diags.size() == 1 ? "" : "s", bad_files, files.size(),
                   files.size() == 1 ? "" : "s");
    }
  }
  std::fflush(stdout);
  if (files.empty()) {
    std::fprintf(stderr, "drover lint: no DAG files found\n");
    return kExitFailure;
  }
  return diags.empty() ? kExitOk : kExitFailure;
}

}  // namespace

DROVER_COMMAND("lint", "Validate DAG files; print every error as file:line:col", cmd_lint);

}  // namespace drover::cli
