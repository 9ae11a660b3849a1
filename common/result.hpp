// Result<T> and Status: how expected failures travel in Drover (see docs/HACKING.md,
// "Error policy"). Bad input, I/O, network and task failures are values, never exceptions;
// a broken invariant aborts. Value types, not thread-safe beyond what T is.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace drover {

// `code` classifies an error for callers that map it (the API: "not_found" -> 404,
// "invalid" -> 422, "conflict" -> 409, "bad_request" -> 400); empty means internal/I-O.
struct Error {
  std::string message;
  std::string code;
};

inline Error make_error(std::string message, std::string code = {}) {
  return Error{std::move(message), std::move(code)};
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
