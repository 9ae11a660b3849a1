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

// Single-quotes `s` for POSIX sh: abc -> 'abc'; it's -> 'it'\''s'.
std::string shell_quote(std::string_view s);

}  // namespace drover
