// End to end: every fenced example in docs/*.md marked runnable (info string `sh runnable`)
// is run with the real binary, so the docs say what the binary does. In such a block a line
// `$ COMMAND` is run by /bin/sh (a line ending in `\` continues on the next); the lines
// after it, up to the next `$ `, are its expected output (stdout and stderr together,
// trailing blanks ignored; a line `...` stands for any number of lines, `...` inside a line
// for any text, and from two blanks and `# ` on a line is a note to the reader). A block
// without `$ ` lines is one script, and a ```text block right after it is its expected
// output. Each command must exit 0. All blocks of one doc run in order in one fresh folder
// (the reader's checkout: a copy of dags/) with `drover` on PATH, HOME inside that folder
// and umask 022. Single-threaded.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>

#include "scheduler/run_model.hpp"
#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

struct Command {
  int line = 0;      // in the doc, 1-based
  std::string text;  // the shell command
  bool check_output = false;
  std::vector<std::string> expect;  // expected output lines ("..." = any lines)
};

struct Block {
  int line = 0;  // of the opening fence
  std::vector<Command> commands;
};

fs::path docs_dir() { return fs::path(DROVER_SOURCE_DIR) / "docs"; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string l;
  while (std::getline(ss, l)) out.push_back(l);
  return out;
}

std::string rtrim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

// An expected output line without its annotation: text from two blanks and `# ` on is
// a note for the reader ("2026-03-08T03:00:00-04:00        # the first instant after").
std::string expected_line(const std::string& l) {
  size_t note = l.find("  # ");
  return rtrim(note == std::string::npos ? l : l.substr(0, note));
}

std::string fence_info(const std::string& line) {
  std::string t = rtrim(line);
  size_t i = t.find_first_not_of(' ');
  if (i == std::string::npos || t.compare(i, 3, "```") != 0) return "\x01";  // not a fence
  return t.substr(i + 3);
}

// The runnable blocks of one doc.
std::vector<Block> runnable_blocks(const fs::path& doc) {
  auto lines = lines_of(read_all(doc));
  std::vector<Block> blocks;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string info = fence_info(lines[i]);
    if (info == "\x01") continue;
    size_t end = i + 1;
    while (end < lines.size() && fence_info(lines[end]) == "\x01") ++end;
    if (info != "sh runnable") {
      i = end;
      continue;
    }
    Block b;
    b.line = static_cast<int>(i) + 1;
    bool prompts = false;
    for (size_t k = i + 1; k < end; ++k) prompts = prompts || lines[k].rfind("$ ", 0) == 0;
    if (prompts) {
      for (size_t k = i + 1; k < end; ++k) {
        const std::string& l = lines[k];
        if (l.rfind("$ ", 0) == 0) {
          Command c;
          c.line = static_cast<int>(k) + 1;
          c.text = l.substr(2);
          while (!c.text.empty() && c.text.back() == '\\' && k + 1 < end) {
            c.text += "\n" + lines[++k];
          }
          b.commands.push_back(c);
        } else if (!b.commands.empty()) {
          b.commands.back().check_output = true;
          b.commands.back().expect.push_back(expected_line(l));
        }
      }
    } else {
      Command c;
      c.line = b.line + 1;
      for (size_t k = i + 1; k < end; ++k) c.text += lines[k] + "\n";
      // A ```text block right after (blank lines between allowed) is the expected output.
      size_t n = end + 1;
      while (n < lines.size() && rtrim(lines[n]).empty()) ++n;
      if (n < lines.size() && fence_info(lines[n]) == "text") {
        c.check_output = true;
        for (size_t k = n + 1; k < lines.size() && fence_info(lines[k]) == "\x01"; ++k)
          c.expect.push_back(expected_line(lines[k]));
      }
      b.commands.push_back(c);
    }
    blocks.push_back(b);
    i = end;
  }
  return blocks;
}

