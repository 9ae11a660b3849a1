// `drover run FILE`: runs one DAG once, here, without a daemon (like `dvc repro` or
// `airflow dags test`), with the same store, worker processes and records as the daemon.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <cstdio>
#include <string>

#include "cli/command.hpp"
#include "cli/engine_setup.hpp"
#include "cli/record_print.hpp"
#include "cli/usage_formatter.hpp"
#include "common/process.hpp"
#include "common/time.hpp"
#include "scheduler/alerts.hpp"
#include "scheduler/daemon.hpp"
#include "scheduler/dag_loader.hpp"
#include "scheduler/store_json.hpp"

namespace drover::cli {
namespace {

int cmd_run(int argc, char** argv) {
  CLI::App app{"Run one DAG once, here, without a daemon; records go to the same store.",
               "drover run"};
  use_usage_first(app);
  app.footer(
      "A failed run ends with \"drover run: run RUN failed\" on stderr, then each failed\n"
      "try's error and the last 10 lines of its log.\n"
      "Exit codes: 0 the run succeeded, 1 it failed or the DAG file is invalid, 2 usage.");
  std::string file, home = ".drover", project_dir;
  std::vector<std::string> params;
  int slots = default_slots();
  bool as_json = false, quiet = false;
  std::string config_file;
  app.add_option("file", file, "DAG file")->required();
  app.add_option("-p,--param", params, "NAME=VALUE (repeatable)");
  app.add_option("--home", home, "State folder (default ./.drover)");
  app.add_option("--project-dir", project_dir,
                 "Value of {{ project_dir }} (default: the DAG file's git work tree)");
  app.add_option("--slots", slots, "Tries running at once (default: CPU count)");
  app.add_flag("--json", as_json, "Print the run record as JSON at the end");
  app.add_flag("-q,--quiet", quiet, "Print no progress");
  app.add_option("--config", config_file,
                 "Server config: alert channels, DAG file limits (default HOME/config.yaml if "
                 "present)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  spdlog::set_level(spdlog::level::warn);
  raise_open_files_limit();  // workers and logs (systemd's default soft limit is 1024)

  // The server config first: its `dags:` limits bound the DAG file.
  auto server = load_server(home, config_file);
  if (!server) {
    std::fprintf(stderr, "%s\n", server.message().c_str());
    return kExitFailure;
  }
  LoadResult loaded = load_dag_file(file, server->dag_limits);
  if (!loaded.dag) {
    for (auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.str().c_str());
    return kExitFailure;
  }
  json given = json::object();
  for (auto& p : params) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "drover run: -p expects NAME=VALUE, got '%s'\n", p.c_str());
      return kExitUsage;
    }
    given[p.substr(0, eq)] = p.substr(eq + 1);
  }
  auto store = open_sqlite_store(store_path(home));
  if (!store) {
    std::fprintf(stderr, "drover run: %s\n", store.message().c_str());
    return kExitFailure;
  }
  boost::asio::io_context io;
  SystemClock clock;
  auto exec = make_local_executor(io, LocalExecutorOptions{self_exe(), slots, 2000, true});
  EngineOptions opts;
  opts.home = home;
  opts.project_dir = project_dir;
  opts.global_slots = slots;
  opts.schedules = false;
  opts.own_runs = true;  // a daemon restarted meanwhile leaves this run to this process
  opts.alerts = server->alerts.get();
  opts.secrets = server->secrets;
  opts.dag_limits = server->dag_limits;
  Engine engine(io, clock, **store, *exec, opts);
  std::string run_id;
  std::optional<RunState> final_state;
  bool tty = ::isatty(1);
  engine.on_task_change([&](const std::string& run, const std::string& task, TaskState st, int n) {
    if (quiet || as_json || run != run_id) return;
    std::printf("%s  %-24s %-15s try %d\n", format_iso_utc(clock.now()).substr(11, 8).c_str(),
                task.c_str(), to_string(st), n);
    if (tty) std::fflush(stdout);
  });
  engine.on_run_change([&](const std::string& run, RunState st) {
    if (run != run_id || !is_terminal(st)) return;
    final_state = st;
    boost::asio::post(io, [&] {
      engine.stop();
      exec->shutdown();
      io.stop();
    });
  });
  engine.add_dag(loaded.dag);
  auto r = engine.create_run(loaded.dag, given, /*from_cli=*/true, "manual", current_user());
  if (!r) {
    std::fprintf(stderr, "drover run: %s\n", r.message().c_str());
    return kExitFailure;
  }
  run_id = *r;
  if (!as_json && !quiet) {
    std::printf("run %s\n", run_id.c_str());
    std::fflush(stdout);  // the id is useful at once, also through a pipe or a file
  }
  io.run();
  // Alerts still queued are delivered (with their retries) before exiting.
  if (server->alerts) server->alerts->shutdown(std::chrono::seconds(10));
  // The whole record is read only when something prints it (--json, the summary, a failure).
  Result<json> rec = json(nullptr);
  if (as_json || !quiet || final_state != RunState::Success) rec = run_record_json(**store, run_id);
  if (rec && !rec->is_null()) {
    if (as_json)
      std::printf("%s\n", rec->dump(2).c_str());
    else if (!quiet)
      print_run_record(*rec, /*with_failures=*/false);
  }
  if (final_state == RunState::Success) return kExitOk;
  // A failed run ends with what went wrong, on stderr: each failed try's error and the end
  // of its log (also with --json and -q, which only shape stdout).
  std::fflush(stdout);
  std::string state = final_state ? to_string(*final_state) : "unfinished";
  std::fprintf(stderr, "drover run: run %s %s\n", run_id.c_str(), state.c_str());
  if (!rec)
    std::fprintf(stderr, "drover run: cannot read the run record: %s\n", rec.message().c_str());
  else
    std::fputs(format_failures(*rec).c_str(), stderr);
  return kExitFailure;
}

}  // namespace
}  // namespace drover::cli

DROVER_COMMAND("run", "Run one DAG once, here, without a daemon", drover::cli::cmd_run);
