// The streaming table readers (plugins/drift/table_reader.hpp): RFC 4180 cases, malformed
// input reported with its line number, JSON lines, and a mixed-type column.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "plugins/drift/drift.hpp"
#include "plugins/drift/table_reader.hpp"

namespace drover::drift {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// Every record as strings ("<null>" for a missing JSON value), or the error text.
std::string read_all(const std::string& text, TableFormat fmt, Rows* rows,
                     std::vector<std::string>* columns = nullptr) {
  auto r = TableReader::from_string(text, fmt, "events.csv");
  if (!r.ok()) return r.message();
  std::vector<Field> fields;
  for (;;) {
    auto more = (*r)->next(fields);
    if (!more.ok()) return more.message();
    if (!*more) break;
    std::vector<std::string> row;
    for (auto& f : fields) row.push_back(f.missing ? "<null>" : std::string(f.text));
    rows->push_back(row);
  }
  if (columns) *columns = (*r)->columns();
  return "";
}

TEST(CsvReaderTest, ReadsQuotedFieldsEscapedQuotesAndEmbeddedNewlines) {
  Rows rows;
  std::vector<std::string> cols;
  ASSERT_EQ(read_all("a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\n2,\"two\nlines\",\n", TableFormat::Csv,
                     &rows, &cols),
            "");
  EXPECT_EQ(cols, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "x, y", "say \"hi\""}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"2", "two\nlines", ""}));
}

TEST(CsvReaderTest, AcceptsCrlfAndNoFinalNewline) {
  Rows rows;
  ASSERT_EQ(read_all("a,b\r\n1,2\r\n\"3\r\n4\",5", TableFormat::Csv, &rows), "");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"3\r\n4", "5"}));
}

TEST(CsvReaderTest, SkipsBlankLinesAndByteOrderMark) {
  Rows rows;
  std::vector<std::string> cols;
  ASSERT_EQ(read_all("\xEF\xBB\xBFx,y\n\n1,2\n\n3,4\n", TableFormat::Csv, &rows, &cols), "");
  EXPECT_EQ(cols, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(rows.size(), 2u);
}

TEST(CsvReaderTest, ReadsTabSeparatedValues) {
  Rows rows;
  ASSERT_EQ(read_all("a\tb\n1,5\t\"q\"\n", TableFormat::Tsv, &rows), "");
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1,5", "q"}));
}

TEST(CsvReaderTest, ReportsUnterminatedQuoteWithItsLine) {
  Rows rows;
  std::string text = "a,b\n";
  for (int i = 2; i < 17; ++i) text += std::to_string(i) + ",ok\n";
  text += "17,\"never closed\n18,x\n";
  EXPECT_EQ(read_all(text, TableFormat::Csv, &rows), "events.csv:17: unterminated quoted field");
}

TEST(CsvReaderTest, ReportsWrongFieldCountWithItsLine) {
  Rows rows;
  EXPECT_EQ(read_all("a,b\n1,2\n3\n", TableFormat::Csv, &rows),
            "events.csv:3: expected 2 fields, found 1");
  rows.clear();
  // A quoted newline makes record 2 span lines 2-3; record 3 starts on line 4.
  EXPECT_EQ(read_all("a,b\n\"1\n1\",2\n3,4,5\n", TableFormat::Csv, &rows),
            "events.csv:4: expected 2 fields, found 3");
}

TEST(CsvReaderTest, ReportsStrayQuotes) {
  Rows rows;
  EXPECT_EQ(read_all("a,b\n1,ab\"c\n", TableFormat::Csv, &rows),
            "events.csv:2: quote inside unquoted field");
  rows.clear();
  EXPECT_EQ(read_all("a,b\n1,\"ab\"c\n", TableFormat::Csv, &rows),
            "events.csv:2: unexpected character after closing quote");
}

TEST(CsvReaderTest, RejectsEmptyFileAndDuplicateColumns) {
  Rows rows;
  EXPECT_EQ(read_all("", TableFormat::Csv, &rows), "events.csv: empty file (no header line)");
  EXPECT_EQ(read_all("a,b,a\n1,2,3\n", TableFormat::Csv, &rows),
            "events.csv:1: duplicate column \"a\"");
}

TEST(CsvReaderTest, ReadsLongInputAcrossChunks) {
  std::string text = "id,text\n";
  std::string big(3 << 20, 'z');  // a 3 MiB quoted field spans several 1 MiB chunks
  text += "1,\"" + big + "\"\"\"\n2,b\n";
  Rows rows;
  ASSERT_EQ(read_all(text, TableFormat::Csv, &rows), "");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][1], big + "\"");
  EXPECT_EQ(rows[1][1], "b");
}

