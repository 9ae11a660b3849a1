// UTF-8 validation shared by every module that takes text from outside (DAG files and the
// scalars parsed from them, trigger params, task outputs): one definition of valid UTF-8
// (RFC 3629: shortest form only, no surrogates, nothing above U+10FFFF). Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace drover {

// The offset of the first byte that does not begin a valid UTF-8 sequence (a stray
// continuation byte, an overlong form, a surrogate, a truncated sequence), or nullopt when
// all of `s` is valid.
std::optional<size_t> find_invalid_utf8(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return !find_invalid_utf8(s).has_value(); }

// The offset of the first control character of `s` — C0 (U+0000..U+001F), DEL, or C1
// (U+0080..U+009F, in UTF-8 the bytes 0xc2 0x80..0x9f) — other than those in `allowed`
// (ASCII only, e.g. "\t\n"), or nullopt when there is none. Meant for text already checked
// with find_invalid_utf8.
std::optional<size_t> find_control_char(std::string_view s, std::string_view allowed = {});

// "0xa0": the byte at `offset` of `s`, for error messages.
std::string byte_hex(std::string_view s, size_t offset);

// Appends the UTF-8 encoding of `cp`. False (nothing appended) when `cp` is a surrogate
// (U+D800..U+DFFF) or above U+10FFFF, which have no UTF-8 form.
bool append_utf8(std::string& out, char32_t cp);

// `s` as it may be printed to a terminal: control characters (C0, DEL, and C1 as UTF-8
// U+0080..U+009F) and bytes that are not valid UTF-8 become \xNN, a backslash becomes \\;
// the rest is kept. A file name or message holding ESC sequences cannot retitle, clear or
// otherwise drive the terminal it is listed on.
std::string printable(std::string_view s);

}  // namespace drover
