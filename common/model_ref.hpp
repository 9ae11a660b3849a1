// Names in the model registry (docs/models.md): a model's name, an alias, a tag key, and a
// reference to a version as people write it — `NAME` (its latest version), `NAME/V`,
// `NAME@ALIAS`. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace drover::models {

// [a-z0-9][a-z0-9_.-]*, at most 128 bytes (as dataset names, with no leading '.', '_' or '-').
bool valid_model_name(std::string_view name);
// [a-z0-9_-]+, at most 64 bytes: production, staging, champion-2 …
bool valid_alias(std::string_view alias);
// [A-Za-z0-9_.-], 1 to 64 bytes: the key of a tag on a version (team, data.window, …).
bool valid_tag_key(std::string_view key);

struct ModelRef {
  std::string name;
  std::optional<int64_t> version;  // NAME/V
  std::string alias;               // NAME@ALIAS
  bool latest() const { return !version && alias.empty(); }
  std::string text() const;  // as written: NAME, NAME/V or NAME@ALIAS
};

// Errc::Invalid with the reason ("'x@' : an alias is [a-z0-9_-]+") for anything else.
Result<ModelRef> parse_model_ref(std::string_view text);

}  // namespace drover::models
