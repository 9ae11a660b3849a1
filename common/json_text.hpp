// JSON text for records, wire messages and responses. nlohmann::json::dump() throws on a
// string that is not valid UTF-8; a task's output, a file name or a value from a DAG file
// must never crash a runner or the daemon that way, so every dump that carries such values
// goes through here: invalid bytes become U+FFFD. Pure; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace drover {

inline std::string to_json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace drover