TEST(JsonlReaderTest, ReadsObjectsWithGrowingColumns) {
  Rows rows;
  std::vector<std::string> cols;
  ASSERT_EQ(read_all("{\"a\": 1, \"b\": \"x\"}\n\n{\"b\": null, \"c\": true, \"a\": 2.5}\n",
                     TableFormat::Jsonl, &rows, &cols),
            "");
  EXPECT_EQ(cols, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "x"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"2.5", "<null>", "true"}));
}

TEST(JsonlReaderTest, ReportsMalformedLines) {
  Rows rows;
  EXPECT_EQ(read_all("{\"a\": 1}\n{\"a\": }\n", TableFormat::Jsonl, &rows),
            "events.csv:2: invalid JSON at byte 7");
  rows.clear();
  EXPECT_EQ(read_all("{\"a\": 1}\n\n[1, 2]\n", TableFormat::Jsonl, &rows),
            "events.csv:3: expected a JSON object");
}

class DriftFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("csv_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  std::filesystem::path dir_;
};

TEST_F(DriftFileTest, MixedTypeColumnIsCategorical) {
  DriftOptions o;
  o.reference = write("ref.csv", "v\n1\n2.0\nabc\n2.0\n\n");
  o.current = write("cur.csv", "v\n1\n1\nNA\n");
  auto r = compute_drift(o);
  ASSERT_TRUE(r.ok()) << r.message();
  const json& f = (*r)["features"]["v"];
  EXPECT_EQ(f["type"], "categorical");
  EXPECT_EQ(f["n_reference"], 4);
  EXPECT_EQ(f["stats"]["histogram"]["values"], json({"1", "2.0", "abc"}));
  EXPECT_EQ(f["missing_share"], 1.0 / 3);
  EXPECT_EQ((*r)["schema"]["type_changed"],
            json::parse(R"([{"column":"v","reference":"categorical","current":"numeric"}])"));
}

TEST_F(DriftFileTest, NumericOverrideCountsUnparsableValuesAsMissing) {
  DriftOptions o;
  o.reference = write("ref.csv", "v\n1\n2\noops\n");
  o.current = write("cur.csv", "v\n1\n3\n");
  o.types = {{"v", "numeric"}};
  auto r = compute_drift(o);
  ASSERT_TRUE(r.ok()) << r.message();
  const json& f = (*r)["features"]["v"];
  EXPECT_EQ(f["type"], "numeric");
  EXPECT_EQ(f["n_reference"], 2);
  EXPECT_EQ(f["stats"]["reference"]["invalid"], 1);
}

TEST_F(DriftFileTest, MalformedFileErrorNamesFileAndLine) {
  DriftOptions o;
  o.reference = write("ref.csv", "a,b\n1,2\n3,4\n");
  o.current = write("cur.csv", "a,b\n1,2\n3,\"4\n");
  o.current_name = "cur.csv";
  auto r = compute_drift(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "cur.csv:3: unterminated quoted field");
}

TEST_F(DriftFileTest, FormatComesFromContentWithoutExtension) {
  DriftOptions o;
  o.reference = write("ref", "{\"a\": 1}\n{\"a\": 2}\n");
  o.current = write("cur", "a\tb\n1\t2\n");
  auto r = compute_drift(o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)["features"]["a"]["n_current"], 1);
  EXPECT_EQ((*r)["schema"]["added"], json({"b"}));
}

}  // namespace
}  // namespace drover::drift