// One expected line against one printed line: `...` inside a line stands for any text.
bool line_matches(const std::string& want, const std::string& got) {
  size_t star = want.find("...");
  if (star == std::string::npos) return want == got;
  if (got.compare(0, star, want, 0, star) != 0) return false;
  std::string rest = want.substr(star + 3);
  for (size_t k = star; k <= got.size(); ++k)
    if (line_matches(rest, got.substr(k))) return true;
  return false;
}

// `expect` (with "..." lines as wildcards) against `got`, both without trailing blanks.
bool matches(const std::vector<std::string>& expect, size_t e, const std::vector<std::string>& got,
             size_t g) {
  if (e == expect.size()) return g == got.size();
  if (expect[e] == "...") {
    for (size_t k = g; k <= got.size(); ++k)
      if (matches(expect, e + 1, got, k)) return true;
    return false;
  }
  return g < got.size() && line_matches(expect[e], got[g]) && matches(expect, e + 1, got, g + 1);
}

std::vector<std::string> doc_names() {
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(docs_dir()))
    if (e.path().extension() == ".md") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Runs `command` with /bin/sh in `dir`, stdout and stderr into one file.
ProcResult shell(const std::string& command, const fs::path& dir,
                 const std::map<std::string, std::string>& env) {
  ProcResult r;
  fs::path out = dir.parent_path() / "out";
  std::vector<std::string> argv = {
      "/bin/sh", "-c", "set -e; umask 022; cd \"$1\"; exec 2>&1\n" + command, "sh", dir.string()};
  pid_t pid = spawn(argv, out, dir.parent_path() / "err", env);
  if (pid < 0) return r;
  int status = 0;
  bool done = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                         std::chrono::seconds(120));
  if (!done) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    r.err = "TIMED OUT";
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_all(out);
  r.err += read_all(dir.parent_path() / "err");
  return r;
}

class DocsExamples : public ::testing::TestWithParam<std::string> {};

