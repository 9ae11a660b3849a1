// `drover cron next EXPR`: prints the next fire times of a cron schedule in a time zone,
// the same computation the daemon uses (scheduler/cron.hpp). A debugging aid and a test hook.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "common/clock.hpp"
#include "common/time.hpp"
#include "scheduler/cron.hpp"

namespace drover::cli {
namespace {

constexpr const char* kExitCodes =
    "\nExit codes:\n"
    "  0  success\n"
    "  1  invalid expression, time zone or --from time\n"
    "  2  usage error\n";

struct NextOptions {
  std::string expr;
  std::string tz = "UTC";
  std::string from;
  int count = 5;
  bool json = false;
};

int run_next(const NextOptions& o) {
  auto schedule = cron::Schedule::parse(o.expr);
  if (!schedule.ok()) {
    std::fprintf(stderr, "drover cron: %s\n", schedule.message().c_str());
    return kExitFailure;
  }
  auto zone = find_zone(o.tz);
  if (!zone.ok()) {
    std::fprintf(stderr, "drover cron: %s\n", zone.message().c_str());
    return kExitFailure;
  }
  TimePoint t = SystemClock().now();
  if (!o.from.empty()) {
    auto from = parse_iso(o.from);
    if (!from.ok()) {
      std::fprintf(stderr, "drover cron: --from: %s\n", from.message().c_str());
      return kExitFailure;
    }
    t = *from;
  }
  nlohmann::json list = nlohmann::json::array();
  for (int i = 0; i < o.count; ++i) {
    t = (*schedule)->next(t, *zone);
    if (t == TimePoint::max()) {
      std::fprintf(stderr, "drover cron: '%s' does not fire %swithin 30 years\n", o.expr.c_str(),
                   i == 0 ? "" : "again ");
      break;
    }
    std::string text = format_iso_zoned(t, *zone);
    if (o.json) {
      list.push_back(text);
    } else {
      std::printf("%s\n", text.c_str());
    }
  }
  if (o.json) std::printf("%s\n", list.dump().c_str());
  return kExitOk;
}

int cmd_cron(int argc, char** argv) {
  CLI::App app;
  app.name(argv[0]);
  use_usage_first(app);
  app.footer(std::string("Cron schedules: 5 fields (minute hour day-of-month month "
                         "day-of-week) or a macro (@hourly @daily @weekly @monthly @yearly).\n"
                         "See docs/cron.md.\n") +
             kExitCodes);
  app.require_subcommand(1);

  NextOptions o;
  CLI::App* next = app.add_subcommand("next", "Print the next fire times of EXPR");
  next->footer(std::string("Prints one ISO 8601 time per line with the zone's UTC offset, the "
                           "first strictly after --from.\nExample: drover cron next '30 2 * * *' "
                           "--tz Europe/Moscow --from 2010-03-27T12:00:00+03:00\n") +
               kExitCodes);
  next->add_option("EXPR", o.expr, "Cron expression, e.g. '0 3 * * MON' (quote it)")->required();
  next->add_option("--tz", o.tz, "IANA time zone the schedule runs in (default UTC)");
  next->add_option("--from", o.from,
                   "Start time, ISO 8601 with Z or an offset (default: now); the first time "
                   "printed is strictly after it");
  next->add_option("--count,-n", o.count, "How many fire times to print (default 5)")
      ->check(CLI::Range(1, 100000));
  next->add_flag("--json", o.json, "Print a JSON array of the times");

  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
  return run_next(o);
}

}  // namespace

DROVER_COMMAND("cron", "Show the next fire times of a cron schedule", cmd_cron);

}  // namespace drover::cli
