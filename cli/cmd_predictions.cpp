// `drover predictions ls TARGET --prefix P [--json]` and `drover predictions rollback TARGET
// --prefix P [--to VERSION]`: the prediction sets `upload` tasks wrote to a serving store
// (plugins/upload_targets.hpp, docs/models.md "Upload targets"), read and flipped directly.
// A Redis password comes in the URL or from $DROVER_TARGET_PASSWORD; it is never printed.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "common/utf8.hpp"
#include "plugins/upload_targets.hpp"

namespace drover::cli {
namespace {

using json = nlohmann::json;

struct Options {
  std::string target, prefix, to, reason;
  bool json = false;
};

Result<std::unique_ptr<UploadTarget>> open_target(const Options& o) {
  const char* pw = std::getenv("DROVER_TARGET_PASSWORD");
  return open_upload_target(o.target, o.prefix, pw ? pw : "");
}

int predictions_ls(const Options& o) {
  auto t = open_target(o);
  if (!t) return fail(t.message());
  auto versions = (*t)->list();
  if (!versions) return fail(versions.message());
  if (o.json) {
    json out = {{"target", (*t)->display()},
                {"prefix", o.prefix},
                {"current", nullptr},
                {"versions", json::array()}};
    for (auto& v : *versions) {
      if (v.current) out["current"] = v.id;
      out["versions"].push_back({{"version", v.id},
                                 {"rows", v.rows},
                                 {"bytes", v.bytes},
                                 {"created_at", v.created_at},
                                 {"current", v.current}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  if (versions->empty()) {
    std::printf("no complete sets under prefix '%s' at %s\n", o.prefix.c_str(),
                (*t)->display().c_str());
    return kExitOk;
  }
  std::printf("  %-26s %10s %12s  %s\n", "VERSION", "ROWS", "BYTES", "CREATED");
  for (auto& v : *versions)
    std::printf("%s %-26s %10lld %12lld  %s\n", v.current ? "*" : " ", v.id.c_str(),
                static_cast<long long>(v.rows), static_cast<long long>(v.bytes),
                when(json{{"t", v.created_at}}, "t").c_str());
  return kExitOk;
}

int predictions_rollback(const Options& o) {
  auto t = open_target(o);
  if (!t) return fail(t.message());
  const char* user = std::getenv("USER");
  auto f =
      (*t)->rollback(o.to, user && *user ? user : "cli", o.reason.empty() ? "rollback" : o.reason);
  if (!f) return fail(f.message());
  if (o.json) {
    std::printf("%s\n", json({{"from", f->from ? json(*f->from) : json(nullptr)},
                              {"to", f->to},
                              {"flip_ms", f->flip_ms}})
                            .dump(2)
                            .c_str());
    return kExitOk;
  }
  std::printf("%s: prefix %s -> %s (was %s)\n", (*t)->display().c_str(), o.prefix.c_str(),
              f->to.c_str(), f->from ? f->from->c_str() : "unset");
  return kExitOk;
}

int cmd_predictions(int argc, char** argv) {
  CLI::App app{
      "Prediction sets that upload tasks wrote to a serving store: list them, and flip the\n"
      "current pointer back. TARGET is redis://[:PASSWORD@]HOST:PORT/DB or file://DIR; a\n"
      "Redis password may also come from $DROVER_TARGET_PASSWORD.",
      "drover predictions"};
  use_usage_first(app);
  app.footer(
      "Exit codes:\n"
      "  0  success\n"
      "  1  the target cannot be reached; no such set; nothing to roll back to\n"
      "  2  usage error");
  app.require_subcommand(1);
  Options o;
  auto common = [&](CLI::App* c) {
    use_usage_first(*c);
    c->add_option("target", o.target, "redis://[:PASSWORD@]HOST:PORT/DB or file://DIR")->required();
    c->add_option("--prefix", o.prefix, "The upload task's prefix")->required();
    c->add_flag("--json", o.json, "Print JSON");
  };
  CLI::App* ls =
      app.add_subcommand("ls", "List the complete sets, newest first; '*' marks the current one");
  common(ls);
  CLI::App* rb = app.add_subcommand(
      "rollback", "Flip current to the previous complete set, or to --to VERSION (one event)");
  common(rb);
  rb->add_option("--to", o.to, "The set to make current (default: the one before current)");
  rb->add_option("--reason", o.reason, "Why (kept in the flip event)");
  if (int rc = parse_args(app, argc, argv, /*help_on_error=*/true); rc >= 0) return rc;
  if (ls->parsed()) return predictions_ls(o);
  return predictions_rollback(o);
}

}  // namespace

DROVER_COMMAND("predictions", "Prediction sets in serving stores: list, roll back",
               cmd_predictions);

}  // namespace drover::cli
