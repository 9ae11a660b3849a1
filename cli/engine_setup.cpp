#include "cli/engine_setup.hpp"
#include "executor/proc.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace drover::cli {

std::string self_exe() { return self_exe_path(); }

int default_slots() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 2;
}

std::string current_user() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
  return "unknown";
}

}  // namespace drover::cli