TEST_P(DocsExamples, RunAsWritten) {
  auto blocks = runnable_blocks(docs_dir() / GetParam());
  if (blocks.empty()) GTEST_SKIP() << "no runnable examples in docs/" << GetParam();
  TempDir tmp;
  fs::path work = tmp / "work";
  fs::create_directories(work);
  fs::create_directories(tmp / "bin");
  fs::create_symlink(DROVER_BIN, tmp / "bin" / "drover");
  fs::copy(fs::path(DROVER_SOURCE_DIR) / "dags", work / "dags", fs::copy_options::recursive);
  std::map<std::string, std::string> env = {
      {"PATH", (tmp / "bin").string() + ":" +
                   (std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin")},
      {"HOME", work.string()},
      {"DROVER_SERVER", ""},
      {"DROVER_TOKEN", ""},
      {"TZ", "UTC"},
      {"LC_ALL", "C.UTF-8"},
  };
  for (auto& b : blocks) {
    for (auto& c : b.commands) {
      std::string where = "docs/" + GetParam() + ":" + std::to_string(c.line);
      ProcResult r = shell(c.text, work, env);
      ASSERT_EQ(r.code, 0) << where << ": `" << c.text << "` exited " << r.code << "\n"
                           << r.out << r.err;
      if (!c.check_output) continue;
      std::vector<std::string> got;
      for (auto& l : lines_of(r.out)) got.push_back(rtrim(l));
      std::vector<std::string> expect = c.expect;
      while (!expect.empty() && expect.back().empty()) expect.pop_back();
      while (!got.empty() && got.back().empty()) got.pop_back();
      std::string want_text, got_text;
      for (auto& l : expect) want_text += l + "\n";
      for (auto& l : got) got_text += l + "\n";
      EXPECT_TRUE(matches(expect, 0, got, 0)) << where << ": `" << c.text << "` printed\n"
                                              << got_text << "but the doc says\n"
                                              << want_text;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Docs, DocsExamples, ::testing::ValuesIn(doc_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = fs::path(info.param).stem().string();
                           std::replace(n.begin(), n.end(), '-', '_');
                           std::replace(n.begin(), n.end(), '.', '_');
                           return n;
                         });

// The marker stays in use where the brief promises runnable examples.
TEST(DocsExamplesMarker, TheCoreDocsHaveRunnableExamples) {
  for (const char* doc : {"cli.md", "data.md", "cron.md"}) {
    auto blocks = runnable_blocks(docs_dir() / doc);
    size_t commands = 0;
    for (auto& b : blocks) commands += b.commands.size();
    EXPECT_GE(commands, 2u) << "docs/" << doc << " has no runnable examples left";
  }
}

// The `drover` state names of each kind, as the binary spells them (to_string until
// "unknown").
template <class E>
std::vector<std::string> state_names() {
  std::vector<std::string> out;
  for (int i = 0;; ++i) {
    const char* s = to_string(static_cast<E>(i));
    if (std::strcmp(s, "unknown") == 0) return out;
    out.push_back(s);
  }
}

// docs/cli.md's table row "| KIND | `a` `b` ... |" as its backticked words.
std::vector<std::string> documented_states(const std::string& kind) {
  for (auto& l : lines_of(read_all(docs_dir() / "cli.md"))) {
    if (l.rfind("| " + kind + " |", 0) != 0) continue;
    std::vector<std::string> out;
    std::regex word("`([a-z_]+)`");
    for (std::sregex_iterator it(l.begin(), l.end(), word), end; it != end; ++it)
      out.push_back((*it)[1]);
    return out;
  }
  return {};
}

TEST(DocsStates, TheStatesInTheDocsAreTheBinarys) {
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(documented_states("run")), sorted(state_names<RunState>()));
  EXPECT_EQ(sorted(documented_states("task")), sorted(state_names<TaskState>()));
  EXPECT_EQ(sorted(documented_states("try")), sorted(state_names<TryState>()));
}

TEST(DocsExamplesMarker, ParsesPromptsOutputsContinuationsAndTextBlocks) {
  TempDir tmp;
  write_text(tmp / "x.md",
             "intro\n```sh\n$ not run\n```\n```sh runnable\n$ echo a \\\n"
             "    b\na b\n$ true\n```\n```sh runnable\necho hi\n```\n\n```text\n"
             "hi\n```\n");
  auto blocks = runnable_blocks(tmp / "x.md");
  ASSERT_EQ(blocks.size(), 2u);
  ASSERT_EQ(blocks[0].commands.size(), 2u);
  EXPECT_EQ(blocks[0].commands[0].text, "echo a \\\n    b");
  EXPECT_EQ(blocks[0].commands[0].expect, (std::vector<std::string>{"a b"}));
  EXPECT_FALSE(blocks[0].commands[1].check_output);
  ASSERT_EQ(blocks[1].commands.size(), 1u);
  EXPECT_EQ(blocks[1].commands[0].text, "echo hi\n");
  EXPECT_EQ(blocks[1].commands[0].expect, (std::vector<std::string>{"hi"}));
  EXPECT_TRUE(matches({"a", "...", "d"}, 0, {"a", "b", "c", "d"}, 0));
  EXPECT_TRUE(matches({"a", "..."}, 0, {"a"}, 0));
  EXPECT_FALSE(matches({"a", "...", "d"}, 0, {"a", "b", "c"}, 0));
  EXPECT_EQ(expected_line("2026-03-08T03:00:00-04:00        # after the gap"),
            "2026-03-08T03:00:00-04:00");
  EXPECT_TRUE(line_matches("run ... took ...s", "run hello-1 took 0.1s"));
  EXPECT_TRUE(line_matches("...", ""));
  EXPECT_FALSE(line_matches("run ...!", "run hello-1"));
}

}  // namespace
}  // namespace drover::testing
