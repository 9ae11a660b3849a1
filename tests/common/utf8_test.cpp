// The shared UTF-8 validator and encoder (common/utf8.hpp), on the edges RFC 3629 draws:
// overlong forms, surrogates, the last code point, truncated and stray continuation bytes.
#include "common/utf8.hpp"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(Utf8Test, ValidTextOfEveryLengthPasses) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\t\n"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"));
  EXPECT_TRUE(is_valid_utf8("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"));  // edges of each length
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));                          // U+10FFFF
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));                      // NUL is a character
}

TEST(Utf8Test, InvalidSequencesReportTheOffsetOfTheirFirstByte) {
  EXPECT_EQ(find_invalid_utf8("ab\xa0"), 2u);            // stray continuation byte
  EXPECT_EQ(find_invalid_utf8("x\xc0\x80"), 1u);         // overlong NUL
  EXPECT_EQ(find_invalid_utf8("\xe0\x9f\xbf"), 0u);      // overlong 3-byte form
  EXPECT_EQ(find_invalid_utf8("ok\xed\xa0\x80"), 2u);    // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xf5\x80\x80\x80"), 0u);
  EXPECT_EQ(find_invalid_utf8("caf\xc3"), 3u);  // truncated at the end
  EXPECT_EQ(find_invalid_utf8("\xe2\x9c"
                              "a"),
            0u);  // truncated by a new character
  EXPECT_EQ(byte_hex("ab\xa0", 2), "0xa0");
}

TEST(Utf8Test, AppendEncodesCodePointsAndRefusesNonCharacters) {
  std::string s;
  EXPECT_TRUE(append_utf8(s, 0x41));
  EXPECT_TRUE(append_utf8(s, 0xa0));
  EXPECT_TRUE(append_utf8(s, 0x2028));
  EXPECT_TRUE(append_utf8(s, 0x1f600));
  EXPECT_EQ(s, "A\xc2\xa0\xe2\x80\xa8\xf0\x9f\x98\x80");
  EXPECT_FALSE(append_utf8(s, 0xd800));
  EXPECT_FALSE(append_utf8(s, 0xdfff));
  EXPECT_FALSE(append_utf8(s, 0x110000));
  EXPECT_EQ(s, "A\xc2\xa0\xe2\x80\xa8\xf0\x9f\x98\x80");  // nothing appended
  EXPECT_TRUE(is_valid_utf8(s));
}

TEST(Utf8Test, ControlCharactersAreFoundInC0DelAndC1ButNotInOtherText) {
  EXPECT_EQ(find_control_char("plain caf\xc3\xa9 \xe2\x9c\x93"), std::nullopt);
  EXPECT_EQ(find_control_char("a\tb"), 1u);
  EXPECT_EQ(find_control_char("a\tb\nc", "\t\n"), std::nullopt);
  EXPECT_EQ(find_control_char("a\tb\rc", "\t\n"), 3u);
  EXPECT_EQ(find_control_char(std::string_view("x\0y", 3)), 1u);
  EXPECT_EQ(find_control_char("x\x7f"), 1u);
  EXPECT_EQ(find_control_char("ok\xc2\x85"), 2u);              // U+0085 (NEL), a C1 control
  EXPECT_EQ(find_control_char("\xc2\xa0\xc2\x9f"), 2u);        // U+00A0 is not; U+009F is
  EXPECT_EQ(find_control_char("\xe2\x80\xa8"), std::nullopt);  // U+2028: not a control
}

}  // namespace
}  // namespace drover
