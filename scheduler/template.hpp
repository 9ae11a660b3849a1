// Strict templates: "{{ name }}" with dotted names (params.X, run.id, run.logical_date,
// run.interval_start, run.interval_end, project_dir, inputs.TASK.path, outputs.TASK.KEY,
// secrets.NAME). An unknown name is an error, never an empty string. Pure; thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace drover {

struct TemplateRef {
  std::string name;   // e.g. "inputs.train.path", whitespace trimmed
  size_t offset = 0;  // byte offset of the opening "{{" in the template text
};

// Lists the references in `text`; error on an unterminated "{{" or an empty/invalid name
// (names are [A-Za-z0-9_.-]+).
Result<std::vector<TemplateRef>> parse_template(std::string_view text);

// Returns the value of a name, or nullopt when the name is unknown.
using TemplateLookup = std::function<std::optional<std::string>(std::string_view name)>;

// Substitutes every reference. With `shell_quote`, each substituted value is quoted for
// /bin/sh (see shell_quote) so no value can inject commands.
Result<std::string> render_template(std::string_view text, const TemplateLookup& lookup,
                                    bool shell_quote = false);

// The names a template may use and what each one names: the one owner of that list, for
// lint (scheduler/dag_loader.cpp) and for the try-spec builder (scheduler/try_spec.cpp), so
// that what lint passes is what a try can render.
struct TemplateName {
  enum class Kind {
    RunId,          // run.id
    LogicalDate,    // run.logical_date
    IntervalStart,  // run.interval_start
    IntervalEnd,    // run.interval_end
    ProjectDir,     // project_dir
    Param,          // params.NAME
    InputPath,      // inputs.TASK.path
    Output,         // outputs.TASK.KEY (KEY may hold dots: outputs.train.metrics.auc)
    Secret,         // secrets.NAME (no dots in NAME)
    Unknown,
  };
  Kind kind = Kind::Unknown;
  std::string subject;  // Param: the param; InputPath, Output: the task; Secret: the secret
  std::string key;      // Output: the published key
};
TemplateName classify_template_name(std::string_view name);
// The names that take no subject: run.id, run.logical_date, run.interval_start,
// run.interval_end, project_dir.
const std::vector<std::string>& fixed_template_names();

// Single-quotes `s` for POSIX sh: abc -> 'abc'; it's -> 'it'\''s'.
std::string shell_quote(std::string_view s);

}  // namespace drover
