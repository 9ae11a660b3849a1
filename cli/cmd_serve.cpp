// `drover serve`: the daemon — loads the DAG folder (and follows its changes), fires
// schedules, runs tries on warm local workers, serves the REST API. Composed here from
// the store, the executor, the engine and the API server (DESIGN.md §3).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <cstdio>

#include "cli/command.hpp"
#include "cli/engine_setup.hpp"
#include "cli/usage_formatter.hpp"
#include "common/fs.hpp"
#include "common/process.hpp"
#include "scheduler/alerts.hpp"
#include "scheduler/config.hpp"
#include "scheduler/daemon.hpp"
#include "web/api_server.hpp"
#include "web/auth.hpp"

namespace drover::cli {
namespace {

int cmd_serve(int argc, char** argv) {
  CLI::App app{"Run the Drover daemon: schedules, runs, REST API.", "drover serve"};
  use_usage_first(app);
  app.footer(
      "Writes HOME/server.json (its URL) and, on first start, HOME/token (mode 0600).\n"
      "One daemon per home: a second one on the same --home exits 1, naming the first's pid.\n"
      "Exit codes: 0 stopped by SIGINT/SIGTERM, 1 could not start, 2 usage.");
  std::string home = ".drover", dags = "dags", listen = "127.0.0.1:8080", project_dir;
  std::vector<std::string> queue_limits;
  int slots = default_slots();
  bool json_logs = false;
  std::string config_file;
  app.add_option("--home", home, "State folder (default ./.drover)");
  app.add_option("--dags", dags, "Folder of DAG files (default ./dags)");
  app.add_option("--listen", listen, "API address (default 127.0.0.1:8080; port 0 = any free)");
  app.add_option("--slots", slots, "Tries running at once (default: CPU count)");
  app.add_option("--queue-slots", queue_limits, "QUEUE=N limit for one queue (repeatable)");
  app.add_option("--project-dir", project_dir,
                 "Value of {{ project_dir }} (default: each DAG file's git work tree)");
  app.add_flag("--json-logs", json_logs, "Log as JSON lines");
  app.add_option("--config", config_file,
                 "Server config: alert channels, ui_url, DAG file limits (default HOME/config.yaml "
                 "if present)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (json_logs)
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  // Descriptors for connections, workers and logs: systemd's default soft limit is 1024.
  raise_open_files_limit();
  EngineOptions opts;
  opts.home = home;
  opts.dags_dir = dags;
  opts.project_dir = project_dir;
  opts.global_slots = slots;
  for (auto& q : queue_limits) {
    auto eq = q.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "drover serve: --queue-slots expects QUEUE=N, got '%s'\n", q.c_str());
      return kExitUsage;
    }
    opts.queue_slots[q.substr(0, eq)] = std::atoi(q.c_str() + eq + 1);
  }
  if (auto s = make_dirs(home); !s) {
    std::fprintf(stderr, "drover serve: %s\n", s.message().c_str());
    return kExitFailure;
  }
  if (!std::filesystem::is_directory(dags)) {
    std::fprintf(stderr, "drover serve: DAG folder '%s' does not exist\n", dags.c_str());
    return kExitFailure;
  }
  // One daemon per home: a second one would run tries twice and delete the first one's
  // server.json. The flock goes with the process (kill -9 included).
  auto home_lock = FileLock::acquire(std::filesystem::path(home) / "serve.lock", true, false);
  if (!home_lock) {
    if (home_lock.error().code == Errc::Busy) {
      auto holder = read_file(std::filesystem::path(home) / "serve.lock", 64);
      std::string pid = holder ? *holder : "";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      std::fprintf(stderr,
                   "drover serve: home %s is in use by another drover serve (pid %s); one "
                   "daemon per home\n",
                   home.c_str(), pid.empty() ? "unknown" : pid.c_str());
    } else {
      std::fprintf(stderr, "drover serve: %s\n", home_lock.message().c_str());
    }
    return kExitFailure;
  }
  (void)home_lock->set_content(std::to_string(::getpid()) + "\n");
  // HOME/serve.stopped is there only while no daemon runs after a clean stop: taken away
  // now, written again when this one stops on a signal. A crash or kill -9 leaves it absent,
  // which is how recovery knows to count its pickups (EngineOptions::previous_stop_clean).
  const std::filesystem::path stopped_marker = std::filesystem::path(home) / "serve.stopped";
  {
    std::error_code ec;
    opts.previous_stop_clean = std::filesystem::exists(stopped_marker, ec);
    std::filesystem::remove(stopped_marker, ec);
  }
  // Alert channels (docs/alerts.md): the config is optional; a broken one stops the start.
  auto server = load_server(home, config_file);
  if (!server) {
    std::fprintf(stderr, "%s\n", server.message().c_str());
    return kExitFailure;
  }
  opts.alerts = server->alerts.get();
  opts.secrets = server->secrets;
  opts.dag_limits = server->dag_limits;
  auto token = ensure_token(home);
  if (!token) {
    std::fprintf(stderr, "drover serve: %s\n", token.message().c_str());
    return kExitFailure;
  }
  auto store = open_sqlite_store(store_path(home));
  if (!store) {
    std::fprintf(stderr, "drover serve: %s\n", store.message().c_str());
    return kExitFailure;
  }
  boost::asio::io_context io;
  SystemClock clock;
  auto exec = make_local_executor(io, LocalExecutorOptions{self_exe(), slots, 2000, true});
  Engine engine(io, clock, **store, *exec, opts);
  if (auto s = engine.start(); !s) {
    std::fprintf(stderr, "drover serve: %s\n", s.message().c_str());
    return kExitFailure;
  }
  // Listings and run records are read on a connection of their own, off the scheduler's loop.
  auto reader = (*store)->open_reader();
  if (!reader) {
    std::fprintf(stderr, "drover serve: %s\n", reader.message().c_str());
    return kExitFailure;
  }
  std::unique_ptr<StoreRunReads> reads;
  if (*reader) reads = std::make_unique<StoreRunReads>(std::move(*reader));
  ApiServer api(io, engine, ApiOptions{token_hash(*token), 1 << 20, home}, reads.get());
  auto url = api.listen(listen);
  if (!url) {
    std::fprintf(stderr, "drover serve: %s\n", url.message().c_str());
    return kExitFailure;
  }
  // The handler is in place before server.json says the daemon is up: a SIGTERM sent as soon
  // as a client sees it stops the daemon cleanly (and leaves the clean-stop marker) instead of
  // killing it by the default action.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    spdlog::info("signal {}: stopping (running tries are left to finish and will be adopted)", sig);
    engine.stop();
    api.stop();
    exec->shutdown();
    io.stop();
  });
  json info = {{"url", *url}, {"pid", ::getpid()}};
  if (auto s = write_file_atomic(std::filesystem::path(home) / "server.json", info.dump() + "\n");
      !s) {
    std::fprintf(stderr, "drover serve: %s\n", s.message().c_str());
    return kExitFailure;
  }
  spdlog::info("drover serve: listening on {} (home {}, dags {})", *url, home, dags);
  io.run();
  std::error_code ec;
  std::filesystem::remove(std::filesystem::path(home) / "server.json", ec);
  (void)write_file_atomic(stopped_marker, std::to_string(::getpid()) + "\n");
  return kExitOk;
}

}  // namespace
}  // namespace drover::cli

DROVER_COMMAND("serve", "Run the daemon: schedules, runs, REST API", drover::cli::cmd_serve);
