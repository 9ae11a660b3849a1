// Upload targets: the serving stores an `upload` task writes prediction sets to, and that
// `drover predictions` lists and rolls back (docs/models.md, "Upload targets"). One small
// interface, three implementations: Redis (redis://[user:password@]host:port/db, hiredis,
// pipelined), a folder (file://DIR) and an HTTP(S) endpoint (batched POSTs with retries and
// an idempotency key per request, then a commit request; common/curl_client). A set is
// written under a new version id, then one atomic pointer flip makes it current, so a
// reader sees the old set or the new set, never a mix. An UploadTarget holds one
// connection, folder or endpoint: not thread-safe; one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace drover {

// A target URL, parsed. `display` is the URL as it may be shown: no user or password.
struct TargetUrl {
  std::string scheme;          // "redis", "file", "http" or "https"
  std::string host;            // redis, http(s)
  int port = 6379;             // redis; http(s): 80 or 443 unless given
  int db = 0;                  // redis
  std::string user, password;  // redis (percent-decoded); empty: none
  std::string dir;             // file
  std::string url;             // http(s): the URL every request is POSTed to, as given
  std::string display;
};

// Parses redis://[[user]:password@]host[:port][/db], file://DIR (an absolute DIR, or one
// relative to the current directory) or http(s)://host[:port][/path][?query]. The user
// information of a redis:// URL ends at the last '@', so a password may hold '@' or '/';
// %XX escapes in it are decoded. An http(s) URL may not hold user information (its
// credential is the `token`); its display form shows "?***" for a query, which may hold a
// key. An error never holds the password.
Result<TargetUrl> parse_target_url(std::string_view url);

// A set prefix: 1..128 of [A-Za-z0-9_.-] (no ':', so keys of different prefixes, versions
// and rows never collide).
bool valid_upload_prefix(std::string_view prefix);

// A fresh version id: UTC time to the second and 6 random hex digits
// ("20261207T182830Z-3fa9c1"): sortable, no ':'.
std::string new_upload_version();

// A complete set as listed.
struct UploadVersion {
  std::string id;
  int64_t rows = 0;
  int64_t bytes = 0;
  int64_t created_us = 0;  // µs since the epoch (the sort key)
  std::string created_at;  // ISO UTC
  bool current = false;
};

// What a flip did.
struct FlipResult {
  std::optional<std::string> from;  // the version current before; nullopt: none
  std::string to;
  double flip_ms = 0;  // the time the flip itself took
};

class UploadTarget {
 public:
  virtual ~UploadTarget() = default;
  // The target as it may be shown (no password).
  virtual const std::string& display() const = 0;

  // Starts writing set `version`: registers it as being written (so that a crash leaves
  // it to be cleaned up), and first removes any set an earlier upload left half-written,
  // printing each to stdout. One upload per prefix at a time: a second one that runs
  // alongside removes the first's set, and the first then fails at commit().
  // http(s): sends nothing (the store expires sets that are never committed).
  virtual Status begin(const std::string& version) = 0;
  // Adds one row (key -> value) of the set being written. May buffer; an error (the
  // store, a duplicate key) can arrive from a later put() or from finish(). A duplicate
  // key fails with Errc::Conflict and duplicate() names it.
  // http(s): rows wait in a spool file, so that bad input is found before anything is sent.
  virtual Status put(std::string_view key, std::string_view value, int64_t line) = 0;
  // Writes whatever put() buffered and checks every reply.
  // http(s): sends the batches, one after another, each retried on its own.
  virtual Status finish() = 0;
  // After a Conflict: the line and key of the duplicate.
  virtual std::optional<std::pair<int64_t, std::string>> duplicate() const = 0;
  // Registers the written set as complete (rows, bytes, created_us) and flips the current
  // pointer to it in one atomic step, recording a flip event {from, to, by, at, reason}.
  // Fails, flipping nothing, when the set is no longer registered as being written.
  // http(s): the commit request; `from` is what the store's answer names as previous.
  virtual Result<FlipResult> commit(const UploadVersion& v, const std::string& by,
                                    const std::string& reason) = 0;
  // Best effort: removes the set begin() started and its registration (after a failure).
  // http(s): one abort request, only when some request was sent; no retries.
  virtual void abort() = 0;
  // Removes complete sets beyond the newest `keep`, never the current one; the ids removed.
  // Removal does not block a Redis (SCAN in batches, UNLINK). http(s): the store removes them
  // itself (the commit carries `keep`); returns the ids its answer named.
  virtual Result<std::vector<std::string>> prune(int keep) = 0;

  // The three below: http(s) targets do not support them (Errc::Invalid, saying so): the
  // store owns its versions.
  // Complete sets, newest first, the current one marked.
  virtual Result<std::vector<UploadVersion>> list() = 0;
  // Flips the pointer to `to` (a complete set), or, when empty, to the newest complete set
  // older than the current one; records the event. Errc::NotFound: no such set.
  virtual Result<FlipResult> rollback(const std::string& to, const std::string& by,
                                      const std::string& reason) = 0;
  // Flip events, oldest first (JSON objects as text).
  virtual Result<std::vector<std::string>> events() = 0;
};

// How an upload talks to its target, besides the URL.
struct UploadTargetOptions {
  std::string password;  // redis: used when the URL has none (the CLI's $DROVER_TARGET_PASSWORD)
  // http(s):
  std::string token;      // sent as "Authorization: Bearer TOKEN"; empty: no Authorization
  int batch_size = 1000;  // rows per batch request (also closed at kHttpMaxBatchBytes)
  int retries = 5;        // further tries of a request after a retryable failure
  int keep = 3;           // sent with the commit: the store keeps this many complete sets
  std::string spool_dir;  // where the validated set waits before it is sent ("": $TMPDIR)
  std::string ca_file;    // CA certificates for https ("": the system's)
  std::chrono::milliseconds backoff{500};        // the first retry's delay, doubled each try
  std::chrono::milliseconds max_backoff{30000};  // a cap on it, and on Retry-After
};

// A batch request's body is closed before it would pass this many bytes (a single larger
// row goes in a batch of its own).
constexpr size_t kHttpMaxBatchBytes = 8u << 20;

// Opens the target at `url` for sets under `prefix`. Connects (Redis: and authenticates)
// now; an http(s) target sends nothing until finish(). Errors name the target's display
// form, never the password or token.
Result<std::unique_ptr<UploadTarget>> open_upload_target(std::string_view url,
                                                         const std::string& prefix,
                                                         const UploadTargetOptions& options);
// The same, with `password` the only option (the CLI).
Result<std::unique_ptr<UploadTarget>> open_upload_target(std::string_view url,
                                                         const std::string& prefix,
                                                         const std::string& password = "");

}  // namespace drover
