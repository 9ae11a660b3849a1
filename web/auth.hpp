// Bearer-token authentication for the REST API (DESIGN.md §10). The daemon creates one
// admin token in HOME/token (mode 0600) on first start; clients send it as
// `Authorization: Bearer TOKEN`; the server keeps only its SHA-256. Free functions, thread-safe.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace drover {

// Returns the token in HOME/token, creating HOME and the file (64 hex characters from 32
// random bytes, mode 0600) when it does not exist. Safe against a concurrent first start:
// exactly one token wins and both callers return it. A token file readable by others is
// narrowed to 0600. Errors: I/O, or an empty token file.
Result<std::string> ensure_token(const std::filesystem::path& home);

// Hex SHA-256 of a token: what the server stores and compares.
std::string token_hash(std::string_view token);

// True when `presented`'s SHA-256 equals `expected_sha256` (hex). Compares the digests in
// constant time, so timing reveals nothing about the stored hash.
bool token_matches(std::string_view presented, std::string_view expected_sha256);

// The token of an `Authorization` header value: "Bearer TOKEN" (scheme case-insensitive,
// surrounding spaces ignored). Empty when the header has another form.
std::string_view bearer_token(std::string_view authorization);

}  // namespace drover
