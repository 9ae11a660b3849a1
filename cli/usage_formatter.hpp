// CLI11 help that starts with "Usage:" (CLI11 2.1 prints the description first): every
// command's App uses make_app() so its --help has one shape.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

namespace drover::cli {

class UsageFirstFormatter : public CLI::Formatter {
 public:
  std::string make_description(const CLI::App*) const override { return ""; }
  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string out = CLI::Formatter::make_usage(app, std::move(name));
    if (!app->get_description().empty()) out += "\n" + app->get_description() + "\n";
    return out;
  }
};

inline void use_usage_first(CLI::App& app) {
  app.formatter(std::make_shared<UsageFirstFormatter>());
}

}  // namespace drover::cli
