// Result<T> and Status: how expected failures travel in Drover (see docs/HACKING.md,
// "Error policy"). Bad input, I/O, network and task failures are values, never exceptions;
// a broken invariant aborts. Value types, not thread-safe beyond what T is.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace drover {

// What kind of failure an Error is, for callers that branch on it. The API maps NotFound
// -> 404, Invalid -> 422, Conflict -> 409, BadRequest -> 400 and anything else -> 500
// (web/api_server.cpp). None: internal or I/O, nothing a caller can act on.
enum class Errc {
  None,
  Invalid,     // bad input: a name, a param, a field, a config value
  NotFound,    // no such run, task, try, DAG, dataset, tag, blob, file
  Conflict,    // the state forbids it: a duplicate, a finished run, a nested transaction
  BadRequest,  // a malformed request: JSON, UTF-8, an id in a path
  Busy,        // a lock is held and the caller asked not to wait (FileLock)
  Changed,     // a file changed while it was read (BlobStore::put_file)
  Mismatch,    // content does not hash to the expected value (BlobStore::adopt_temp)
};

// The code's name as the API's error bodies spell it ("not_found", ...); None is
// "internal".
constexpr const char* to_string(Errc c) {
  switch (c) {
    case Errc::Invalid:
      return "invalid";
    case Errc::NotFound:
      return "not_found";
    case Errc::Conflict:
      return "conflict";
    case Errc::BadRequest:
      return "bad_request";
    case Errc::Busy:
      return "busy";
    case Errc::Changed:
      return "changed";
    case Errc::Mismatch:
      return "mismatch";
    case Errc::None:
      break;
  }
  return "internal";
}

// The code that to_string spells `s`; None for any other text (an API error body's
// "unauthorized", "too_large", ... have no Errc of their own).
inline Errc errc_from_string(std::string_view s) {
  for (Errc c : {Errc::Invalid, Errc::NotFound, Errc::Conflict, Errc::BadRequest, Errc::Busy,
                 Errc::Changed, Errc::Mismatch}) {
    if (s == to_string(c)) return c;
  }
  return Errc::None;
}

struct Error {
  std::string message;
  Errc code = Errc::None;
};

inline Error make_error(std::string message, Errc code = Errc::None) {
  return Error{std::move(message), code};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    check();
    return std::get<0>(v_);
  }
  const T& value() const& {
    check();
    return std::get<0>(v_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    if (ok()) {
      std::fputs("Result::error() on a value\n", stderr);
      std::abort();
    }
    return std::get<1>(v_);
  }
  const std::string& message() const { return error().message; }

 private:
  void check() const {
    if (!ok()) {
      std::fprintf(stderr, "Result::value() on an error: %s\n", std::get<1>(v_).message.c_str());
      std::abort();
    }
  }
  std::variant<T, Error> v_;
};

// Status: a Result with no value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  static Status Ok() { return Status(); }
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const std::string& message() const {
    static const std::string kEmpty;
    return error_ ? error_->message : kEmpty;
  }
  Error error() const { return error_.value_or(Error{}); }

 private:
  std::optional<Error> error_;
};

}  // namespace drover
