// `drover alerts ls|test`: lists the alert channels of the server config and sends a test
// alert to one, synchronously (scheduler/alerts.hpp). See docs/alerts.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "common/redact.hpp"
#include "common/time.hpp"
#include "scheduler/alerts.hpp"
#include "scheduler/config.hpp"
#include "scheduler/dag.hpp"

namespace drover::cli {
namespace {

using json = nlohmann::json;

constexpr const char* kExitCodes =
    "\nExit codes:\n"
    "  0  success (test: the channel accepted the alert)\n"
    "  1  failure: no or invalid config, unknown channel, delivery failed (the message says why)\n"
    "  2  usage error\n";

struct Options {
  std::string config, home = ".drover", channel;
  bool json = false;
};

Result<ServerConfig> load(const Options& o) {
  std::filesystem::path path = o.config.empty() ? std::filesystem::path(o.home) / "config.yaml"
                                                : std::filesystem::path(o.config);
  if (o.config.empty() && !std::filesystem::exists(path))
    return make_error("no server config: " + path.string() +
                      " does not exist (pass --config FILE)");
  return load_server_config(path);
}

std::string target_of(const AlertChannel& ch) {
  switch (ch.type) {
    case AlertChannel::Type::Webhook:
      return masked_url(ch.url);  // the URL is the webhook's credential
    case AlertChannel::Type::Email: {
      std::string to;
      for (const auto& r : ch.to) to += (to.empty() ? "" : ",") + r;
      return ch.smtp + " -> " + to;
    }
    case AlertChannel::Type::Command: {
      std::string run;
      for (const auto& a : ch.run) run += (run.empty() ? "" : " ") + a;
      return run;
    }
  }
  return "";
}

int do_ls(const Options& o) {
  auto cfg = load(o);
  if (!cfg.ok()) {
    std::fprintf(stderr, "drover alerts: %s\n", cfg.message().c_str());
    return kExitFailure;
  }
  if (o.json) {
    json list = json::array();
    for (const auto& [name, ch] : cfg->alerts.channels)
      list.push_back(
          {{"name", name}, {"type", AlertChannel::type_name(ch.type)}, {"target", target_of(ch)}});
    std::printf("%s\n", list.dump(2).c_str());
    return kExitOk;
  }
  if (cfg->alerts.channels.empty()) {
    std::printf("no alert channels in %s\n", cfg->path.c_str());
    return kExitOk;
  }
  std::printf("%-20s %-8s %s\n", "CHANNEL", "TYPE", "TARGET");
  for (const auto& [name, ch] : cfg->alerts.channels)
    std::printf("%-20s %-8s %s\n", name.c_str(), AlertChannel::type_name(ch.type),
                target_of(ch).c_str());
  return kExitOk;
}

int do_test(const Options& o) {
  auto cfg = load(o);
  if (!cfg.ok()) {
    std::fprintf(stderr, "drover alerts: %s\n", cfg.message().c_str());
    return kExitFailure;
  }
  auto it = cfg->alerts.channels.find(o.channel);
  if (it == cfg->alerts.channels.end()) {
    std::vector<std::string> names;
    for (const auto& [name, ch] : cfg->alerts.channels) names.push_back(name);
    std::fprintf(stderr, "drover alerts: unknown channel '%s' in %s%s\n", o.channel.c_str(),
                 cfg->path.c_str(), did_you_mean(o.channel, names).c_str());
    return kExitFailure;
  }
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  Alert alert;
  alert.kind = "test";
  alert.message = std::string("test alert from drover on ") + host + " at " +
                  format_iso_utc(SystemClock().now());
  alert.url = cfg->ui_url;
  alert.details = {{"channel", o.channel}};
  Status s = deliver_alert(it->second, alert);
  if (!s.ok()) {
    std::fprintf(stderr, "drover alerts: channel '%s' (%s): not delivered: %s\n", o.channel.c_str(),
                 AlertChannel::type_name(it->second.type), s.message().c_str());
    return kExitFailure;
  }
  std::printf("delivered a test alert to '%s' (%s)\n", o.channel.c_str(),
              AlertChannel::type_name(it->second.type));
  return kExitOk;
}

int cmd_alerts(int argc, char** argv) {
  CLI::App app;
  app.name(argv[0]);
  use_usage_first(app);
  app.description("Alert channels of the server config (webhook, email, command).");
  app.footer(std::string("The config is --config FILE, else HOME/config.yaml. "
                         "See docs/alerts.md.\n") +
             kExitCodes);
  app.require_subcommand(1);
  Options o;
  auto sub = [&](const char* name, const char* what) {
    CLI::App* s = app.add_subcommand(name, what);
    s->add_option("--config", o.config, "Server config file (default HOME/config.yaml)");
    s->add_option("--home", o.home, "Drover home (default ./.drover)");
    s->footer(kExitCodes);
    return s;
  };
  auto* ls = sub("ls", "List the alert channels");
  ls->add_flag("--json", o.json, "Print JSON");
  auto* test = sub("test", "Send a test alert to CHANNEL now (one attempt, no retries)");
  test->add_option("CHANNEL", o.channel, "Channel name")->required();
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
  if (ls->parsed()) return do_ls(o);
  if (test->parsed()) return do_test(o);
  return kExitUsage;
}

}  // namespace

DROVER_COMMAND("alerts", "Alert channels: ls, test CHANNEL", cmd_alerts);

}  // namespace drover::cli
