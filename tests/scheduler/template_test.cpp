// Tests of strict templates and shell quoting (scheduler/template.hpp).
#include "scheduler/template.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <map>

namespace drover {
namespace {

TemplateLookup lookup_in(std::map<std::string, std::string> values) {
  return [values = std::move(values)](std::string_view name) -> std::optional<std::string> {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

TEST(TemplateTest, ParseListsReferencesWithTheirOffsets) {
  auto refs = parse_template("a {{ params.x }} b {{run.id}} {{\tinputs.t-1.path }}");
  ASSERT_TRUE(refs.ok()) << refs.message();
  ASSERT_EQ(refs->size(), 3u);
  EXPECT_EQ((*refs)[0].name, "params.x");
  EXPECT_EQ((*refs)[0].offset, 2u);
  EXPECT_EQ((*refs)[1].name, "run.id");
  EXPECT_EQ((*refs)[1].offset, 19u);
  EXPECT_EQ((*refs)[2].name, "inputs.t-1.path");
}

TEST(TemplateTest, TextWithoutReferencesHasNone) {
  auto refs = parse_template("echo } { }} plain");
  ASSERT_TRUE(refs.ok());
  EXPECT_TRUE(refs->empty());
}

TEST(TemplateTest, UnterminatedReferenceIsAnError) {
  auto refs = parse_template("echo {{ params.x");
  ASSERT_FALSE(refs.ok());
  EXPECT_EQ(refs.message(), "unterminated '{{' (no closing '}}')");
}

TEST(TemplateTest, EmptyReferenceIsAnError) {
  EXPECT_EQ(parse_template("x {{  }} y").message(), "empty template reference '{{  }}'");
}

TEST(TemplateTest, NameWithInvalidCharactersIsAnError) {
  EXPECT_EQ(parse_template("{{ a b }}").message(),
            "invalid template name 'a b' (names use A-Z, a-z, 0-9, '_', '.' and '-')");
  EXPECT_EQ(parse_template("{{ $(id) }}").message(),
            "invalid template name '$(id)' (names use A-Z, a-z, 0-9, '_', '.' and '-')");
}

TEST(TemplateTest, RenderSubstitutesEveryReference) {
  auto out = render_template("{{ run.id }}/{{params.n}}/{{ run.id }}",
                             lookup_in({{"run.id", "r1"}, {"params.n", "7"}}));
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(*out, "r1/7/r1");
}

TEST(TemplateTest, RenderOfAnUnknownNameIsAnErrorNeverAnEmptyString) {
  auto out = render_template("x {{ params.nope }}", lookup_in({}));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.message(), "unknown template name 'params.nope'");
}

TEST(TemplateTest, RenderedValuesAreNotRescanned) {
  auto out = render_template("{{ a }}", lookup_in({{"a", "{{ b }}"}}));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "{{ b }}");
}

TEST(TemplateTest, ShellQuoteSingleQuotesEverything) {
  EXPECT_EQ(shell_quote("abc"), "'abc'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$(touch /tmp/pwned); x"), "'$(touch /tmp/pwned); x'");
}

TEST(TemplateTest, RenderWithQuotingQuotesEverySubstitutedValue) {
  auto out = render_template("echo {{ params.p }} > {{ run.id }}.txt",
                             lookup_in({{"params.p", "$(touch /tmp/pwned); x"}, {"run.id", "r 1"}}),
                             /*shell_quote=*/true);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "echo '$(touch /tmp/pwned); x' > 'r 1'.txt");
}

// The real shell sees a quoted value as one literal word: nothing runs.
TEST(TemplateTest, QuotedValueStaysLiteralInARealShell) {
  namespace fs = std::filesystem;
  fs::path marker = fs::temp_directory_path() / ("drover-pwned-" + std::to_string(::getpid()));
  fs::remove(marker);
  std::string evil = "$(touch " + marker.string() + "); `touch " + marker.string() + "`; it's";
  auto cmd = render_template("printf '%s' {{ params.p }}", lookup_in({{"params.p", evil}}), true);
  ASSERT_TRUE(cmd.ok());
  FILE* p = ::popen(cmd->c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string got;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) got.append(buf, n);
  int status = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(got, evil);
  EXPECT_FALSE(fs::exists(marker));
}

// One list of template names for lint and for the try-spec builder.
TEST(TemplateNames, EachNameIsClassifiedOnce) {
  using K = TemplateName::Kind;
  struct Case {
    const char* name;
    K kind;
    const char* subject;
    const char* key;
  };
  for (auto& c : std::vector<Case>{{"run.id", K::RunId, "", ""},
                                   {"run.logical_date", K::LogicalDate, "", ""},
                                   {"project_dir", K::ProjectDir, "", ""},
                                   {"params.lr", K::Param, "lr", ""},
                                   {"inputs.train.path", K::InputPath, "train", ""},
                                   {"outputs.train.metrics.auc", K::Output, "train", "metrics.auc"},
                                   {"secrets.TOKEN", K::Secret, "TOKEN", ""},
                                   {"secrets.a.b", K::Unknown, "", ""},
                                   {"inputs.train.dir", K::Unknown, "", ""},
                                   {"inputs..path", K::Unknown, "", ""},
                                   {"outputs.train", K::Unknown, "", ""},
                                   {"outputs.train.", K::Unknown, "", ""},
                                   {"params.", K::Unknown, "", ""},
                                   {"run.other", K::Unknown, "", ""}}) {
    TemplateName t = classify_template_name(c.name);
    EXPECT_EQ(t.kind, c.kind) << c.name;
    EXPECT_EQ(t.subject, c.subject) << c.name;
    EXPECT_EQ(t.key, c.key) << c.name;
  }
  EXPECT_EQ(fixed_template_names().size(), 5u);
}

}  // namespace
}  // namespace drover
