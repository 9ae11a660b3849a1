// `drover cancel RUN`: asks the daemon to cancel a run's unfinished tasks
// (POST /api/v1/runs/{run}/cancel).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "web/client.hpp"

namespace drover::cli {
namespace {

int cmd_cancel(int argc, char** argv) {
  CLI::App app{"Cancel a run: its running tasks are stopped, the rest never start.",
               "drover cancel"};
  use_usage_first(app);
  app.footer(
      "Exit codes:\n"
      "  0  the run is being cancelled\n"
      "  1  no such run, the run already finished, or the daemon could not be reached\n"
      "  2  usage error");
  std::string run;
  ClientOptions options;
  app.add_option("run", run, "The run id")->required();
  add_client_options(&app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  auto config = client_config(options);
  if (!config) {
    std::fprintf(stderr, "drover: %s\n", config.message().c_str());
    return kExitFailure;
  }
  HttpClient client(*config);
  auto res = client.call("POST", "/api/v1/runs/" + url_encode(run) + "/cancel");
  if (!res) {
    std::fprintf(stderr, "drover: %s\n", res.message().c_str());
    return kExitFailure;
  }
  std::printf("cancelling %s\n", run.c_str());
  return kExitOk;
}

}  // namespace

DROVER_COMMAND("cancel", "Cancel a run", cmd_cancel);

}  // namespace drover::cli
